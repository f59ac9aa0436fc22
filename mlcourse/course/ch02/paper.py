"""Chapter 02's reproduction of the MAML paper's sinusoid experiment (section 5.1): MAML against a pretrained
network on the same tasks, shots curves, the step's sharpness, the full-scale runs and their variants, and the tables
that set them beside the paper (``mlcourse sinusoid-paper``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional

import torch
import tyro
from torch import Tensor, nn
from torch.func import functional_call

from mlcourse.algorithms import make_learner
from mlcourse.algorithms.core import sgd_steps
from mlcourse.algorithms.execution import grad_func
from mlcourse.cliparse import arg
from mlcourse.config import pick, runs_dir
from mlcourse.course.options import THREADS_HELP, set_threads
from mlcourse.course.result_files import load_result, result_path, save_result
from mlcourse.course.sinusoid import (
    SINUSOID_TEST_SEED,
    Init,
    history_curve,
    mse_cell,
    sinusoid_adaptation,
    sinusoid_tasks,
    train_sinusoid,
)
from mlcourse.stats import mean_ci
from mlcourse.tables import format_table

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
    folder = result_path(name, directory).parent
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


def sinusoid_command(args: SinusoidOptions) -> int:
    """``mlcourse sinusoid-paper``: the full-scale sinusoid run behind ``results/sinusoid_paper_full.json``
    (resumable: checkpoints in ``runs/sinusoid-paper-full``)."""
    set_threads(args.threads)
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
