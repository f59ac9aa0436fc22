"""Chapter 03's widgets: the algorithm explorer (train one of the five algorithms on the sinusoids and see its
adaptation) and the one-image view (one query classified alone, with its class probabilities).

Each ``*_figure`` function computes and draws (tested without a browser); the ``*_widget`` function adds the
controls and draws once with its defaults, so a headless run shows the figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn

from mlcourse.course import plots
from mlcourse.course.display import FigureOutput, Widget, live_figure
from mlcourse.course.display import check_range as _check_range
from mlcourse.course.display import show as _show
from mlcourse.course.sinusoid import history_curve, sinusoid_adaptation, sinusoid_task, train_sinusoid
from mlcourse.data import SinusoidTasks


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
    run = train_sinusoid(
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
    return AlgorithmRun(algo=algo, learner=run.learner, history=history_curve(run.history), settings=settings)


def algorithm_figure(run: AlgorithmRun, *, test_shots: int = 5, num_tasks: int = 200, task_seed: int = 0) -> Figure:
    """Three panels: meta-training curve; query MSE vs steps on new tasks (K = ``test_shots``); one fit."""

    s = run.settings
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.6))
    plots.learning_curves({run.algo: run.history}, smooth=5, ax=axes[0], title="meta-training (train tasks)")
    lr = float(run.learner.inner_lr)
    curve = sinusoid_adaptation(run.learner, test_shots, 10, num_tasks=num_tasks)
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
