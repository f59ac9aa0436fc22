"""Chapter 02's widgets: adaptation of the sinusoid learners on a task the student picks, and the outer
learning rate's effect on meta-training.

Each ``*_figure`` function computes and draws (tested without a browser); the ``*_widget`` function adds the
controls and draws once with its defaults, so a headless run shows the figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn

from mlcourse.course import plots
from mlcourse.course.display import FigureOutput, Widget, live_figure
from mlcourse.course.display import check_range as _check_range
from mlcourse.course.display import show as _show
from mlcourse.course.sinusoid import (
    history_curve,
    mean_function_label,
    sinusoid_predictions,
    sinusoid_task,
    train_sinusoid,
)
from mlcourse.data import SinusoidTasks


def adaptation_figure(
    models: Mapping[str, nn.Module],
    k_shot: int = 5,
    inner_lr: float = 0.01,
    steps: int = 10,
    task_seed: int = 0,
    show_mean: bool = True,
) -> Figure:
    """For each model: its fit of one new task before adaptation and after 1 and ``steps`` SGD steps of
    size ``inner_lr`` on ``k_shot`` support points (one panel per model, the same task everywhere).

    ``show_mean`` also draws the family's mean function ``E[y | x] = -(2/pi) E[A] cos x`` (thin, grey): the
    best single function for all tasks, which a pretrained network learns (chapter 02)."""

    if not models:
        raise ValueError("adaptation_figure needs at least one model")
    task = sinusoid_task(task_seed, k_shot)
    x_grid = torch.linspace(-5, 5, 200).unsqueeze(-1)
    y_true = SinusoidTasks.function(x_grid.unsqueeze(0), task.task_params)[0]
    reference = {mean_function_label(): SinusoidTasks().mean_function(x_grid)} if show_mean else None
    fig, axes = plt.subplots(1, len(models), figsize=(4.6 * len(models), 4.8), squeeze=False)
    wanted = sorted({0, min(1, steps), steps})
    for ax, (name, model) in zip(axes[0], models.items()):
        preds = sinusoid_predictions(model, task.support_x[0], task.support_y[0], x_grid, inner_lr, wanted)
        mse = {s: float(((preds[s] - y_true.squeeze(-1)) ** 2).mean()) for s in wanted}
        labels = {
            s: ("before adaptation" if s == 0 else f"after {s} step{'s' if s > 1 else ''}") + f" (MSE {mse[s]:.2f})"
            for s in wanted
        }
        plots.sinusoid_fit(
            x_grid,
            y_true,
            task.support_x[0],
            task.support_y[0],
            {labels[s]: preds[s] for s in wanted},
            ax=ax,
            title=f"{name}: K={k_shot}, α={plots.fmt(inner_lr)}",
            reference=reference,
        )
    A, b = task.task_params[0].tolist()
    fig.suptitle(f"new task: y = {A:.2f} sin(x - {b:.2f})", fontsize=10)
    fig.tight_layout()
    return fig


def beta_curves_figure(histories: Mapping[str, tuple[Sequence[float], Sequence[float]]], smooth: int = 5) -> Figure:
    """Meta-training curves (query MSE after adaptation) for several outer learning rates β."""
    return plots.learning_curves(histories, smooth=smooth, title="MAML meta-training on sinusoids: effect of β")


def train_for_beta(
    beta: float, iterations: int, *, meta_batch_size: int = 10, seed: int = 0, progress: bool = True
) -> tuple[list[int], list[float]]:
    """Meta-train MAML (sinusoid, K=10, α=0.01) with outer learning rate ``beta``; the loss curve."""
    run = train_sinusoid(
        "maml",
        iterations,
        meta_batch_size=meta_batch_size,
        outer_lr=beta,
        seed=seed,
        progress=progress,
        log_every=max(1, iterations // 100),
    )
    return history_curve(run.history)


def adaptation_widget(
    models: Mapping[str, nn.Module],
    *,
    k_shot: int = 5,
    inner_lr: float = 0.01,
    steps: int = 10,
    task_seed: int = 0,
    display: bool = True,
) -> Widget:
    """Sliders K (support points), α (inner step size), inner steps and the task; redraws the fits.

    Chapter 02 ("meta-knowledge" and "fast adaptation"): compare a meta-learned initialisation with a
    pretrained one (and a random one) on the same new task. Cheap: no training, just fine-tuning.
    """
    import ipywidgets as w

    _check_range("k_shot", k_shot, 1, 40)
    _check_range("inner_lr", inner_lr, 1e-3, 1.0)
    _check_range("steps", steps, 0, 50)
    controls = {
        "k_shot": w.IntSlider(value=k_shot, min=1, max=40, description="K (shots)"),
        "inner_lr": w.FloatLogSlider(
            value=inner_lr, base=10, min=-3, max=0, step=0.1, description="α (inner lr)", readout_format=".3g"
        ),
        "steps": w.IntSlider(value=steps, min=0, max=50, description="inner steps"),
        "task_seed": w.IntSlider(value=task_seed, min=0, max=99, description="task"),
    }
    return live_figure(controls, lambda **kw: adaptation_figure(models, **kw), display=display, wrap=True)


def beta_widget(
    betas: Sequence[float] = (1e-4, 1e-3, 1e-2),
    *,
    iterations: int = 300,
    meta_batch_size: int = 10,
    seed: int = 0,
    display: bool = True,
    progress: bool = True,
) -> Widget:
    """Meta-training curves of MAML on sinusoids for several outer learning rates β.

    Draws the curves of ``betas`` at once; the slider picks another β and "add curve" meta-trains it
    (``iterations`` steps, a progress bar) and adds its curve; "clear" keeps only the last one.
    """
    import ipywidgets as w

    histories: dict[str, tuple[list[int], list[float]]] = {}
    beta_slider = w.FloatLogSlider(
        value=3e-3, base=10, min=-5, max=-0.5, step=0.1, description="β (outer lr)", readout_format=".1e"
    )
    iter_slider = w.IntSlider(
        value=iterations, min=min(10, iterations), max=max(5000, iterations), step=50, description="iterations"
    )
    add, clear = w.Button(description="add curve"), w.Button(description="clear")
    output = FigureOutput(lambda: beta_curves_figure(histories), display=display)
    widget = Widget(
        controls=w.HBox([beta_slider, iter_slider, add, clear]),
        output=output,
        values={"betas": list(betas), "iterations": iterations},
        state={"histories": histories},
    )

    def train_one(beta: float, its: int) -> None:
        histories[f"β={beta:.1e}, {its} it."] = train_for_beta(
            beta, its, meta_batch_size=meta_batch_size, seed=seed, progress=progress
        )

    def on_add(_button: Any = None) -> None:
        train_one(beta_slider.value, iter_slider.value)
        widget.values["betas"].append(beta_slider.value)
        output.update()

    def on_clear(_button: Any = None) -> None:
        last = list(histories.items())[-1:]
        histories.clear()
        histories.update(last)
        output.update()

    add.on_click(on_add)
    clear.on_click(on_clear)
    for beta in betas:
        train_one(float(beta), iterations)
    _show(widget.controls, display)
    output.update()
    return widget
