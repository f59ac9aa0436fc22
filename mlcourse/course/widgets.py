"""Interactive widgets of chapters 02-03: sliders that re-run real computation and redraw a figure.

Each widget is a thin layer: a ``*_figure`` function computes through ``mlcourse.course.experiments`` and draws
with ``mlcourse.course.plots`` (tested without a browser); the ``*_widget`` function adds ipywidgets controls.
Every widget **draws once with its default values** when it is created, as an ordinary cell output
(``IPython.display.display(fig, display_id=True)``), so a headless run (nbval, CI) produces the figure;
moving a slider (or pressing "run" where training is involved) recomputes and updates that same output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn

from mlcourse.course import experiments as ex
from mlcourse.course import plots
from mlcourse.course.display import FigureOutput, Widget, live_figure
from mlcourse.course.display import check_range as _check_range
from mlcourse.course.display import show as _show
from mlcourse.data import SinusoidTasks

# --------------------------------------------------------------------------------------------------
# figures (pure functions of their arguments)


def sinusoid_task(seed: int, k_shot: int, device: torch.device | str | None = None):
    """One sinusoid task (amplitude, phase and K support points) chosen by ``seed``."""
    return ex.sinusoid_tasks(1, int(k_shot), 1, seed=int(seed), device=device)


def mean_function_label(family=None) -> str:
    """Legend label of the sinusoid family's mean function, e.g. "mean of all tasks: -1.62 cos x"."""

    family = family or SinusoidTasks()
    if family.phase == (0.0, math.pi):
        return f"mean of all tasks: {plots.fmt(-2 / math.pi * family.mean_amplitude())} cos x"
    return "mean of all tasks"


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
        preds = ex.sinusoid_predictions(model, task.support_x[0], task.support_y[0], x_grid, inner_lr, wanted)
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
    run = ex.train_sinusoid(
        "maml",
        iterations,
        meta_batch_size=meta_batch_size,
        outer_lr=beta,
        seed=seed,
        progress=progress,
        log_every=max(1, iterations // 100),
    )
    return ex.history_curve(run.history)


@dataclass
class AlgorithmRun:
    """One short sinusoid meta-training run of the algorithm widget (chapter 03)."""

    algo: str
    learner: nn.Module
    history: tuple[list[int], list[float]]
    settings: dict[str, Any] = field(default_factory=dict)


def run_algorithm(
    algo: str = "maml",
    inner_lr: float = 0.01,
    outer_lr: float = 1e-3,
    k_shot: int = 10,
    inner_steps: int = 1,
    iterations: int = 300,
    *,
    meta_batch_size: int = 10,
    seed: int = 0,
    progress: bool = True,
) -> AlgorithmRun:
    """Meta-train ``algo`` on sinusoids with the widget's α, β, K and inner steps."""
    run = ex.train_sinusoid(
        algo,
        iterations,
        meta_batch_size=meta_batch_size,
        k_shot=k_shot,
        inner_lr=inner_lr,
        outer_lr=outer_lr,
        inner_steps=inner_steps,
        seed=seed,
        progress=progress,
        log_every=max(1, iterations // 100),
    )
    settings = dict(inner_lr=inner_lr, outer_lr=outer_lr, k_shot=k_shot, inner_steps=inner_steps, iterations=iterations)
    return AlgorithmRun(algo=algo, learner=run.learner, history=ex.history_curve(run.history), settings=settings)


def algorithm_figure(run: AlgorithmRun, *, test_shots: int = 5, num_tasks: int = 200, task_seed: int = 0) -> Figure:
    """Three panels: meta-training curve; query MSE vs steps on new tasks (K = ``test_shots``); one fit."""

    s = run.settings
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.6))
    plots.learning_curves({run.algo: run.history}, smooth=5, ax=axes[0], title="meta-training (train tasks)")
    lr = float(run.learner.inner_lr)
    curve = ex.sinusoid_adaptation(run.learner, test_shots, 10, num_tasks=num_tasks)
    label = f"{run.algo}, α={plots.fmt(lr)}"
    plots.adaptation_curves(
        {label: curve["mean"]}, errors={label: curve["ci95"]}, ax=axes[1], title=f"meta-test: new tasks, K={test_shots}"
    )
    task = sinusoid_task(task_seed, test_shots)
    x_grid = torch.linspace(-5, 5, 200).unsqueeze(-1)
    y_true = SinusoidTasks.function(x_grid.unsqueeze(0), task.task_params)[0]
    steps = max(1, s["inner_steps"])
    # adapt with the learner's own inner rule (Meta-SGD: its learned per-parameter step sizes)
    preds = _learner_predictions(run.learner, task, x_grid, (0, steps))
    plots.sinusoid_fit(
        x_grid,
        y_true,
        task.support_x[0],
        task.support_y[0],
        {"before": preds[0], f"after {steps} step(s)": preds[steps]},
        ax=axes[2],
        title="one new task",
    )
    fig.suptitle(
        f"{run.algo}: α={plots.fmt(s['inner_lr'])}, β={plots.fmt(s['outer_lr'])}, K={s['k_shot']} (train), "
        f"inner steps={s['inner_steps']}, {s['iterations']} iterations",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _learner_predictions(
    learner: nn.Module, task, x_grid: torch.Tensor, steps: Sequence[int]
) -> dict[int, torch.Tensor]:
    """Predictions of a MAML-family learner's adapted model (uses its own inner rule, e.g. Meta-SGD's α)."""

    grid = x_grid.unsqueeze(0)  # one task
    return {s: learner.predict(learner.adapt(task, steps=s), grid)[0].squeeze(-1) for s in steps}


# --------------------------------------------------------------------------------------------------
# chapter 02


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


# --------------------------------------------------------------------------------------------------
# chapter 03


def algorithm_widget(
    *,
    algo: str = "maml",
    inner_lr: float = 0.01,
    outer_lr: float = 1e-3,
    k_shot: int = 10,
    inner_steps: int = 1,
    iterations: int = 300,
    meta_batch_size: int = 10,
    test_shots: int = 5,
    num_tasks: int = 200,
    display: bool = True,
    progress: bool = True,
) -> Widget:
    """Sliders α, β, K, inner steps (+ algorithm, iterations); "meta-train" re-runs a short sinusoid
    meta-training with those settings and redraws: its training curve, query MSE vs steps on new tasks
    (meta-test), and one new task's fit. Draws once with the defaults."""
    import ipywidgets as w

    _check_range("inner_lr", inner_lr, 1e-3, 1.0)
    _check_range("outer_lr", outer_lr, 1e-5, 0.1)
    controls = {
        "algo": w.Dropdown(
            options=["maml", "fomaml", "metasgd", "reptile", "pretrain"], value=algo, description="algorithm"
        ),
        "inner_lr": w.FloatLogSlider(
            value=inner_lr, base=10, min=-3, max=0, step=0.1, description="α (inner lr)", readout_format=".3g"
        ),
        "outer_lr": w.FloatLogSlider(
            value=outer_lr, base=10, min=-5, max=-1, step=0.1, description="β (outer lr)", readout_format=".1e"
        ),
        "k_shot": w.IntSlider(value=k_shot, min=1, max=40, description="K (shots)"),
        "inner_steps": w.IntSlider(value=inner_steps, min=0, max=10, description="inner steps"),
        "iterations": w.IntSlider(
            value=iterations, min=min(10, iterations), max=max(5000, iterations), step=50, description="iterations"
        ),
    }
    button = w.Button(description="meta-train", button_style="primary")

    def draw(**values: Any) -> Figure:
        run = run_algorithm(meta_batch_size=meta_batch_size, progress=progress, **values)
        widget.state["run"] = run
        return algorithm_figure(run, test_shots=test_shots, num_tasks=num_tasks)

    output = FigureOutput(draw, display=display)
    widget = Widget(
        controls=w.VBox([w.HBox(list(controls.values())[:3]), w.HBox(list(controls.values())[3:] + [button])]),
        output=output,
        values={k: c.value for k, c in controls.items()},
    )

    def on_run(_button: Any = None) -> None:
        widget.values = {k: c.value for k, c in controls.items()}
        output.update(**widget.values)

    button.on_click(on_run)
    _show(widget.controls, display)
    on_run()
    return widget


# --------------------------------------------------------------------------------------------------
# chapter 03: one test image, classified alone


def one_image_predictions(learner: nn.Module, task, query: int, steps: int | None = None) -> dict[str, torch.Tensor]:
    """Class probabilities of query ``query`` of a one-task batch, computed live four ways: with the support set's
    statistics, alone and inside the query batch (equal: no query sees another), and with transductive statistics,
    inside the query batch and alone (a batch of one, normalised by itself). ``steps``: inner steps to adapt."""
    _check_range("query", query, 0, task.query_x.shape[1] - 1)
    out = {}
    for mode in ("support", "transductive"):
        with learner.normalising(mode):
            state = learner.adapt(task, steps=steps)
            out[f"{mode} statistics, inside the query batch"] = learner.predict(state, task.query_x)[0, query]
            out[f"{mode} statistics, alone"] = learner.predict(state, task.query_x[:, query : query + 1])[0, 0]
    return {name: torch.softmax(v.float(), -1).cpu() for name, v in out.items()}


def one_image_figure(learner: nn.Module, task, query: int = 0, steps: int | None = None) -> Figure:
    """The support images, the chosen query and the four predictions of :func:`one_image_predictions` as bars."""
    probs = one_image_predictions(learner, task, query, steps)
    sx, sy = task.support_x[0].cpu(), task.support_y[0].cpu()
    fig = plt.figure(figsize=(max(8.0, 1.3 * (len(sx) + 1)), 5.5), constrained_layout=True)
    grid = fig.add_gridspec(2, len(sx) + 1, height_ratios=[1, 2.2])
    for i, (image, label) in enumerate([*zip(sx, sy.tolist()), (task.query_x[0, query].cpu(), None)]):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(image.squeeze(0), cmap="gray")
        ax.set_title(f"class {label}" if label is not None else f"query {query}\n(true: {int(task.query_y[0, query])})")
        ax.axis("off")
    ax = fig.add_subplot(grid[1, :])
    classes = torch.arange(task.n_way)
    width = 0.8 / len(probs)
    for j, (name, p) in enumerate(probs.items()):
        ax.bar(classes + (j - (len(probs) - 1) / 2) * width, p, width, label=f"{name}: class {int(p.argmax())}")
    ax.set(xticks=classes.tolist(), xlabel="class", ylabel="probability", ylim=(0, 1.05))
    ax.legend(fontsize=8, loc="upper right")
    return fig


def one_image_widget(learner: nn.Module, task, query: int = 0, steps: int | None = None, display: bool = True):
    """A slider that picks one query image of ``task`` and redraws :func:`one_image_figure` (chapter 03: the shipped
    model classifies it alone). Draws once with the default query."""
    import ipywidgets as w

    last = task.query_x.shape[1] - 1
    _check_range("query", query, 0, last)
    controls = {"query": w.IntSlider(value=query, min=0, max=last, description="query image")}
    return live_figure(controls, lambda **kw: one_image_figure(learner, task, steps=steps, **kw), display=display)


__all__ = [
    "sinusoid_task",
    "mean_function_label",
    "adaptation_figure",
    "beta_curves_figure",
    "train_for_beta",
    "AlgorithmRun",
    "run_algorithm",
    "algorithm_figure",
    "FigureOutput",
    "Widget",
    "adaptation_widget",
    "beta_widget",
    "algorithm_widget",
    "one_image_predictions",
    "one_image_figure",
    "one_image_widget",
]
