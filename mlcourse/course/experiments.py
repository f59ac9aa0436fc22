"""The experiments of chapters 01, 02, 03, 04 and 08, as functions the notebooks, the widgets and the tests call.

Everything trains through :func:`mlcourse.train.train` (progress bars, the same loop as the CLI) and every
learner comes from :func:`mlcourse.algorithms.make_learner`; this module only chooses sizes, evaluates
the trained learners the way each chapter needs (adaptation curves, shots curves, task embeddings) and
caches small results as JSON under ``results/`` (labelled with device, date and torch version).

Sections:

* results files: :func:`save_result`, :func:`load_result`, :func:`result_path`;
* sinusoid regression (MAML paper, section 5.1): :func:`train_sinusoid`, :func:`sinusoid_adaptation`,
  :func:`shots_curve`, :func:`compare_sinusoid`, :func:`sinusoid_paper_experiment`,
  :func:`sinusoid_predictions`, :func:`sinusoid_task_embedding`, :func:`pca_2d`;
* Omniglot few-shot classification: :func:`load_omniglot_splits`, :func:`scratch_baseline`,
  :func:`train_omniglot`, :func:`omniglot_comparison`;
* chapter 08's black-box learner: :func:`blackbox_vs_maml`, and outside the training range :func:`blackbox_ood`
  (``mlcourse blackbox-ood``: :func:`blackbox_ood_run`, :func:`ood_table`, :func:`ood_findings`);
* tables: :func:`format_table`.
"""

from __future__ import annotations

import json
import math
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import torch
import tyro
from torch import Tensor, nn
from torch.func import functional_call
from tqdm.auto import tqdm

from mlcourse import shipped
from mlcourse.algorithms import BlackBox, make_learner
from mlcourse.algorithms.core import check_inner, sgd_steps, task_metrics
from mlcourse.algorithms.execution import CompiledCall, grad_func
from mlcourse.atomic import write_json
from mlcourse.checkpoint import load_results, save_results
from mlcourse.cliparse import arg
from mlcourse.commands import train_command
from mlcourse.config import REPO_ROOT, fast_mode, pick, resolve_device, runs_dir, seed_everything
from mlcourse.course import ch04_bilevel as B
from mlcourse.course.committed import read as read_committed
from mlcourse.course.committed import train_committed
from mlcourse.data import EpisodeSampler, SinusoidTasks, load_omniglot
from mlcourse.data.tasks import TaskBatch
from mlcourse.models import Conv4, InContextRegressor, SinusoidMLP
from mlcourse.provenance import provenance
from mlcourse.provenance import read as read_provenance
from mlcourse.stats import confidence_interval, mean_ci
from mlcourse.tables import format_table
from mlcourse.train import (
    TEST_SEED,
    TrainConfig,
    Trainer,
    build_experiment,
    evaluate,
    expected_training_time,
    measure_step_time,
    train,
    training_notice,
)

RESULTS_DIR = REPO_ROOT / "results"

# Published sinusoid numbers (the brief's reading of Finn et al. 2017, Fig. 3, left panel: K = 5 points
# at meta-test time, model meta-trained with K = 10; pretrained baseline fine-tuned with step 0.01).
PAPER_SINUSOID = {
    "source": (
        "Finn, Abbeel & Levine (2017), Model-Agnostic Meta-Learning for Fast Adaptation of Deep "
        "Networks, ICML, Fig. 3 (k-shot regression, K=5); approximate values read from the figure"
    ),
    "k_shot": 5,
    "steps": [1, 5, 10],
    "maml": [0.67, 0.38, 0.35],
    "pretrained": [2.41, 2.23, 2.19],
}
# Fine-tuning step sizes of the MAML paper's pretrained baseline (Fig. 3 legends: K=5 -> 0.01, K=10 -> 0.02).
PRETRAIN_STEP = {5: 0.01, 10: 0.02}
SINUSOID_TEST_SEED = 31_337
INITS = ("pytorch", "reference")  # SinusoidMLP initialisations: PyTorch's default, the MAML authors' code
DIVERGED_FACTOR = 10.0  # sinusoid_adaptation: a task "diverged" when fine-tuning multiplies its query MSE by more


# --------------------------------------------------------------------------------------------------
# results files


