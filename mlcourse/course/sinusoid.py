"""The sinusoid regression experiments several chapters share (MAML paper, section 5.1): the fixed test tasks,
training through :func:`mlcourse.train.train`, adaptation curves, predictions and the committed chapter-02 learner.

Chapter 02 builds the paper's experiment on top of these (``ch02.paper``), chapter 03 its comparison of the five
algorithms, chapter 06 and 08 their own variants.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Optional

import torch
from torch import Tensor, nn

from mlcourse.algorithms import make_learner
from mlcourse.course import plots
from mlcourse.course.committed import read as read_committed
from mlcourse.course.committed import train_committed
from mlcourse.data import SinusoidTasks
from mlcourse.data.tasks import TaskBatch
from mlcourse.models import SinusoidMLP
from mlcourse.provenance import read as read_provenance
from mlcourse.stats import mean_ci
from mlcourse.train import (
    TrainConfig,
    build_experiment,
    train,
)

SINUSOID_TEST_SEED = 31_337

INITS = ("pytorch", "reference")  # SinusoidMLP initialisations: PyTorch's default, the MAML authors' code

DIVERGED_FACTOR = (
    10.0  # sinusoid_adaptation: a task "diverged" when fine-tuning multiplies its query MSE by more than this
)


def sinusoid_tasks(
    num_tasks: int,
    k_shot: int,
    n_query: int = 100,
    seed: int = SINUSOID_TEST_SEED,
    device: torch.device | str | None = None,
):
    """A fixed set of sinusoid tasks (``TaskBatch``): the same seed gives the same tasks to every model."""

    generator = torch.Generator().manual_seed(seed)
    return SinusoidTasks().sample(num_tasks, k_shot, n_query, generator=generator, device=device)


def sinusoid_config(
    algo: str,
    iterations: int,
    *,
    meta_batch_size: int = 25,
    k_shot: int = 10,
    n_query: int = 10,
    inner_lr: float = 0.01,
    outer_lr: float = 1e-3,
    inner_steps: int = 1,
    first_order: bool = False,
    seed: int = 0,
    device: str = "cpu",
    out_dir: Optional[str | Path] = None,
    eval_every: Optional[int] = None,
    val_tasks: int = 0,
    log_every: Optional[int] = None,
) -> TrainConfig:
    """The :class:`TrainConfig` of :func:`train_sinusoid` (same arguments)."""
    eval_every = eval_every or max(1, iterations // 10)
    return TrainConfig(
        algo=algo,
        data="sinusoid",
        k_shot=k_shot,
        n_query=n_query,
        inner_steps=inner_steps,
        test_inner_steps=10,
        inner_lr=inner_lr,
        outer_lr=outer_lr,
        meta_batch_size=meta_batch_size,
        iterations=iterations,
        eval_every=eval_every,
        val_tasks=val_tasks,
        test_tasks=0,
        seed=seed,
        device=device,
        out_dir=None if out_dir is None else str(out_dir),
        first_order=first_order,
        checkpoint_every=max(500, eval_every),
        log_every=log_every or max(1, iterations // 200),
    )


def train_sinusoid(
    algo: str = "maml",
    iterations: int = 1000,
    *,
    meta_batch_size: int = 25,
    k_shot: int = 10,
    n_query: int = 10,
    inner_lr: float = 0.01,
    outer_lr: float = 1e-3,
    inner_steps: int = 1,
    first_order: bool = False,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    out_dir: Optional[str | Path] = None,
    eval_every: Optional[int] = None,
    val_tasks: int = 0,
    log_every: Optional[int] = None,
    init: str = "pytorch",
    committed: Optional[str] = None,
):
    """Meta-train ``algo`` (maml, fomaml, metasgd, reptile, anil, article, pretrain) on sinusoid tasks.

    Defaults are MAML's regression setting (K=10, alpha=0.01, meta-batch 25, Adam 1e-3, one inner step);
    ``pretrain`` is "pretraining on all tasks" (joint regression at theta). ``init="reference"`` starts
    from the MAML authors' initialisation (``SinusoidMLP.reference_init_``) instead of PyTorch's; it is
    not part of the checkpoint's configuration, so give such runs their own ``out_dir``. Returns
    ``train``'s ``TrainResult`` (``.learner``, ``.history`` with ``train_loss`` every ``log_every`` steps).
    ``committed="ch02/sinusoid-maml"``: in full mode, load those committed weights when they were trained with
    these settings instead of training (:func:`mlcourse.course.committed.load_or_train`; ``.provenance`` says which).
    """

    if init not in INITS:
        raise ValueError(f"init={init!r} is not allowed; allowed: {', '.join(INITS)}")

    config = sinusoid_config(
        algo,
        iterations,
        meta_batch_size=meta_batch_size,
        k_shot=k_shot,
        n_query=n_query,
        inner_lr=inner_lr,
        outer_lr=outer_lr,
        inner_steps=inner_steps,
        first_order=first_order,
        seed=seed,
        device=device,
        out_dir=out_dir,
        eval_every=eval_every,
        val_tasks=val_tasks,
        log_every=log_every,
    )
    experiment = None
    if init == "reference" or committed:
        experiment = build_experiment(config)
    if init == "reference":
        experiment.learner.model.reference_init_(torch.Generator().manual_seed(seed))
    if not committed:
        return train(config, progress=progress, experiment=experiment)
    return train_committed(config, committed, experiment=experiment, progress=progress, extra={"init": init})


def history_curve(history: Sequence[Mapping[str, Any]], key: str = "train_loss") -> tuple[list[int], list[float]]:
    """``(steps, values)`` of one logged quantity of a training history (for ``plots.learning_curves``)."""
    pairs = [(int(r["step"]), float(r[key])) for r in history if key in r]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def sinusoid_adaptation(
    learner: nn.Module,
    k_shot: int = 5,
    max_steps: int = 10,
    *,
    num_tasks: int = 500,
    inner_lr: Optional[float] = None,
    n_query: int = 100,
    seed: int = SINUSOID_TEST_SEED,
    tasks=None,
    keep_per_task: bool = False,
) -> dict[str, list]:
    """Query MSE after 0..``max_steps`` fine-tuning steps on ``k_shot`` points (new tasks, fixed seed).

    The statistics over tasks of ``learner.adaptation_curve`` (plain SGD with the learner's inner step size,
    or ``inner_lr``). Returns ``{"steps", "mean", "ci95", "median", "diverged", "mean_not_diverged"}`` and,
    with ``keep_per_task``, ``"per_task"`` ``[steps + 1][tasks]``. ``ci95``: 95% CI over tasks;
    ``diverged[s]``: tasks whose query MSE after ``s`` steps is not finite or above ``DIVERGED_FACTOR`` (10)
    times its value before adapting (a step too large for the task's curvature grows the error
    geometrically, so a diverging task passes that line within a few steps); ``mean_not_diverged[s]``:
    the mean over the other tasks; ``diverged_tasks``: the indices of the tasks diverged after ``max_steps``.
    """
    batch = tasks if tasks is not None else sinusoid_tasks(num_tasks, k_shot, n_query, seed)
    means, cis, medians, diverged, converged, per_task = [], [], [], [], [], []
    curve = learner.adaptation_curve(batch, max_steps, inner_lr=inner_lr)["query_loss"].double().cpu()
    # the statistics of each column: mean, interval, median, diverged tasks
    for s in range(max_steps + 1):
        losses = curve[:, s]
        m, c = mean_ci(losses)
        means.append(m)
        cis.append(c)
        medians.append(float(losses.nan_to_num(nan=math.inf).median()))
        start = torch.as_tensor(per_task[0], dtype=torch.float64) if per_task else losses
        worse = ~(losses <= DIVERGED_FACTOR * start)  # nan and inf count as diverged
        diverged.append(int(worse.sum()))
        converged.append(float(losses[~worse].mean()) if bool((~worse).any()) else math.nan)
        per_task.append(losses.tolist())
    out: dict[str, list] = {
        "steps": list(range(max_steps + 1)),
        "mean": means,
        "ci95": cis,
        "median": medians,
        "diverged": diverged,
        "mean_not_diverged": converged,
        "diverged_tasks": torch.nonzero(worse).reshape(-1).tolist(),
    }
    if keep_per_task:
        out["per_task"] = per_task
    return out


def mse_cell(mean: float, ci95: Optional[float] = None) -> str:
    """``"0.57 ± 0.04"``; a mean that is nan, inf or above 1,000 (some tasks blew up) reads ``"diverged"``."""
    if not (math.isfinite(mean) and mean < 1e3):
        return "diverged"
    return f"{mean:.2f}" if ci95 is None else f"{mean:.2f} ± {ci95:.2f}"


def sinusoid_predictions(
    model: nn.Module,
    support_x: Tensor,
    support_y: Tensor,
    x_grid: Tensor,
    inner_lr: float,
    steps: Sequence[int] = (0, 1, 10),
) -> dict[int, Tensor]:
    """Predictions on ``x_grid`` ``[M, 1]`` after each number of plain SGD steps in ``steps`` on one task's support
    set (``learner.predict(learner.adapt(task, steps=s), x_grid)`` of a MAML learner around ``model``)."""
    learner = make_learner("maml", model, inner_lr=inner_lr)
    task = TaskBatch(support_x[None], support_y[None], x_grid[None], torch.zeros_like(x_grid)[None])
    return {s: learner.predict(learner.adapt(task, steps=s), task.query_x)[0].squeeze(-1) for s in steps}


def committed_sinusoid_maml(name: str = "ch02/sinusoid-maml") -> tuple[nn.Module, dict[str, Any]]:
    """Chapter 02's full-scale MAML (the committed weights ``results/chapters/<name>.pt``, in fast mode too) and
    where it came from: the file, its training settings, device, date and wall time."""
    saved = read_committed(name)
    if saved is None:
        raise FileNotFoundError(f"no committed weights results/chapters/{name}.pt (mlcourse sinusoid-paper makes them)")
    config = saved["config"]
    learner = make_learner(
        config["algo"], SinusoidMLP(hidden=config["hidden"]), inner_lr=config["inner_lr"], inner_steps=1
    )
    learner.load_state_dict(saved["learner"])
    info = {
        "weights": f"results/chapters/{name}.pt",
        "iterations": config["iterations"],
        "inner_lr": config["inner_lr"],
        "device_name": read_provenance(saved)["device_name"],
        "date": saved["date"],
        "train_wall_time_s": saved["wall_time_s"],
    }
    return learner, info


Init = Literal[INITS]  # type: ignore[valid-type]


def sinusoid_task(seed: int, k_shot: int, device: torch.device | str | None = None):
    """One sinusoid task (amplitude, phase and K support points) chosen by ``seed``."""
    return sinusoid_tasks(1, int(k_shot), 1, seed=int(seed), device=device)


def mean_function_label(family=None) -> str:
    """Legend label of the sinusoid family's mean function, e.g. "mean of all tasks: -1.62 cos x"."""

    family = family or SinusoidTasks()
    if family.phase == (0.0, math.pi):
        return f"mean of all tasks: {plots.fmt(-2 / math.pi * family.mean_amplitude())} cos x"
    return "mean of all tasks"