def result_path(name: str, directory: str | Path | None = None) -> Path:
    """``results/<name>.json`` (``directory`` overrides ``results/``, e.g. a temporary folder in tests)."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"result name {name!r} must be a plain file name without '/'")
    return Path(directory if directory is not None else RESULTS_DIR) / f"{name}.json"


def save_result(
    name: str,
    payload: Mapping[str, Any],
    device: torch.device | str = "cpu",
    *,
    directory: str | Path | None = None,
    wall_time_s: Optional[float] = None,
) -> Path:
    """Write ``payload`` to ``results/<name>.json`` atomically, labelled with its provenance record (device,
    threads, torch version, allocator, date, wall time) and the mode it ran in."""
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    label = {"name": name, **provenance(device, wall_time_s=wall_time_s), "fast_mode": fast_mode()}
    path = result_path(name, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_results(path, {**label, **dict(payload)})


def load_result(name: str, directory: str | Path | None = None) -> Optional[dict[str, Any]]:
    """The dict saved by :func:`save_result`, its provenance in :func:`mlcourse.provenance.provenance`'s keys, or
    ``None`` when there is no such file (corrupt files raise)."""
    path = result_path(name, directory)
    if not path.exists():
        return None
    return read_provenance(load_results(path))


# --------------------------------------------------------------------------------------------------
# sinusoid regression


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


# Chapter 03's sinusoid comparison (one budget for all): algorithm -> (inner step size alpha, inner steps while
# meta-training); full mode trains each for SINUSOID_COMPARISON_ITERATIONS with meta-batches of
# SINUSOID_COMPARISON_META_BATCH tasks (its weights are committed, ch03/; tests/test_committed.py matches them).
SINUSOID_COMPARISON: dict[str, tuple[float, int]] = {
    "maml": (0.01, 1),
    "metasgd": (0.01, 1),
    "reptile": (0.01, 5),
    "pretrain": (0.01, 1),
}
SINUSOID_COMPARISON_ITERATIONS = 20_000
SINUSOID_COMPARISON_META_BATCH = 25


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


def shots_curve(
    learner: nn.Module,
    shots: Sequence[int] = (1, 2, 5, 10, 20),
    inner_steps: int = 1,
    *,
    num_tasks: int = 500,
    inner_lr: Optional[float] = None,
    seed: int = SINUSOID_TEST_SEED,
) -> dict[str, list]:
    """Query MSE after ``inner_steps`` steps as a function of the number of support points K."""
    means, cis = [], []
    for k in shots:
        batch = sinusoid_tasks(num_tasks, int(k), 100, seed)
        # the last column: the query loss after inner_steps steps of rate inner_lr (the learner's own when None)
        m, c = mean_ci(learner.adaptation_curve(batch, inner_steps, inner_lr=inner_lr)["query_loss"][:, -1])
        means.append(m)
        cis.append(c)
    return {"shots": [int(k) for k in shots], "mean": means, "ci95": cis}


def _check_sharpness_arguments(inner_lr: float, after_steps: int, iterations: int) -> None:
    if iterations < 1:
        raise ValueError(f"iterations={iterations} must be >= 1")
    if not isinstance(after_steps, int) or after_steps < 0:
        raise ValueError(f"after_steps={after_steps!r} is not allowed; allowed: an integer >= 0")
    if not float(inner_lr) > 0:
        raise ValueError(f"inner_lr={inner_lr!r} is not allowed; allowed: a float > 0")


def _unit(v: dict[str, Tensor]) -> dict[str, Tensor]:
    """``v`` divided by its norm (all tensors together)."""
    norm = torch.sqrt(sum((t * t).sum() for t in v.values()))
    return {k: t / norm for k, t in v.items()}


def step_sharpness(
    model: nn.Module,
    tasks,
    inner_lr: float,
    *,
    after_steps: int = 0,
    iterations: int = 200,
    seed: int = 0,
    chunk: int = 1000,
) -> Tensor:
    """``inner_lr * lambda_max`` for each task: the largest curvature of its support loss, in units of the
    step size, at the model's parameters (``after_steps=0``) or after that many fine-tuning steps of
    ``inner_lr`` on the task's support set (chapter 02: why repeated steps can diverge).

    Gradient descent with step ``alpha`` shrinks the error along a direction of curvature ``lambda`` by the
    factor ``|1 - alpha * lambda|`` per step (a quadratic model of the loss): it overshoots for
    ``alpha * lambda > 1`` and grows for ``alpha * lambda > 2``. ``lambda`` is found by power iteration on
    exact Hessian-vector products (``torch.func``, float64, vectorised over tasks; ``tasks`` is a
    regression ``TaskBatch``); it is the eigenvalue of largest magnitude of the support-loss Hessian.
    Returns a float64 tensor ``[T]`` on the CPU.
    """
    import copy

    import torch.nn.functional as F
    from torch.func import grad, vmap

    _check_sharpness_arguments(inner_lr, after_steps, iterations)
    lr = float(inner_lr)
    net = copy.deepcopy(model).to(device="cpu", dtype=torch.float64)
    theta = {n: p.detach() for n, p in net.named_parameters()}

    def loss(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return F.mse_loss(functional_call(net, p, (x,)), y)

    def hvp(p: dict[str, Tensor], v: dict[str, Tensor], x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return grad(lambda q: sum((g * v[k]).sum() for k, g in grad(loss)(q, x, y).items()))(p)  # reverse over reverse

    def top_eigenvalue(x: Tensor, y: Tensor, v: dict[str, Tensor]) -> Tensor:
        p = sgd_steps(lambda q: loss(q, x, y), theta, lr, after_steps, create_graph=False, grad_fn=grad_func)
        v = _unit(v)
        for _ in range(iterations):
            v = _unit(hvp(p, v, x, y))
        hv = hvp(p, v, x, y)
        return sum((a * b).sum() for a, b in zip(v.values(), hv.values()))  # Rayleigh quotient

    generator = torch.Generator().manual_seed(seed)
    x_all = tasks.support_x.detach().to("cpu", torch.float64)
    y_all = tasks.support_y.detach().to("cpu", torch.float64)
    out = []
    for start in range(0, x_all.shape[0], chunk):
        x, y = x_all[start : start + chunk], y_all[start : start + chunk]
        v0 = {
            k: torch.randn((x.shape[0], *p.shape), generator=generator, dtype=torch.float64) for k, p in theta.items()
        }
        out.append(vmap(top_eigenvalue)(x, y, v0))
    return lr * torch.cat(out)


def sharpness_along_steps(
    model: nn.Module,
    tasks,
    inner_lr: float,
    diverged: Tensor,
    steps: int = 3,
    iterations: int = 200,
    at_start: Optional[Tensor] = None,
) -> dict[str, Any]:
    """Median ``alpha * lambda_max`` after 0..``steps`` fine-tuning steps, separately for the tasks that
    ``diverged`` (a bool mask ``[T]``, e.g. from :func:`sinusoid_adaptation`) and the others (ch02).
    ``at_start``: the values at 0 steps when they are already computed (``step_sharpness`` of the same tasks)."""
    mask = torch.as_tensor(diverged, dtype=torch.bool).reshape(-1)
    out: dict[str, Any] = {
        "steps": list(range(steps + 1)),
        "diverged": [],
        "not_diverged": [],
        "num_diverged": int(mask.sum()),
        "num_tasks": int(mask.numel()),
    }
    for s in range(steps + 1):
        if s == 0 and at_start is not None:
            values = torch.as_tensor(at_start, dtype=torch.float64).reshape(-1)
        else:
            values = step_sharpness(model, tasks, inner_lr, after_steps=s, iterations=iterations)
        out["diverged"].append(float(values[mask].median()) if bool(mask.any()) else math.nan)
        out["not_diverged"].append(float(values[~mask].median()) if bool((~mask).any()) else math.nan)
    return out


def compare_sinusoid(
    maml: nn.Module,
    pretrained: nn.Module,
    shots: Sequence[int] = (5, 10),
    max_steps: int = 10,
    *,
    num_tasks: int = 500,
    maml_lr: float = 0.01,
    pretrain_lr: Optional[Mapping[int, float]] = None,
) -> dict[str, Any]:
    """Adaptation curves of a meta-learned and a pretrained sinusoid model on the same new tasks.

    MAML fine-tunes with its training step size ``maml_lr``; the pretrained model with the MAML paper's
    step sizes (``PRETRAIN_STEP``: 0.01 for K=5, 0.02 for K=10). Returns
    ``{"K=5": {"maml": curve, "pretrained": curve, "difference": ...}, ...}`` (curves from
    :func:`sinusoid_adaptation`); ``difference`` is the paired per-task ``pretrained - maml`` MSE (mean, ci95)
    at each step — its mean and 95% CI, its median, and the share of tasks MAML wins with its 95% CI:
    both models are tested on exactly the same tasks and points.
    """
    pretrain_lr = dict(PRETRAIN_STEP if pretrain_lr is None else pretrain_lr)
    out: dict[str, Any] = {}
    for k in shots:
        tasks = sinusoid_tasks(num_tasks, int(k), 100)
        lr_p = pretrain_lr.get(int(k), 0.01)
        m = sinusoid_adaptation(maml, k, max_steps, inner_lr=maml_lr, tasks=tasks, keep_per_task=True)
        p = sinusoid_adaptation(pretrained, k, max_steps, inner_lr=lr_p, tasks=tasks, keep_per_task=True)
        gaps = [
            torch.tensor(ps, dtype=torch.float64) - torch.tensor(ms, dtype=torch.float64)
            for ms, ps in zip(m.pop("per_task"), p.pop("per_task"))
        ]
        diffs = [mean_ci(g) for g in gaps]
        wins = [mean_ci((g > 0).double()) for g in gaps]  # share of tasks on which MAML's MSE is lower
        out[f"K={k}"] = {
            "k_shot": int(k),
            "maml": m,
            "pretrained": p,
            "difference": {
                "mean": [d[0] for d in diffs],
                "ci95": [d[1] for d in diffs],
                "median": [float(g.nan_to_num(nan=-math.inf).median()) for g in gaps],
                "win_share": [w[0] for w in wins],
                "win_ci95": [w[1] for w in wins],
            },
            "maml_lr": maml_lr,
            "pretrained_lr": lr_p,
            "num_tasks": num_tasks,
        }
    return out


def maml_beats_pretrained(comparison: Mapping[str, Any], k_shot: int, steps: Sequence[int] = (1, 5, 10)) -> bool:
    """True when MAML beats the pretrained model after every listed number of steps, task by task (same tasks
    and points): MAML has the lower MSE on significantly more than half of the tasks (the 95% interval of
    that share lies above 1/2) and the median per-task improvement (pretrained - MAML) exceeds 0.1.

    Per-task statistics, not the mean difference: a few tasks on which fine-tuning blows up (ch02) make a
    mean infinite without changing what happens on the other tasks; chapter 02 shows those separately.
    """
    d = comparison[f"K={k_shot}"]["difference"]
    return all(d["win_share"][s] - d["win_ci95"][s] > 0.5 and d["median"][s] > 0.1 for s in steps)


@dataclass
class SinusoidPaper:
    """What :func:`sinusoid_paper_experiment` returns: the trained learners and the JSON-able numbers."""

    maml: Optional[nn.Module]
    pretrained: Optional[nn.Module]
    results: dict[str, Any] = field(default_factory=dict)


def _maml_sharpness(model: nn.Module, comparison: Mapping[str, Any], num_tasks: int) -> dict[str, Any]:
    """The sharpness of MAML's inner step (step size 0.01) on the compared test tasks, K = 5 and 10; at K = 5 also
    along the steps of the tasks that blew up within 10 steps."""
    sharpness = {}
    power_iterations = pick(50, 200)  # power iteration (step_sharpness): the medians settle long before 50
    for k in (5, 10):  # the same tasks as compare_sinusoid
        tasks = sinusoid_tasks(num_tasks, k, 100)
        values = step_sharpness(model, tasks, 0.01, iterations=power_iterations)
        sharpness[f"K={k}"] = sharpness_summary(values)
        if k == 5:
            mask = torch.zeros(num_tasks, dtype=torch.bool)
            mask[comparison["K=5"]["maml"]["diverged_tasks"]] = True
            sharpness["K=5"]["along_steps"] = sharpness_along_steps(
                model, tasks, 0.01, mask, iterations=power_iterations, at_start=values
            )
    return sharpness


def sinusoid_paper_experiment(
    iterations: Optional[int] = None,
    *,
    meta_batch_size: Optional[int] = None,
    num_tasks: Optional[int] = None,
    seed: int = 0,
    progress: bool = True,
    device: str = "cpu",
    out_dir: Optional[str | Path] = None,
    save_as: Optional[str] = None,
    init: str = "pytorch",
    k_shot_train: int = 10,
    committed: bool = False,
) -> SinusoidPaper:
    """MAML vs "pretrained on all tasks" on sinusoid regression (Finn et al. 2017, section 5.1). Both models: 1-40-40-1 ReLU, Adam 1e-3, meta-batch 25 tasks of K=10 (+10 query) points, the same
    iteration budget (full: 70,000; fast mode: 1,500, meta-batch 10 — chapter 02 passes 1,000). MAML: one inner step, alpha=0.01,
    second order. Evaluation: fine-tune on K=5 and K=10 points of ``num_tasks`` new tasks, 0..10 steps.
    ``save_as`` writes the numbers to ``results/<save_as>.json``; ``out_dir`` keeps checkpoints (resume). Variants
    (ch02's robustness table): ``init="reference"`` (the authors' initialisation) and ``k_shot_train=5``
    (meta-train on K=5 support + 5 query points, the reference code's default).
    ``committed=True`` (chapter 02's full mode): load the committed weights ``results/chapters/ch02/sinusoid-*.pt``
    when they were trained with these settings, and evaluate them on the test tasks, instead of training.
    """
    iterations = pick(1500, 70_000) if iterations is None else iterations
    meta_batch_size = pick(10, 25) if meta_batch_size is None else meta_batch_size
    num_tasks = pick(300, 1000) if num_tasks is None else num_tasks
    start = time.perf_counter()
    common = dict(meta_batch_size=meta_batch_size, seed=seed, device=device, progress=progress, init=init)
    common |= dict(k_shot=k_shot_train, n_query=k_shot_train)
    runs = {
        algo: train_sinusoid(
            algo,
            iterations,
            **common,
            out_dir=None if out_dir is None else Path(out_dir) / f"sinusoid-{algo}",
            committed=f"ch02/sinusoid-{algo}" if committed else None,
        )
        for algo in ("maml", "pretrain")
    }
    comparison = compare_sinusoid(runs["maml"].learner, runs["pretrain"].learner, num_tasks=num_tasks)
    results = {
        "setting": {
            "model": "SinusoidMLP 1-40-40-1 ReLU",
            **dict(iterations=iterations, meta_batch_size=meta_batch_size, k_shot_train=k_shot_train),
            **dict(n_query_train=k_shot_train, inner_lr=0.01, inner_steps=1, outer_lr=1e-3, optimizer="Adam"),
            **dict(seed=seed, init=init, test_tasks=num_tasks, test_query_points=100),
        },
        "comparison": comparison,
        "maml_step_sharpness": _maml_sharpness(runs["maml"].learner.model, comparison, num_tasks),
        "histories": {algo: history_curve(r.history) for algo, r in runs.items()},
        "train_wall_time_s": {algo: round(r.wall_time_s, 1) for algo, r in runs.items()},
        "paper": PAPER_SINUSOID,
    }
    if committed:
        results["provenance"] = {algo: r.provenance.describe() for algo, r in runs.items()}
    results["maml_beats_pretrained"] = {f"K={k}": maml_beats_pretrained(comparison, k) for k in (5, 10)}
    if save_as:
        save_result(save_as, results, device, wall_time_s=time.perf_counter() - start)
    return SinusoidPaper(maml=runs["maml"].learner, pretrained=runs["pretrain"].learner, results=results)


def sharpness_summary(values: Tensor) -> dict[str, Any]:
    """Quantiles of ``alpha * lambda_max`` (:func:`step_sharpness`), the share of tasks above 1 and 2, and
    the values themselves (rounded) for a histogram."""
    v = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    q = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    return {
        "quantiles_10_50_90": [round(float(x), 3) for x in v.quantile(q)],
        "max": round(float(v.max()), 3),
        "share_above_1": round(float((v > 1).double().mean()), 4),
        "share_above_2": round(float((v > 2).double().mean()), 4),
        "values": [round(float(x), 3) for x in v],
    }


def load_paper_runs(
    name: str = "sinusoid_paper_full", directory: str | Path | None = None
) -> dict[str, dict[str, Any]]:
    """``{label: results}`` of every saved full-scale run: ``<name>.json`` (seed 0, PyTorch init, training
    K=10) and its variants ``<name>_seed1``, ``<name>_reference_init``, ``<name>_train_k5``, ... (ch02).

    The label names what differs: ``"seed 1, pytorch init, train K=10"``.
    """
    folder = Path(directory if directory is not None else RESULTS_DIR)
    runs = []
    for path in sorted(folder.glob(f"{name}*.json")):
        if path.stem != name and not path.stem.startswith(f"{name}_"):
            continue
        data = load_result(path.stem, folder)
        setting = data.get("setting", {}) if data else {}
        if not data or "comparison" not in data or not isinstance(setting.get("iterations"), int):
            continue  # another experiment's file, or a partial run (its iterations are per algorithm)
        key = (setting.get("init", "pytorch") != "pytorch", setting.get("k_shot_train", 10), setting.get("seed", 0))
        label = (
            f"seed {setting.get('seed', 0)}, {setting.get('init', 'pytorch')} init, "
            f"train K={setting.get('k_shot_train', 10)}"
        )
        runs.append((key, label, data))
    return {label: data for _, label, data in sorted(runs, key=lambda r: r[0])}


def _span(values: Sequence[float], digits: int = 2) -> str:
    """``"0.57–0.72"``: the smallest and largest of ``values`` (finite ones) with ``digits`` decimals."""
    finite = [v for v in values if math.isfinite(v)]
    return f"{min(finite):.{digits}f}–{max(finite):.{digits}f}" if finite else "none finite"


def full_runs_summary(runs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Chapter 02's account of the full-scale runs (:func:`load_paper_runs`), as lines computed from the files so that
    no figure is typed into the notebook: the files' dates, K=5 means after one step beside the paper's, the median
    task after 5 and 10 steps, the tasks diverged after each step, the share of tasks with ``alpha * lambda_max``
    above 2, and the curvature after one step of the tasks that blow up against the others."""
    if not runs:
        raise ValueError("no full-scale runs: results/sinusoid_paper_full*.json are missing")
    k5 = {label: r["comparison"]["K=5"] for label, r in runs.items()}
    paper = PAPER_SINUSOID
    dates = sorted({r["date"][:10] for r in runs.values()})
    lines = [
        f"{len(runs)} full runs, files dated {', '.join(dates)} (each file's date is printed with the tables above)",
        f"K=5, after 1 step: MAML mean {_span([c['maml']['mean'][1] for c in k5.values()])} (paper "
        f"{paper['maml'][0]}), pretrained {_span([c['pretrained']['mean'][1] for c in k5.values()])} "
        f"(paper {paper['pretrained'][0]})",
        f"K=5, median task after 5 steps {_span([c['maml']['median'][5] for c in k5.values()])}, after 10 steps "
        f"{_span([c['maml']['median'][10] for c in k5.values()])} (the paper's means: {paper['maml'][1]}, "
        f"{paper['maml'][2]})",
    ]
    for label, c in k5.items():
        n = c.get("num_tasks", "?")
        lines.append(f"K=5, {label}: tasks diverged after 1..10 steps {c['maml']['diverged'][1:]} of {n}")
    k10 = max(max(r["comparison"]["K=10"]["maml"]["diverged"]) for r in runs.values())
    lines.append(f"K=10: the most tasks diverged in any run after any number of steps: {k10}")
    for k in ("K=5", "K=10"):
        shares = [r["maml_step_sharpness"][k]["share_above_2"] for r in runs.values() if "maml_step_sharpness" in r]
        if shares:
            lines.append(
                f"{k}: share of tasks with alpha*lambda_max > 2 at theta: {_span([100 * s for s in shares], 0)} %"
            )
    for label, r in runs.items():
        along = r.get("maml_step_sharpness", {}).get("K=5", {}).get("along_steps")
        if along and along["num_diverged"] > 0:
            lines.append(
                f"{label}: median alpha*lambda_max after 1 step: {along['diverged'][1]:.1f} for the "
                f"{along['num_diverged']} tasks that blow up, {along['not_diverged'][1]:.1f} for the others"
            )
    return lines


def variants_table(runs: Mapping[str, Mapping[str, Any]], k_shot: int = 5, steps: Sequence[int] = (1, 5, 10)) -> str:
    """One row per run (:func:`load_paper_runs`): MAML's mean, median and mean-over-the-tasks-that-did-not-
    diverge query MSE after ``steps`` fine-tuning steps on ``k_shot`` points, the tasks diverged after the
    last step, and the median ``alpha * lambda_max`` with the share of tasks above 2."""
    rows = []
    for label, r in runs.items():
        entry = r["comparison"][f"K={k_shot}"]["maml"]
        n = r["comparison"][f"K={k_shot}"].get("num_tasks", "?")
        sharp = r.get("maml_step_sharpness", {}).get(f"K={k_shot}")
        joined = lambda key: " / ".join(mse_cell(entry[key][s]) for s in steps) if key in entry else "-"  # noqa: E731
        rows.append(
            [
                label,
                joined("mean"),
                joined("median"),
                joined("mean_not_diverged"),
                f"{entry['diverged'][steps[-1]]}/{n}" if "diverged" in entry else "-",
                f"{sharp['quantiles_10_50_90'][1]:.2f} ({100 * sharp['share_above_2']:.0f}% > 2)" if sharp else "-",
            ]
        )
    label = "/".join(str(s) for s in steps)
    return format_table(
        rows,
        [
            "run",
            f"mean, {label} steps",
            "median",
            "mean, tasks not diverged",
            f"diverged at {steps[-1]}",
            "median alpha*lambda_max",
        ],
    )


def mse_cell(mean: float, ci95: Optional[float] = None) -> str:
    """``"0.57 ± 0.04"``; a mean that is nan, inf or above 1,000 (some tasks blew up) reads ``"diverged"``."""
    if not (math.isfinite(mean) and mean < 1e3):
        return "diverged"
    return f"{mean:.2f}" if ci95 is None else f"{mean:.2f} ± {ci95:.2f}"


def paper_table(results: Mapping[str, Any], label: str = "this run", k_shot: int = 5) -> str:
    """Our MSE after 1/5/10 steps (K=5) next to the published numbers, as a text table.

    Columns: the mean over all test tasks (what the paper plots), the median task, how many tasks
    diverged (query MSE more than 10 times worse than before adapting, or not finite), the paper's values.
    """
    entry = results["comparison"][f"K={k_shot}"]
    m, p = entry["maml"], entry["pretrained"]
    tasks = entry.get("num_tasks", "?")
    rows = []
    for i, s in enumerate(PAPER_SINUSOID["steps"]):
        median = f"{m['median'][s]:.2f}" if "median" in m else "-"
        diverged = f"{m['diverged'][s]}/{tasks}" if "diverged" in m else "-"
        rows.append(
            [
                s,
                mse_cell(m["mean"][s], m["ci95"][s]),
                median,
                diverged,
                f"{PAPER_SINUSOID['maml'][i]:.2f}",
                mse_cell(p["mean"][s], p["ci95"][s]),
                f"{PAPER_SINUSOID['pretrained'][i]:.2f}",
            ]
        )
    return format_table(
        rows,
        [
            "grad steps",
            f"MAML mean ({label})",
            "median",
            "diverged",
            "MAML (paper)",
            f"pretrained mean ({label})",
            "pretrained (paper)",
        ],
    )


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


def sinusoid_task_embedding(model: nn.Module, tasks, inner_lr: float = 0.01, steps: int = 1) -> Tensor:
    """Embed each task as the change of the parameters its adaptation makes: ``phi_t - theta`` ``[T, P]``.

    Tasks that need similar corrections land close together (the "task embedding" of section 2).
    """
    phi = make_learner("maml", model, inner_lr=inner_lr).adapt(tasks, steps=steps)
    theta = {k: v.detach() for k, v in model.named_parameters()}
    return torch.cat([(phi[k] - theta[k]).reshape(len(phi[k]), -1) for k in theta], dim=1)


def pca_2d(x: Tensor, k: int = 2) -> tuple[Tensor, Tensor]:
    """Project rows of ``x`` ``[T, D]`` on their first ``k`` principal components.

    Returns ``(points [T, k], explained_variance_ratio [k])``. Signs follow a fixed convention (the
    largest-magnitude loading of each component is positive) so results are reproducible.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"pca_2d needs a [tasks >= 2, features] matrix, got {tuple(x.shape)}")
    centred = x - x.mean(0, keepdim=True)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    comps = vh[:k]
    sign = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))
    comps = comps * sign
    var = s.square()
    return centred @ comps.T, var[:k] / var.sum()


# --------------------------------------------------------------------------------------------------
# Omniglot few-shot classification


def load_omniglot_splits(image_size: int = 28, rotations: bool = True, device: torch.device | str | None = None):
    """``{"train": ..., "test": ...}`` Omniglot splits (Vinyals: train characters vs unseen test characters)."""

    device = resolve_device(device or "cpu")
    return {s: load_omniglot(s, image_size=image_size, rotations=rotations).to(device) for s in ("train", "test")}


def _resumed(partial_path: str | Path | None, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The finished tasks of an interrupted from-scratch run with the same ``settings`` (else none)."""
    if partial_path is not None and Path(partial_path).exists():
        saved = json.loads(Path(partial_path).read_text())
        if saved.get("settings") == settings:
            return saved
    return {"per_task": [], "wall_time_s": 0.0}


def _fit_and_test(model: nn.Module, step: Callable, init: dict[str, Tensor], steps: int, batch: Any, t: int) -> float:
    """Task ``t`` of ``batch``: ``steps`` SGD steps from ``init`` on its support set, then its query accuracy."""
    params = init  # detached: torch.func.grad builds the only graph, inside the step
    for _ in range(steps):
        params = step(params, batch.support_x[t], batch.support_y[t])
    with torch.no_grad():
        out = functional_call(model, params, (batch.query_x[t],))
    return task_metrics(out, batch.query_y[t], True)[1]["query_accuracy"].item()


def _sgd_step(model: nn.Module, lr: float, compile_on: Optional[torch.device]) -> Callable:
    """``step(params, x, y)``: one plain SGD step of ``lr`` on the cross-entropy of ``model`` with ``params``,
    compiled for ``compile_on`` where it is given."""

    def sgd_step(params: dict[str, Tensor], x: Tensor, y: Tensor) -> dict[str, Tensor]:
        loss_fn = lambda p: task_metrics(functional_call(model, p, (x,)), y, True)[0]  # noqa: E731
        return sgd_steps(loss_fn, params, lr, 1, create_graph=False, grad_fn=grad_func)

    return CompiledCall(sgd_step, compile_on) if compile_on is not None else sgd_step


def scratch_baseline(
    test_sampler,
    num_tasks: int = 100,
    *,
    steps: int = 100,
    lr: float = 0.1,
    hidden: int = 32,
    image_size: int = 28,
    seed: int = 0,
    batch_size: int = 25,
    compile: bool = False,
    progress: bool = False,
    partial_path: str | Path | None = None,
) -> dict[str, Any]:
    """Train a fresh Conv4 on each task's support set only (no prior experience), then test on its queries.

    Every task starts from the same random initialisation (seeded) and takes ``steps`` plain SGD steps of
    size ``lr`` on the N*K support images (MAML's inner loop, :func:`~mlcourse.algorithms.core.sgd_steps`, from
    a random init), one task after another. ``compile=True`` compiles that one SGD step
    (:class:`~mlcourse.algorithms.execution.CompiledCall`: faster than eager on a CPU, and ``vmap`` over the tasks is
    slower, because every task has its own weights); where it cannot compile it says so in one line and runs
    eagerly. Tasks are drawn ``batch_size`` at a time; with ``partial_path`` the accuracies of every
    finished batch are written there atomically and a restarted call with the same settings resumes after
    them. Returns ``{"mean", "ci95", "per_task", "compile_seconds", "wall_time_s"}`` (chapter 01).
    """
    settings = dict(num_tasks=num_tasks, steps=steps, lr=lr, hidden=hidden, image_size=image_size, seed=seed)
    settings.update(batch_size=batch_size, n_way=test_sampler.n_way)
    check_inner(lr, steps)
    seed_everything(seed)
    model = Conv4(in_channels=1, n_out=test_sampler.n_way, hidden=hidden, image_size=image_size)
    model = model.to(test_sampler.device)
    init = {k: v.detach() for k, v in model.named_parameters()}
    step = _sgd_step(model, lr, test_sampler.device if compile else None)
    done = _resumed(partial_path, settings)
    accs: list[float] = list(done["per_task"])
    start, elapsed = time.perf_counter(), float(done["wall_time_s"])
    bar = tqdm(total=num_tasks, initial=len(accs), desc="from scratch", unit="task", disable=not progress)
    for first in range(0, num_tasks, batch_size):
        batch = test_sampler.sample(min(batch_size, num_tasks - first))  # drawn even when resumed: same tasks
        if first < len(accs):
            continue
        for t in range(len(batch.support_x)):
            accs.append(_fit_and_test(model, step, init, steps, batch, t))
            bar.update(1)
        if partial_path is not None:
            seconds = elapsed + time.perf_counter() - start
            write_json(partial_path, {"settings": settings, "per_task": accs, "wall_time_s": seconds})
    bar.close()
    m, c = mean_ci(accs)
    return {
        "mean": m,
        "ci95": c,
        "per_task": accs,
        "compile_seconds": round(step.seconds if isinstance(step, CompiledCall) else 0.0, 1),
        "wall_time_s": round(elapsed + time.perf_counter() - start, 1),
    }


SCRATCH_RUN = "scratch-5w5s"  # chapter 01's from-scratch baseline, saved beside the shipped runs


def _scratch_results(config: dict[str, Any], result: Mapping[str, Any], dev: torch.device, device: str) -> dict:
    """The from-scratch baseline's results file, in the format of the shipped runs (``weights`` null)."""
    mean, ci95, std = confidence_interval(result["per_task"])
    c = config
    command = (
        f"mlcourse scratch-baseline --tasks {c['test_tasks']} --n-way {c['n_way']} --k-shot {c['k_shot']} "
        f"--n-query {c['n_query']} --steps {c['inner_steps']} --lr {c['inner_lr']} --hidden {c['hidden']} "
        f"--image-size {c['image_size']} --{'' if c['compile'] else 'no-'}compile --device {device}"
    )
    return {
        "config": config,
        "test": {
            "metric": "accuracy",
            "mean": mean,
            "ci95": ci95,
            "std": std,
            "num_tasks": c["test_tasks"],
            "inner_steps": c["inner_steps"],
            "protocol": "transductive",  # each task's queries go through the network as one batch (its statistics)
            "per_task": result["per_task"],
        },
        "iterations": 0,
        **provenance(dev, command=command, wall_time_s=result["wall_time_s"]),
        "compile_seconds": result["compile_seconds"],
        "weights": None,
        "note": "a fresh Conv-4 (one seeded initialisation) trained by SGD on each task's support set alone",
    }


def scratch_run(
    num_tasks: int = 600,
    *,
    n_way: int = 5,
    k_shot: int = 5,
    n_query: int = 5,
    steps: int = 100,
    lr: float = 0.1,
    hidden: int = 64,
    image_size: int = 28,
    device: str = "cpu",
    compile: bool = True,
    out_dir: str | Path | None = None,
) -> Path:
    """Chapter 01's from-scratch baseline at full scale: :func:`scratch_baseline` on ``num_tasks`` tasks of unseen
    characters (the protocol's fixed test tasks), saved as ``results/omniglot/scratch-5w5s/results.json`` in the
    format of the shipped runs (no weights: nothing is meta-trained). ``mlcourse scratch-baseline``. Finished batches of
    tasks are kept in ``partial.json`` beside it, so an interrupted run resumes where it stopped."""
    dev = resolve_device(device)
    out = Path(out_dir) if out_dir is not None else shipped.SHIPPED_DIR / SCRATCH_RUN
    partial = out / "partial.json"
    out.mkdir(parents=True, exist_ok=True)
    sampler = EpisodeSampler(
        load_omniglot_splits(image_size, device=dev)["test"], n_way, k_shot, n_query, seed=TEST_SEED
    )
    result = scratch_baseline(
        sampler,
        num_tasks,
        steps=steps,
        lr=lr,
        hidden=hidden,
        image_size=image_size,
        compile=compile,
        progress=True,
        partial_path=partial,
    )
    config = {
        "algo": "scratch",
        "data": "omniglot",
        "split_scheme": "vinyals",
        "n_way": n_way,
        "k_shot": k_shot,
        "n_query": n_query,
        "inner_steps": steps,
        "test_inner_steps": steps,
        "inner_lr": lr,
        "hidden": hidden,
        "image_size": image_size,
        "test_tasks": num_tasks,
        "compile": compile,
    }
    results = _scratch_results(config, result, dev, device)
    path = save_results(out / "results.json", results)
    partial.unlink(missing_ok=True)
    return path


@dataclass(frozen=True)
class ScratchOptions:
    """Chapter 01: a fresh Conv-4 trained by SGD on each test task's support set alone (no meta-learning)."""

    tasks: Annotated[int, arg("test tasks")] = 600
    n_way: Annotated[int, arg("classes per task")] = 5
    k_shot: Annotated[int, arg("support examples per class")] = 5
    n_query: Annotated[int, arg("query examples per class")] = 5
    steps: Annotated[int, arg("SGD steps on each support set")] = 100
    lr: Annotated[float, arg("SGD step size")] = 0.1
    hidden: Annotated[int, arg("Conv-4 filters")] = 64
    image_size: Annotated[int, arg("image side in pixels")] = 28
    device: Annotated[str, arg("auto, cpu, cuda, cuda:N")] = "cpu"
    compile: Annotated[bool, arg("compile the SGD step with torch.compile (eager without a C++ compiler)")] = True
    out: Annotated[
        Optional[str], tyro.conf.DisallowNone, arg("run folder", metavar="DIR", default="results/omniglot/scratch-5w5s")
    ] = None


def scratch_command(args: ScratchOptions) -> int:
    """``mlcourse scratch-baseline``: write chapter 01's from-scratch baseline (see :func:`scratch_run`)."""
    path = scratch_run(
        args.tasks,
        n_way=args.n_way,
        k_shot=args.k_shot,
        n_query=args.n_query,
        steps=args.steps,
        lr=args.lr,
        hidden=args.hidden,
        image_size=args.image_size,
        device=args.device,
        compile=args.compile,
        out_dir=args.out,
    )
    test = load_results(path)["test"]
    print(
        f"from scratch: {100 * test['mean']:.2f} % ± {100 * test['ci95']:.2f} % on {test['num_tasks']} tasks; wrote {path}"
    )
    return 0


def run_dir(chapter: str, name: str) -> Optional[Path]:
    """``runs/<chapter>/<name>`` in full mode, ``None`` in fast mode (chapters 01 and 03).

    Full-mode runs keep their checkpoints there: re-running a cell resumes an interrupted run, and a finished
    run (also one trained by the printed ``mlcourse train`` command, e.g. on a GPU) is loaded, not retrained.
    Fast mode trains in memory so that CI never reuses a run of older code.
    """
    if any(not part or part.startswith(".") or "/" in part or "\\" in part for part in (chapter, name)):
        raise ValueError(f"run_dir({chapter!r}, {name!r}): chapter and name must be plain folder names")
    return None if fast_mode() else runs_dir() / chapter / name


def omniglot_config(
    algo: str,
    *,
    iterations: int,
    n_way: int = 5,
    k_shot: int = 5,
    n_query: int = 5,
    meta_batch_size: int = 8,
    inner_lr: Optional[float] = None,
    inner_steps: Optional[int] = None,
    test_inner_steps: Optional[int] = None,
    outer_lr: float = 1e-3,
    hidden: int = 32,
    image_size: int = 28,
    test_tasks: int = 200,
    seed: int = 0,
    device: str = "cpu",
    first_order: bool = False,
    out_dir: Optional[str | Path] = None,
):
    """The ``TrainConfig`` of :func:`train_omniglot` (chapters 01 and 03; docs/FULL_SCALE.md prints it as commands).

    Inner settings default per family: gradient-based (maml, fomaml, metasgd, anil) alpha=0.4, 1 step in
    training, 3 at test (MAML paper); reptile 5 steps of 0.1 (support only); pretrain: a linear probe
    fitted with 50 steps of 0.5 on frozen features; protonet/matchingnet have no inner loop.
    """

    family = {"reptile": (0.1, 5, 10), "pretrain": (0.5, 1, 50)}.get(algo, (0.4, 1, 3))
    return TrainConfig(
        algo=algo,
        data="omniglot",
        n_way=n_way,
        k_shot=k_shot,
        n_query=n_query,
        inner_lr=inner_lr if inner_lr is not None else family[0],
        inner_steps=inner_steps if inner_steps is not None else family[1],
        test_inner_steps=test_inner_steps if test_inner_steps is not None else family[2],
        outer_lr=outer_lr,
        meta_batch_size=meta_batch_size,
        iterations=iterations,
        eval_every=max(1, iterations),
        val_tasks=0,
        test_tasks=test_tasks,
        seed=seed,
        device=device,
        image_size=image_size,
        hidden=hidden,
        first_order=first_order,
        out_dir=None if out_dir is None else str(out_dir),
        log_every=max(1, iterations // 100),
        checkpoint_every=max(1, min(500, iterations)),
    )


def train_omniglot(algo: str, *, progress: bool = True, **settings: Any):
    """Meta-train ``algo`` on Omniglot's training characters and test on unseen characters (``train``).

    ``settings`` are :func:`omniglot_config`'s. With an ``out_dir`` (full mode: :func:`run_dir`) the run is
    resumed or reused from there, and the equivalent ``mlcourse train`` command is printed first.
    """

    config = omniglot_config(algo, **settings)
    if config.out_dir is not None:
        print(
            f"{algo}: run directory {config.out_dir} (resumed or reused when it holds this run); from a terminal:\n  "
            f"{train_command(config)}"
        )
        notice = training_notice(config)  # nothing silently starts an hour of work
        if notice:
            print("  " + notice)
    return train(config, progress=progress)


ARTICLE_VS_MAML = "ch04_article_vs_maml"  # results/ch04_article_vs_maml.json: the full-size run of chapter 04


def article_vs_maml(
    iterations: int,
    *,
    test_tasks: int = 1000,
    k_shot: int = 10,
    alpha: float = 0.01,
    meta_batch_size: int = 25,
    max_steps: int = 10,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Chapter 04, section 7: the article's rule against MAML on the MAML paper's sinusoid benchmark.

    Both rules start from the same initialisation (``seed``) and get the same budget; only the meta-gradient
    differs. Returns ``{"models", "histories", "curves", "wall_time_s", "settings"}`` where ``curves[name]`` is
    the held-out query MSE after 0..``max_steps`` SGD steps of ``alpha`` on ``test_tasks`` new tasks.
    """

    device = resolve_device(device)
    sine = SinusoidTasks()
    sample = lambda g: sine.sample(meta_batch_size, k_shot, 10, generator=g, device=device)  # noqa: E731
    models, histories, wall = {}, {}, {}
    for name in ("maml", "article"):
        torch.manual_seed(seed)  # the same initialisation for both rules
        models[name] = SinusoidMLP().to(device)
        learner = make_learner(name, models[name], inner_lr=alpha, inner_steps=1)
        start = time.perf_counter()
        histories[name] = B.meta_train(
            learner, sample, iterations, outer_lr=1e-3, seed=seed, desc=name, progress=progress
        )
        wall[name] = time.perf_counter() - start
    test_batch = sine.sample(test_tasks, k_shot, 100, generator=torch.Generator().manual_seed(2024), device=device)
    curves = {name: B.mean_adaptation_loss(m, test_batch, alpha, max_steps).cpu() for name, m in models.items()}
    settings = dict(
        iterations=iterations,
        test_tasks=test_tasks,
        k_shot=k_shot,
        alpha=alpha,
        meta_batch_size=meta_batch_size,
        seed=seed,
    )
    return {"models": models, "histories": histories, "curves": curves, "wall_time_s": wall, "settings": settings}


BLACKBOX_VS_MAML = "ch08_blackbox_vs_maml"  # results/ch08_blackbox_vs_maml.json: chapter 08's trends comparison


def blackbox_vs_maml(
    iterations: int,
    *,
    num_tasks: int = 1000,
    k_shot_train: int = 10,
    meta_batch_size: int = 25,
    width: int = 64,
    layers: int = 2,
    heads: int = 4,
    outer_lr: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Chapter 08, trends: a black-box learner (``InContextRegressor``: a small transformer that reads the support
    points) meta-trained on the MAML paper's sinusoids (K = ``k_shot_train`` support + as many query points, Adam),
    then tested on the same ``num_tasks`` test tasks as chapter 02's MAML (``sinusoid_tasks``, K = 5 and 10, 100
    query points): query MSE per task, no gradient step at test time."""
    dev = resolve_device(device)
    seed_everything(seed)
    learner = BlackBox(InContextRegressor(width=width, layers=layers, heads=heads)).to(dev)
    generator = torch.Generator().manual_seed(seed)
    family = SinusoidTasks()
    start = time.perf_counter()
    losses = Trainer(learner, outer_lr=outer_lr).run(
        lambda: family.sample(meta_batch_size, k_shot_train, k_shot_train, generator=generator, device=dev),
        iterations,
        progress=progress,
        desc="black-box learner",
    )
    train_s = time.perf_counter() - start
    tests = {}
    for k in (5, 10):
        per_task = learner.evaluate(sinusoid_tasks(num_tasks, k, 100, device=dev))["query_loss"].double().cpu()
        mean, ci95 = mean_ci(per_task)
        tests[f"K={k}"] = {
            "mean": mean,
            "ci95": ci95,
            "median": float(per_task.median()),
            "per_task": per_task.tolist(),
        }
    settings = dict(
        model=f"InContextRegressor(width={width}, layers={layers}, heads={heads})",
        parameters=sum(p.numel() for p in learner.parameters()),
        iterations=iterations,
        meta_batch_size=meta_batch_size,
        k_shot_train=k_shot_train,
        outer_lr=outer_lr,
        seed=seed,
        test_tasks=num_tasks,
        test_query_points=100,
    )
    return {
        "settings": settings,
        "test": tests,
        "train_loss": losses[:: max(1, iterations // 200)],
        "train_wall_time_s": train_s,
        "learner": learner,
    }


def save_blackbox_vs_maml(
    run: Mapping[str, Any], device: torch.device | str = "cpu", directory: str | Path | None = None
) -> Path:
    """Write a :func:`blackbox_vs_maml` run to ``results/ch08_blackbox_vs_maml.json``."""
    payload = {k: run[k] for k in ("settings", "test", "train_loss")}
    return save_result(BLACKBOX_VS_MAML, payload, device, directory=directory, wall_time_s=run["train_wall_time_s"])


BLACKBOX_OOD = "ch08_blackbox_ood"  # results/ch08_blackbox_ood.json: chapter 08, tasks outside the training range
OOD_COMMAND = "mlcourse blackbox-ood --threads 1"  # how results/ch08_blackbox_ood.json is made (recorded in it)


def ood_families() -> dict[str, SinusoidTasks]:
    """Chapter 08's test families: the training range (amplitude U[0.1, 5], phase U[0, pi]) and three outside it:
    larger amplitudes, the other half-period of phases (waves of the opposite sign), and both at once."""
    pi = math.pi
    return {
        "training range": SinusoidTasks(),
        "amplitude 5-10": SinusoidTasks(amplitude=(5.0, 10.0)),
        "phase pi-2pi": SinusoidTasks(phase=(pi, 2 * pi)),
        "amplitude 5-10, phase pi-2pi": SinusoidTasks(amplitude=(5.0, 10.0), phase=(pi, 2 * pi)),
    }


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


def _loss_summary(losses: Tensor) -> dict[str, float]:
    """Mean ± 95 % CI and median of per-task query MSEs (a diverged task, ``nan`` or ``inf``, counts as ``inf``; its
    mean is then not finite, which :func:`mse_cell` prints as "diverged", so numpy's warning about it is silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, ci95 = mean_ci(losses)
    return {"mean": mean, "ci95": ci95, "median": float(losses.nan_to_num(nan=math.inf).median())}


def blackbox_ood(
    blackbox: nn.Module,
    maml: nn.Module,
    *,
    num_tasks: int = 500,
    shots: Sequence[int] = (5, 10),
    maml_steps: Sequence[int] = (1, 10),
    seed: int = SINUSOID_TEST_SEED,
) -> dict[str, Any]:
    """Chapter 08: the black-box learner (no step) against MAML after ``maml_steps`` SGD steps at its training
    step size, on the same tasks and query points of each :func:`ood_families` family (``num_tasks`` tasks, K in
    ``shots``, 100 queries). Per family and K: each model's query MSE (mean, 95 % CI, median) and the share of tasks
    on which the black box's MSE is below MAML's after ``max(maml_steps)`` steps (with its 95 % CI)."""
    if num_tasks < 2:
        raise ValueError(f"num_tasks={num_tasks} is not allowed; allowed: >= 2 (a confidence interval needs two)")
    if not maml_steps or min(maml_steps) < 0:
        raise ValueError(f"maml_steps={tuple(maml_steps)} is not allowed; allowed: integers >= 0, at least one")
    last = max(maml_steps)
    out: dict[str, Any] = {}
    for name, family in ood_families().items():
        rows = {}
        for k in shots:
            batch = family.sample(num_tasks, int(k), 100, generator=torch.Generator().manual_seed(seed))
            black = blackbox.evaluate(batch)["query_loss"].double().cpu()
            curve = maml.adaptation_curve(batch, last)["query_loss"].double().cpu()
            wins, wins_ci = mean_ci((black < curve[:, last].nan_to_num(nan=math.inf)).double())
            rows[f"K={k}"] = {
                "black box": _loss_summary(black),
                **{f"MAML, {s} step{'' if s == 1 else 's'}": _loss_summary(curve[:, s]) for s in maml_steps},
                "black_box_wins": {"share": wins, "ci95": wins_ci, "against": f"MAML, {last} steps"},
            }
        out[name] = {"amplitude": list(family.amplitude), "phase": list(family.phase), **rows}
    return out


def parameter_count(module: nn.Module) -> int:
    """The number of trainable numbers in ``module`` (chapter 08 prints it for both learners)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def blackbox_ood_run(*, num_tasks: int = 500, device: torch.device | str = "cpu", progress: bool = True) -> dict:
    """``mlcourse blackbox-ood``: the black-box learner trained again with the settings of
    ``results/ch08_blackbox_vs_maml.json`` (its weights are not committed; its in-distribution test is compared
    with the file's, task by task) and chapter 02's committed MAML, tested by :func:`blackbox_ood`."""
    committed = load_result(BLACKBOX_VS_MAML)
    if committed is None:
        raise FileNotFoundError(f"{result_path(BLACKBOX_VS_MAML)} is missing: run mlcourse blackbox-vs-maml first")
    s = committed["settings"]
    width, layers, heads = (int(v) for v in re.findall(r"=(\d+)", s["model"]))
    start = time.perf_counter()
    run = blackbox_vs_maml(
        s["iterations"],
        num_tasks=s["test_tasks"],
        k_shot_train=s["k_shot_train"],
        meta_batch_size=s["meta_batch_size"],
        width=width,
        layers=layers,
        heads=heads,
        outer_lr=s["outer_lr"],
        seed=s["seed"],
        device=device,
        progress=progress,
    )
    maml, maml_info = committed_sinusoid_maml()
    blackbox = run["learner"].cpu().eval()
    same = {
        k: max(abs(a - b) for a, b in zip(run["test"][k]["per_task"], committed["test"][k]["per_task"]))
        for k in committed["test"]
    }
    models = {
        "black box": {
            "model": s["model"],
            "parameters": parameter_count(blackbox),
            "settings_from": f"results/{BLACKBOX_VS_MAML}.json",
            "train_wall_time_s": round(run["train_wall_time_s"], 1),
            "max_abs_difference_from_committed_test": same,
        },
        "MAML": {"model": "SinusoidMLP 1-40-40-1", "parameters": parameter_count(maml), **maml_info},
    }
    results = blackbox_ood(blackbox, maml, num_tasks=num_tasks)
    return {"models": models, "families": results, "num_tasks": num_tasks, "wall_time_s": time.perf_counter() - start}


def save_blackbox_ood(run: Mapping[str, Any], device: torch.device | str = "cpu", directory=None) -> Path:
    """Write a :func:`blackbox_ood_run` to ``results/ch08_blackbox_ood.json`` with the command that made it."""
    payload = {"command": OOD_COMMAND, **{k: run[k] for k in ("models", "families", "num_tasks")}}
    return save_result(BLACKBOX_OOD, payload, device, directory=directory, wall_time_s=run["wall_time_s"])


def ood_table(families: Mapping[str, Any], k_shot: int = 10) -> str:
    """Query MSE (mean ± 95 % CI, median) of every model on each family at K = ``k_shot``, and the share of tasks
    the black box wins against MAML's longest adaptation."""
    rows, headers = [], None
    for name, fam in families.items():
        cell = fam[f"K={k_shot}"]
        models = [m for m in cell if m != "black_box_wins"]
        headers = headers or [
            "tasks (amplitude, phase)",
            *models,
            f"black box better than {cell['black_box_wins']['against']}",
        ]
        ranges = f"{name}: A in [{fam['amplitude'][0]:g}, {fam['amplitude'][1]:g}], b in [{fam['phase'][0]:.2f}, {fam['phase'][1]:.2f}]"
        wins = cell["black_box_wins"]
        rows.append(
            [ranges]
            + [f"{mse_cell(cell[m]['mean'], cell[m]['ci95'])} (median {cell[m]['median']:.3f})" for m in models]
            + [f"{100 * wins['share']:.0f} ± {100 * wins['ci95']:.0f} % of tasks"]
        )
    return format_table(rows, headers or [])


def ood_findings(families: Mapping[str, Any], k_shot: int = 10, reference: str = "training range") -> list[str]:
    """:func:`blackbox_ood`'s results in words, one line per family outside ``reference``: each model's median query
    MSE and how many times its median on the ``reference`` tasks that is, whether the black box's error grew by more
    or by less than MAML's, and on what share of the tasks the black box still does better (chapter 08)."""
    if reference not in families:
        raise ValueError(f"reference={reference!r} is not one of the families: {', '.join(families)}")
    base = families[reference][f"K={k_shot}"]
    lines = []
    for name, fam in families.items():
        if name == reference:
            continue
        cell = fam[f"K={k_shot}"]
        maml = cell["black_box_wins"]["against"]
        growth = {m: cell[m]["median"] / base[m]["median"] for m in ("black box", maml)}
        more = "more" if growth["black box"] > growth[maml] else "less"
        wins = cell["black_box_wins"]
        lines.append(
            f"K={k_shot}, {name}: black box median {cell['black box']['median']:.3f} ({growth['black box']:.3g}x its "
            f"median in the {reference}), {maml} {cell[maml]['median']:.3f} ({growth[maml]:.3g}x): the black box's "
            f"error grew {more} than MAML's; its MSE is the lower one on {100 * wins['share']:.0f} ± "
            f"{100 * wins['ci95']:.0f} % of the tasks"
        )
    return lines


def blackbox_table(blackbox: Mapping[str, Any], maml: Optional[Mapping[str, Any]], label: str = "black box") -> str:
    """Query MSE on the same test tasks: the black-box learner (no step) beside MAML after 1 and 10 steps."""
    rows = []
    for k in (5, 10):
        b = blackbox["test"][f"K={k}"]
        row = [f"K={k}", f"{mse_cell(b['mean'], b['ci95'])} (median {b['median']:.3f})"]
        if maml is not None:  # a mean over tasks some of which diverged reads "diverged"; the median still says much
            m = maml["comparison"][f"K={k}"]["maml"]
            row += [f"{mse_cell(m['mean'][s], m['ci95'][s])} (median {m['median'][s]:.3f})" for s in (1, 10)]
        rows.append(row)
    headers = ["support points", f"{label}: query MSE, no step"]
    if maml is not None:
        headers += ["MAML, 1 step", "MAML, 10 steps"]
    return format_table(rows, headers)


def save_article_vs_maml(
    run: Mapping[str, Any], device: torch.device | str = "cpu", directory: str | Path | None = None
) -> Path:
    """Write a full-size :func:`article_vs_maml` run to ``results/ch04_article_vs_maml.json`` (curves, wall times)."""
    payload = {
        "settings": run["settings"],
        "curves": {k: [float(x) for x in v] for k, v in run["curves"].items()},
        "wall_time_by_rule_s": {k: round(v, 1) for k, v in run["wall_time_s"].items()},
    }
    return save_result(
        ARTICLE_VS_MAML, payload, device, directory=directory, wall_time_s=sum(run["wall_time_s"].values())
    )


def shipped_omniglot(
    names: Sequence[str],
    *,
    retrain: bool = False,
    num_tasks: int = 600,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Full mode of chapters 01, 03 and 05: the shipped Omniglot runs (``results/omniglot``), re-evaluated.

    ``retrain=False`` (the default): each shipped run's fp32 weights are tested on ``num_tasks`` *fresh* test
    tasks (another seed than the committed result) — minutes on a CPU — and a line says whether the new
    number agrees with the committed one. ``retrain=True``: each run is trained again with its exact
    configuration into ``runs/omniglot/<name>`` (resumable); one step is measured first and the expected time
    printed. Returns ``{name: EvalResult or TrainResult}``.
    """

    runs = shipped.shipped_runs()
    missing = [n for n in names if n not in runs]
    if missing:
        raise FileNotFoundError(
            f"shipped run(s) {', '.join(missing)} not found under {shipped.SHIPPED_DIR}; "
            f"known: {', '.join(runs) or 'none'}"
        )
    out: dict[str, Any] = {}
    for name in names:
        committed = runs[name]
        if not retrain:
            start = time.perf_counter()
            result = shipped.reevaluate(name, num_tasks, device=device, progress=progress)
            recorded = shipped.recorded_test(committed, result.protocol)
            versus = (
                f"committed {100 * recorded['mean']:.2f} ± {100 * recorded['ci95']:.2f} %: "
                + ("agrees" if shipped.agrees(result, recorded) else "DIFFERS")
                if recorded
                else "no committed test under this protocol"
            )
            print(
                f"{name}: fresh {num_tasks} test tasks, {result.protocol} protocol, "
                f"{100 * result.mean:.2f} ± {100 * result.ci95:.2f} % ({versus}), {time.perf_counter() - start:.0f} s"
            )
            out[name] = result
            continue
        config = TrainConfig.from_dict(committed["config"]).replace(
            device=str(device), out_dir=str(runs_dir() / "omniglot" / name)
        )
        seconds = measure_step_time(config)
        print(expected_training_time(config, seconds))
        print(f"  from a terminal: {train_command(config)}")
        out[name] = train(config, progress=progress, experiment=build_experiment(config))
    return out


def omniglot_train_accuracy(
    learner: nn.Module, train_sampler, num_tasks: int = 100, inner_steps: Optional[int] = None
) -> tuple[float, float]:
    """Accuracy on new tasks drawn from the *training* characters (meta-training tasks' distribution)."""

    r = evaluate(learner, train_sampler, num_tasks, inner_steps=inner_steps)
    return r.mean, r.ci95


__all__ = [
    "RESULTS_DIR",
    "PAPER_SINUSOID",
    "PRETRAIN_STEP",
    "result_path",
    "save_result",
    "load_result",
    "format_table",
    "mean_ci",
    "sinusoid_tasks",
    "train_sinusoid",
    "history_curve",
    "sinusoid_adaptation",
    "shots_curve",
    "compare_sinusoid",
    "maml_beats_pretrained",
    "SinusoidPaper",
    "sinusoid_paper_experiment",
    "paper_table",
    "sinusoid_predictions",
    "sinusoid_task_embedding",
    "pca_2d",
    "load_omniglot_splits",
    "scratch_baseline",
    "train_omniglot",
    "omniglot_train_accuracy",
    "shipped_omniglot",
    "article_vs_maml",
    "save_article_vs_maml",
    "ARTICLE_VS_MAML",
]


Init = Literal[INITS]  # type: ignore[valid-type]
THREADS_HELP = "torch CPU threads"


@dataclass(frozen=True)
class ExperimentOptions:
    """The options of ``mlcourse article-vs-maml`` (chapter 04) and ``mlcourse blackbox-vs-maml`` (chapter 08)."""

    iterations: Annotated[
        Optional[int],
        tyro.conf.DisallowNone,
        arg("meta-iterations", default="20,000 (article-vs-maml), 10,000 (blackbox-vs-maml)"),
    ] = None
    threads: Annotated[Optional[int], tyro.conf.DisallowNone, arg(THREADS_HELP, default="torch's choice")] = None
    device: Annotated[str, arg("auto, cpu, cuda, cuda:N")] = "cpu"
    seed: Annotated[int, arg("training seed (the test tasks are the same for every seed)")] = 0


@dataclass(frozen=True)
class SinusoidOptions:
    """Chapter 02: the MAML paper's sinusoid run at full scale (resumable: checkpoints in --out)."""

    iterations: Annotated[int, arg("meta-iterations")] = 70_000
    threads: Annotated[Optional[int], tyro.conf.DisallowNone, arg(THREADS_HELP, default="torch's choice")] = None
    device: Annotated[str, arg("auto, cpu, cuda, cuda:N")] = "cpu"
    seed: Annotated[int, arg("training seed (the test tasks are the same for every seed)")] = 0
    init: Annotated[Init, arg("reference: the MAML authors' initialisation")] = "pytorch"
    k_shot_train: Annotated[int, arg("support (= query) points per training task")] = 10
    out: Annotated[
        Optional[str],
        tyro.conf.DisallowNone,
        arg("run folder", metavar="DIR", default="runs/sinusoid-paper-full, ...-seedN for seed N"),
    ] = None
    save_as: Annotated[
        Optional[str],
        tyro.conf.DisallowNone,
        arg("results name", metavar="NAME", default="sinusoid_paper_full, ..._seedN for seed N"),
    ] = None


@dataclass(frozen=True)
class OodOptions:
    """Chapter 08: the black-box learner and MAML on sinusoids outside the training range
    (results/ch08_blackbox_ood.json; the black box's training settings come from its results file)."""

    tasks: Annotated[int, arg("test tasks per family and K")] = 500
    threads: Annotated[Optional[int], tyro.conf.DisallowNone, arg(THREADS_HELP, default="torch's choice")] = None
    device: Annotated[str, arg("auto, cpu, cuda, cuda:N")] = "cpu"


def _threads(count: Optional[int]) -> None:
    if count:
        torch.set_num_threads(count)


def ood_command(args: OodOptions) -> int:
    """``mlcourse blackbox-ood``: chapter 08's test outside the training range -> results/ch08_blackbox_ood.json."""
    _threads(args.threads)
    run = blackbox_ood_run(num_tasks=args.tasks, device=args.device)
    counts = [f"{model} {info['parameters']:,}" for model, info in run["models"].items()]
    print(f"parameters: {', '.join(counts)}")
    for k in (5, 10):
        print(ood_table(run["families"], k_shot=k))
    print(f"saved {save_blackbox_ood(run, args.device)}")
    return 0


def blackbox_command(args: ExperimentOptions) -> int:
    """``mlcourse blackbox-vs-maml``: chapter 08's trends -> results/ch08_blackbox_vs_maml.json."""
    _threads(args.threads)
    run = blackbox_vs_maml(args.iterations or 10_000, seed=args.seed, device=args.device)
    print(blackbox_table(run, load_result("sinusoid_paper_full")))
    print(f"saved {save_blackbox_vs_maml(run, args.device)}")
    return 0


def article_command(args: ExperimentOptions) -> int:
    """``mlcourse article-vs-maml``: chapter 04's full-size run -> results/ch04_article_vs_maml.json."""
    _threads(args.threads)
    run = article_vs_maml(args.iterations or 20_000, test_tasks=1000, seed=args.seed, device=args.device)
    print(f"saved {save_article_vs_maml(run, args.device)}")
    return 0


def sinusoid_command(args: SinusoidOptions) -> int:
    """``mlcourse sinusoid-paper``: the full-scale sinusoid run behind ``results/sinusoid_paper_full.json``
    (resumable: checkpoints in ``runs/sinusoid-paper-full``)."""
    _threads(args.threads)
    suffix = "" if args.seed == 0 else f"-seed{args.seed}"
    suffix += "" if args.init == "pytorch" else f"-{args.init}-init"
    suffix += "" if args.k_shot_train == 10 else f"-train-k{args.k_shot_train}"
    out = args.out or str(runs_dir() / f"sinusoid-paper-full{suffix}")
    save_as = args.save_as or f"sinusoid_paper_full{suffix.replace('-', '_')}"
    result = sinusoid_paper_experiment(
        args.iterations,
        meta_batch_size=25,
        num_tasks=1000,
        device=args.device,
        out_dir=out,
        save_as=save_as,
        progress=True,
        seed=args.seed,
        init=args.init,
        k_shot_train=args.k_shot_train,
        committed=suffix == "",  # chapter 02's weights: loaded when committed; MLCOURSE_SHIP=1 writes them
    )
    print(paper_table(result.results, "this run"))
    print({k: v for k, v in result.results["maml_beats_pretrained"].items()})
    print(
        "alpha * lambda_max of MAML's support losses:",
        {k: v["quantiles_10_50_90"] for k, v in result.results["maml_step_sharpness"].items()},
    )
    return 0
