"""Scalability measurements of chapter 08: time and memory of one meta-iteration as the inner steps, shots,
ways, meta-batch size and network width grow, with log-log growth exponents.

* Time: ``zero_grad`` + meta-loss + ``backward()`` of one meta-batch (the optimiser step is the same for
  every algorithm), the best of ``repeats`` runs after a warm-up (the least disturbed on a shared machine),
  with the vectorised core by default.
* Memory: :class:`mlcourse.bench.GraphMemory` counts the exact bytes of the tensors the autograd graph
  holds for ``backward()`` (saved-tensor hooks; device-independent, deterministic). ``torch.func``
  refuses those hooks, so the graph is measured with the per-task loop (the same tensors, unbatched).
  On CUDA, ``torch.cuda.max_memory_allocated`` of the timed implementation is recorded as well.
* Exponents: the slope ``b`` of ``log y = a + b log x`` (least squares), i.e. ``y ~ x^b``.

Algorithms: ``maml`` (second order), ``fomaml``, ``reptile``, ``anil`` (second order, head only),
``metasgd`` (second order), ``protonet`` (no inner loop; ``inner_steps`` does not apply).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional

import torch
import tyro

from mlcourse import bench, distributed, frontier
from mlcourse.algorithms import make_learner
from mlcourse.atomic import write_json
from mlcourse.cliparse import Flag, arg, require
from mlcourse.config import REPO_ROOT, resolve_device, runs_dir
from mlcourse.course.display import live_figure
from mlcourse.hostmemory import keep_freed_memory, release_freed_memory
from mlcourse.provenance import load_measurement, provenance
from mlcourse.shipped import method_label

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn (the GPU machine may not have it)
    from matplotlib.figure import Figure


SCALING_ALGORITHMS = ("maml", "fomaml", "reptile", "anil", "metasgd", "protonet")

AXES = ("inner_steps", "k_shot", "n_way", "meta_batch", "hidden")

AXIS_LABELS = {
    "inner_steps": "inner steps K",
    "k_shot": "shots per class",
    "n_way": "ways N",
    "meta_batch": "meta-batch size (tasks)",
    "hidden": "Conv-4 width (filters)",
}


@dataclass(frozen=True)
class Point:
    """One configuration of a meta-iteration (Conv-4 on random images in the one task format)."""

    n_way: int = 5
    k_shot: int = 1
    n_query: int = 5
    meta_batch: int = 4
    inner_steps: int = 1
    hidden: int = 16
    image_size: int = 28
    channels: int = 1

    def shape(self) -> bench.Shape:
        return bench.Shape(
            n_way=self.n_way,
            k_shot=self.k_shot,
            n_query=self.n_query,
            tasks=self.meta_batch,
            inner_steps=self.inner_steps,
            hidden=self.hidden,
            image_size=self.image_size,
            channels=self.channels,
        )


FAST_BASE = Point(n_way=5, k_shot=1, n_query=3, meta_batch=4, inner_steps=1, hidden=8, image_size=16)

FULL_BASE = Point(
    n_way=5, k_shot=1, n_query=5, meta_batch=8, inner_steps=1, hidden=64, image_size=28
)  # chapter 03's shape

FAST_GRID = {
    "inner_steps": [1, 2, 4, 8],
    "k_shot": [1, 2, 4, 8],
    "n_way": [2, 4, 8],
    "meta_batch": [2, 4, 8],
    "hidden": [4, 8, 16],
}

FULL_GRID = {
    "inner_steps": [1, 2, 4, 8, 16],
    "k_shot": [1, 2, 5, 10, 20],
    "n_way": [2, 5, 10, 20],
    "meta_batch": [2, 4, 8, 16, 32],
    "hidden": [8, 16, 32, 64, 128],
}


def _check(algo: str, axis: Optional[str] = None) -> None:
    if algo not in SCALING_ALGORITHMS:
        raise ValueError(f"unknown algorithm {algo!r}; allowed: {', '.join(SCALING_ALGORITHMS)}")
    if axis is not None and axis not in AXES:
        raise ValueError(f"unknown axis {axis!r}; allowed: {', '.join(AXES)}")


def graph_memory(algo: str, point: Point, *, device: str | torch.device = "cpu") -> dict[str, int]:
    """Exact autograd-graph bytes of one meta-iteration of ``algo`` at ``point`` (per-task loop, see the
    module docstring): ``{"held": bytes kept for backward, "peak": most held at once during the forward}``."""
    _check(algo)
    dev = torch.device(device)
    shape = point.shape()
    batch = bench.synthetic_batch(shape, device=dev)

    learner = make_learner(
        algo, bench.make_model(shape, device=dev), inner_lr=0.1, inner_steps=point.inner_steps, vectorise=False
    )
    return bench.graph_saved_bytes(
        lambda: learner(batch).loss, list(learner.parameters()) + [batch.support_x, batch.query_x]
    )


def time_meta_iteration(
    algo: str,
    point: Point,
    *,
    implementation: str = bench.VECTORISED,
    repeats: int = 3,
    device: str | torch.device = "cpu",
    warmup: int = 1,
    l2l: Any = None,
) -> dict[str, Any]:
    """Best-of-``repeats`` seconds (and the median) of one meta-gradient of ``algo`` at ``point`` (``implementation``: vectorised, per-task
    loop or learn2learn), and on CUDA the peak allocated memory of one more step."""
    _check(algo)
    dev = torch.device(device)
    shape = point.shape()
    batch = bench.synthetic_batch(shape, device=dev)
    model = bench.make_model(shape, device=dev)
    if implementation == bench.L2L:
        l2l = l2l or bench.load_learn2learn()
        if l2l is None:
            raise RuntimeError("learn2learn is not available (scripts/install_learn2learn.sh)")
        step, _ = bench.l2l_step(l2l, algo, model, shape, batch)
    else:
        step, _ = bench.mlcourse_step(algo, model, shape, batch, vectorise=implementation == bench.VECTORISED)
    times = bench.time_interleaved({implementation: step}, repeats, dev, warmup=warmup)[implementation]
    cuda_peak = bench.peak_memory(step, dev)[0] if dev.type == "cuda" else None
    # the best of the runs: the least disturbed by other load on a shared machine
    return {
        "seconds": min(times),
        "median_seconds": statistics.median(times),
        "times": times,
        "cuda_peak_bytes": cuda_peak,
    }


def sweep(
    algos: Sequence[str],
    axis: str,
    values: Sequence[int],
    *,
    base: Point = FAST_BASE,
    implementation: str = bench.VECTORISED,
    repeats: int = 3,
    device: str | torch.device = "cpu",
    memory: bool = True,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Time (and graph memory) of one meta-iteration for every ``algo`` and every ``value`` of ``axis``.

    Rows: ``{"algorithm", "axis", "value", "seconds", "graph_held_bytes", "graph_peak_bytes",
    "cuda_peak_bytes", "implementation", "device", "point"}``. ProtoNets has no inner loop: it is skipped
    on the ``inner_steps`` axis.
    """
    _check(algos[0] if algos else "maml", axis)
    jobs = [(a, v) for a in algos for v in values if not (a == "protonet" and axis == "inner_steps")]
    for a in algos:
        _check(a)
    iterator: Any = jobs
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(jobs, desc=f"sweep {axis}", leave=False)
    rows = []
    for algo, value in iterator:
        point = replace(base, **{axis: int(value)})
        t = time_meta_iteration(algo, point, implementation=implementation, repeats=repeats, device=device)
        mem = graph_memory(algo, point) if memory else {"held": None, "peak": None}
        release_freed_memory()  # the freed memory malloc keeps for a point's steps: points of other sizes cannot reuse it
        rows.append(
            {
                "algorithm": algo,
                "axis": axis,
                "value": int(value),
                "seconds": t["seconds"],
                "graph_held_bytes": mem["held"],
                "graph_peak_bytes": mem["peak"],
                "cuda_peak_bytes": t["cuda_peak_bytes"],
                "implementation": implementation,
                "device": str(device),
                "point": asdict(point),
            }
        )
    return rows


def fit_exponent(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares fit of ``log y = a + b log x``; returns ``(b, a)`` (``y ~ e^a x^b``). Needs >= 2 points
    with positive values."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y is not None and y > 0]
    if len(pts) < 2:
        raise ValueError(f"need at least 2 positive points to fit an exponent, got {len(pts)}")
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        raise ValueError("all x values are equal: no exponent to fit")
    b = sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx
    return b, my - b * mx


def exponents(rows: Sequence[Mapping[str, Any]], metric: str = "seconds") -> dict[str, dict[str, float]]:
    """``{axis: {algorithm: fitted exponent of metric}}`` from :func:`sweep` rows."""
    out: dict[str, dict[str, float]] = {}
    groups: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in rows:
        if r.get(metric) is not None:
            groups.setdefault((r["axis"], r["algorithm"]), []).append((r["value"], r[metric]))
    for (axis, algo), pts in groups.items():
        if len(pts) >= 2:
            out.setdefault(axis, {})[algo] = fit_exponent([p[0] for p in pts], [p[1] for p in pts])[0]
    return out


def exponent_table(exps: Mapping[str, Mapping[str, float]], algorithms: Sequence[str], axes: Sequence[str]) -> str:
    """Plain-text table of fitted exponents: one row per axis, one column per algorithm (``nan`` where none)."""
    lines = [f"{'axis':>12} | " + " | ".join(f"{a:>8}" for a in algorithms)]
    for axis in axes:
        lines.append(
            f"{axis:>12} | " + " | ".join(f"{exps.get(axis, {}).get(a, float('nan')):8.2f}" for a in algorithms)
        )
    return "\n".join(lines)


def load_scaling(path: Any = None) -> dict[str, Any]:
    """A full-size sweep of section 3 (``mlcourse scaling --full``; default: the newest
    ``benchmarks/results/scaling-cpu-*.json``), with ``file`` set; its rows are :func:`sweep`'s."""
    return load_measurement(
        "mlcourse.scaling", "a scaling sweep", "mlcourse scaling --full", pattern="scaling-cpu-*.json", path=path
    )


def _measured_by(payload: Mapping[str, Any]) -> str:
    """A sweep file's provenance in words: file, command, device, threads, torch, date and wall time."""
    wall = f", sweep wall time {payload['wall_time_s'] / 60:.1f} min" if payload.get("wall_time_s") else ""
    return (
        f"{Path(payload['file']).name} ({payload['command']}): {payload['device_name']}, {payload['threads']} "
        f"threads, torch {payload['torch']}, {payload['date'][:10]}{wall}"
    )


def scaling_source(payload: Mapping[str, Any]) -> str:
    """One line: where the sweep was measured (:func:`_measured_by`) and its base point."""
    b = payload["base"]
    return (
        f"{_measured_by(payload)}; around Conv-4 {b['hidden']} filters, {b['image_size']} px, {b['n_way']}-way "
        f"{b['k_shot']}-shot, {b['n_query']} queries, {b['meta_batch']} tasks, {b['inner_steps']} inner step"
    )


def axis_rows(
    payload: Mapping[str, Any], axis: str, algorithms: Optional[Sequence[str]] = None
) -> list[dict[str, Any]]:
    """The rows of one ``axis`` of a sweep file (:func:`load_scaling`), for ``algorithms`` only when given."""
    _check((algorithms or SCALING_ALGORITHMS)[0], axis)
    return [
        dict(r) for r in payload["rows"] if r["axis"] == axis and (algorithms is None or r["algorithm"] in algorithms)
    ]


def memory_table(rows: Sequence[Mapping[str, Any]], algorithms: Sequence[str]) -> str:
    """Graph bytes held for backward (MiB) of ``rows`` on the inner-steps axis: one line per algorithm, one column
    per K, and the bytes each extra inner step adds (the slope of a least-squares line)."""
    held = {(r["algorithm"], r["value"]): r["graph_held_bytes"] for r in rows}
    steps = sorted({r["value"] for r in rows})
    lines = [f"{'algorithm':>9} | " + " | ".join(f"K={k:<4}" for k in steps) + " | per extra step"]
    for algo in algorithms:
        per_step, _ = fit_linear(steps, [held[algo, k] for k in steps])
        cells = " | ".join(f"{held[algo, k] / 2**20:6.2f}" for k in steps)
        lines.append(f"{algo:>9} | {cells} | {per_step / 2**20:7.3f} MiB")
    return "\n".join(lines)


def memory_vs_inner_steps(
    algos: Sequence[str] = ("maml", "fomaml", "reptile", "anil", "metasgd"),
    steps: Sequence[int] = (1, 2, 4, 8),
    *,
    base: Point = FAST_BASE,
) -> list[dict[str, Any]]:
    """Graph memory (exact bytes held for backward) of one meta-iteration as the inner steps grow."""
    rows = []
    for algo in algos:
        _check(algo)
        for k in steps:
            mem = graph_memory(algo, replace(base, inner_steps=int(k)))
            rows.append(
                {
                    "algorithm": algo,
                    "axis": "inner_steps",
                    "value": int(k),
                    "graph_held_bytes": mem["held"],
                    "graph_peak_bytes": mem["peak"],
                }
            )
    return rows


def implementation_sweep(
    algo: str = "maml",
    axis: str = "meta_batch",
    values: Sequence[int] = (2, 4, 8),
    *,
    base: Point = FAST_BASE,
    repeats: int = 3,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Seconds per meta-iteration of the vectorised core, the per-task loop and learn2learn (when available)
    along ``axis`` (time only). Rows as :func:`sweep` with ``"algorithm"`` set to the implementation name."""
    _check(algo, axis)
    l2l = bench.load_learn2learn() if algo in bench.L2L_ALGORITHMS else None
    impls = [bench.VECTORISED, bench.LOOP] + ([bench.L2L] if l2l is not None else [])
    jobs = [(impl, v) for v in values for impl in impls]
    iterator: Any = jobs
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(jobs, desc=f"{algo}: implementations", leave=False)
    rows = []
    for impl, value in iterator:
        point = replace(base, **{axis: int(value)})
        t = time_meta_iteration(algo, point, implementation=impl, repeats=repeats, device=device, l2l=l2l)
        rows.append(
            {
                "algorithm": impl,
                "axis": axis,
                "value": int(value),
                "seconds": t["seconds"],
                "graph_held_bytes": None,
                "implementation": impl,
                "device": str(device),
                "point": asdict(point),
            }
        )
    return rows


# Section 6's remedies for MAML's memory, measured against the inner steps at chapter 03's shape.
REMEDY_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {  # label: (algorithm, its extra setting)
    "maml": ("maml", {}),
    "checkpointed": ("checkpointed", {}),
    "truncated-1": ("truncated", {"backprop_steps": 1}),
    "truncated-5": ("truncated", {"backprop_steps": 5}),
    "fomaml": ("fomaml", {}),
    "reptile": ("reptile", {}),
    "anil": ("anil", {}),
    "imaml": ("imaml", {}),
}

REMEDY_STEPS = (1, 2, 5, 10, 20, 50)

CH03_POINT = Point(n_way=5, k_shot=1, n_query=5, meta_batch=8, inner_steps=1, hidden=64, image_size=28)


def remedy_row(label: str, point: Point, *, repeats: int = 3, device: str | torch.device = "cpu") -> dict[str, Any]:
    """One variant at one point: the exact graph memory (per-task loop), the peak process memory of one
    meta-iteration and its seconds (best and median of ``repeats``, the learner's default path, eager)."""
    if label not in REMEDY_VARIANTS:
        raise ValueError(f"unknown variant {label!r}; allowed: {', '.join(REMEDY_VARIANTS)}")
    algo, extra = REMEDY_VARIANTS[label]
    dev, shape = torch.device(device), point.shape()
    batch = bench.synthetic_batch(shape, device=dev)

    def learner(vectorise: bool):
        model = bench.make_model(shape, device=dev)
        return make_learner(algo, model, inner_lr=0.1, inner_steps=point.inner_steps, vectorise=vectorise, **extra)

    loop = learner(False)
    graph = bench.graph_saved_bytes(
        lambda: loop(batch).loss, list(loop.parameters()) + [batch.support_x, batch.query_x]
    )
    timed = learner(True)
    step = bench.learner_step(timed, batch)
    times = bench.time_interleaved({label: step}, repeats, dev, warmup=1)[label]
    peak, how = bench.peak_memory(step, dev)
    return {
        "variant": label,
        "algorithm": algo,
        "inner_steps": point.inner_steps,
        "graph_held_bytes": graph["held"],
        "graph_peak_bytes": graph["peak"],
        "process_peak_bytes": peak,
        "process_peak_method": how,
        "seconds": min(times),
        "median_seconds": statistics.median(times),
        "path": "per-task loop" if not timed.vectorise else "vectorised",
    }


def remedies_sweep(
    variants: Sequence[str] = tuple(REMEDY_VARIANTS),
    steps: Sequence[int] = REMEDY_STEPS,
    *,
    base: Point = CH03_POINT,
    repeats: int = 3,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """:func:`remedy_row` for every variant and every inner-step count."""
    jobs = [(v, k) for v in variants for k in steps]
    iterator: Any = jobs
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(jobs, desc="remedies", leave=False)
    return [remedy_row(v, replace(base, inner_steps=int(k)), repeats=repeats, device=device) for v, k in iterator]


def remedy_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Optional[float]]]:
    """Per variant at the largest inner-step count: the graph's peak memory and the seconds relative to MAML's,
    and the graph's peak memory relative to its own at the smallest count (iMAML's must stay flat). The peak, not
    what is held at the end: iMAML builds its Hessian-vector products' graphs and frees them before backward."""
    by = {(r["variant"], r["inner_steps"]): r for r in rows}
    low, high = min(r["inner_steps"] for r in rows), max(r["inner_steps"] for r in rows)
    maml = by.get(("maml", high))
    out: dict[str, dict[str, Optional[float]]] = {}
    for variant in dict.fromkeys(r["variant"] for r in rows):
        top, bottom = by.get((variant, high)), by.get((variant, low))
        if top is None or bottom is None:
            continue
        out[variant] = {
            "inner_steps": high,
            "graph_vs_maml": top["graph_peak_bytes"] / maml["graph_peak_bytes"] if maml else None,
            "seconds_vs_maml": top["seconds"] / maml["seconds"] if maml else None,
            "graph_growth": top["graph_peak_bytes"] / bottom["graph_peak_bytes"],
        }
    return out


# --------------------------------------------------------------------------------------------------
# plots and the widget
# --------------------------------------------------------------------------------------------------
def plot_sweep(
    rows: Sequence[Mapping[str, Any]], metric: str = "seconds", *, ax=None, title: str = "", per_task: bool = False
) -> Figure:
    """Log-log plot of ``metric`` against the swept value, one line per algorithm, exponent in the legend.
    ``per_task``: divide seconds by the meta-batch size (``value`` on that axis)."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 3.8))
    else:
        fig = ax.figure
    axis = rows[0]["axis"] if rows else ""
    by_algo: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if r.get(metric) is not None:
            y = r[metric] / r["value"] if per_task else r[metric]
            by_algo.setdefault(r["algorithm"], []).append((r["value"], y))
    scale = 2**20 if metric.endswith("bytes") else 1e-3 if metric == "seconds" else 1
    for algo, pts in by_algo.items():
        pts.sort()
        xs, ys = [p[0] for p in pts], [p[1] / scale for p in pts]
        label = algo
        if len(pts) >= 2 and min(ys) > 0:
            label += f" (slope {fit_exponent(xs, ys)[0]:.2f})"
        ax.plot(xs, ys, "o-", ms=4, label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(AXIS_LABELS.get(axis, axis))
    unit = "MiB" if metric.endswith("bytes") else "ms" if metric == "seconds" else ""
    ax.set_ylabel(f"{metric.replace('_', ' ')}{' per task' if per_task else ''} [{unit}]")
    ax.set_title(title or f"{metric.replace('_', ' ')} vs {AXIS_LABELS.get(axis, axis)}", fontsize=9)
    ax.legend(fontsize=7, loc="best", framealpha=0.7)
    fig.tight_layout()
    return fig


def imaml_cg_errors(
    cg_steps: Sequence[int] = (1, 2, 3, 5, 10, 20), *, inner_steps: int = 100, lam: float = 2.0, seed: int = 0
) -> dict[int, float]:
    """iMAML's meta-gradient against the exact implicit gradient, by conjugate-gradient iterations: ``{cg_steps:
    relative error}``, in float64 on a small smooth network (tanh, 8x8 images) whose inner problem ``inner_steps``
    gradient steps solve to convergence; the exact gradient solves ``(I + H/lam) g = grad L_query`` with the dense
    Hessian, task by task."""
    shape = bench.Shape(
        n_way=3, k_shot=2, n_query=2, tasks=2, inner_steps=inner_steps, hidden=0, image_size=8, channels=1
    )
    batch = bench.synthetic_batch(shape, seed=seed, dtype=torch.float64)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).to(
        torch.float64
    )
    exact = _dense_implicit_gradient(model, batch, inner_steps, lam)
    errors = {}
    for k in cg_steps:
        learner = make_learner("imaml", model, inner_lr=0.1, inner_steps=inner_steps, imaml_lambda=lam, cg_steps=k)
        learner.zero_grad(set_to_none=True)
        learner(batch).loss.backward()
        grad = torch.cat([p.grad.flatten() for p in learner.parameters()])
        errors[int(k)] = float((grad - exact).norm() / exact.norm())
    return errors


def _dense_implicit_gradient(model: torch.nn.Module, batch: Any, inner_steps: int, lam: float) -> torch.Tensor:
    """Mean over tasks of ``(I + H/lam)^-1 grad L_query(phi*)``, ``H`` the dense Hessian of the support loss."""
    from torch.func import functional_call

    names, shapes = zip(*((k, p.shape) for k, p in model.named_parameters()))
    sizes = [s.numel() for s in shapes]
    learner = make_learner("imaml", model, inner_lr=0.1, inner_steps=inner_steps, imaml_lambda=lam)
    state = learner.adapt(batch)

    def loss(v: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        params = {k: c.view(s) for k, c, s in zip(names, v.split(sizes), shapes)}
        return torch.nn.functional.cross_entropy(functional_call(model, params, (x,)), y)

    total = torch.zeros(sum(sizes), dtype=torch.float64)
    for t in range(batch.num_tasks):
        phi = torch.cat([state[k][t].flatten() for k in names])
        hessian = torch.autograd.functional.hessian(lambda v: loss(v, batch.support_x[t], batch.support_y[t]), phi)
        query = torch.autograd.functional.jacobian(lambda v: loss(v, batch.query_x[t], batch.query_y[t]), phi)
        total += torch.linalg.solve(torch.eye(len(phi), dtype=phi.dtype) + hessian / lam, query)
    return total / batch.num_tasks


REMEDIES_FILE = "remedies-cpu-2026-12-06.json"


def load_remedies(path: Any = None) -> dict[str, Any]:
    """The committed remedies sweep (``mlcourse scaling --remedies``, ``benchmarks/results/``): every variant's
    graph memory, peak process memory and seconds against the inner steps, with the device and date."""
    return load_measurement(
        "mlcourse.remedies",
        "a remedies sweep",
        "mlcourse scaling --remedies",
        pattern=REMEDIES_FILE,
        path=path,
    )


def remedies_table(payload: Mapping[str, Any]) -> str:
    """Markdown table: per variant, graph memory at the smallest and largest inner-step count, its growth, and
    memory and seconds at the largest count relative to MAML's."""
    rows, summary = payload["rows"], payload["summary"]
    low, high = min(r["inner_steps"] for r in rows), max(r["inner_steps"] for r in rows)
    by = {(r["variant"], r["inner_steps"]): r for r in rows}
    lines = [
        f"| variant | graph K={low} [MiB] | graph K={high} [MiB] | growth K={low}→{high} (peak held) | "
        f"graph vs MAML at K={high} | s / iteration at K={high} | time vs MAML |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, s in summary.items():
        a, b = by[variant, low], by[variant, high]
        lines.append(
            f"| {variant} | {a['graph_peak_bytes'] / 2**20:.1f} | {b['graph_peak_bytes'] / 2**20:.1f} | "
            f"{b['graph_peak_bytes'] / a['graph_peak_bytes']:.2f}× | {_ratio_text(s['graph_vs_maml'])} | "
            f"{b['seconds']:.2f} | {_ratio_text(s['seconds_vs_maml'])} |"
        )
    return "\n".join(lines)


def _ratio_text(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.3f}×" if value < 0.1 else f"{value:.2f}×"


def remedies_source(payload: Mapping[str, Any]) -> str:
    """One line: file, device, threads, torch, date and the shape measured."""
    p = payload["point"]
    return (
        f"{_measured_by(payload)}; Conv-4 {p['hidden']} filters, {p['image_size']} px, {p['n_way']}-way {p['k_shot']}-shot, "
        f"{p['n_query']} queries, {p['meta_batch']} tasks"
    )


def plot_remedies(payload: Mapping[str, Any]) -> Figure:
    """Two log-log panels against the inner steps: the graph's peak memory and the seconds per meta-iteration."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric, unit, scale in ((axes[0], "graph_peak_bytes", "MiB", 2**20), (axes[1], "seconds", "s", 1)):
        for variant in dict.fromkeys(r["variant"] for r in payload["rows"]):
            pts = sorted((r["inner_steps"], r[metric] / scale) for r in payload["rows"] if r["variant"] == variant)
            ax.plot([x for x, _ in pts], [y for _, y in pts], "o-", ms=3, label=variant)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("inner steps K")
        ax.set_ylabel(
            f"{'autograd graph, peak held' if metric != 'seconds' else 'seconds per meta-iteration'} [{unit}]"
        )
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle("MAML and its remedies against the inner steps (" + payload["device_name"] + ")", fontsize=9)
    fig.tight_layout()
    return fig


def frontier_source(payload: Mapping[str, Any]) -> str:
    """One line: file, command, device, threads per learner and how many ran side by side, date, validation tasks."""
    v = payload["validation"]
    return (
        f"{Path(payload['file']).name} ({payload['command']}): {payload['device_name']}, "
        f"{payload['threads_per_learner']} thread per learner, {payload['learners_side_by_side']} learners side by "
        f"side on their own cores, torch {payload['torch']}, {payload['date'][:10]}; {v['tasks']} fixed validation "
        f"tasks (5-way 1-shot Omniglot); sweep wall time {payload['wall_time_s'] / 60:.0f} min"
    )


def frontier_table(payload: Mapping[str, Any]) -> str:
    """Markdown table: per learner, its speed, the FLOPs of one outer step and its validation accuracy at each mark
    of the budget (support-set statistics), then both protocols at the end."""
    learners = payload["learners"]
    marks = next(iter(learners.values()))["marks"]
    head = " | ".join(f"{m:g} s" for m in marks)
    lines = [
        f"| learner | steps / s | GFLOP / step | first step [s] | {head} | last, transductive |",
        "|---" * (5 + len(marks)) + "|",
    ]
    for r in learners.values():
        end = r["curve"][-1]
        accuracy = " | ".join(f"{100 * p['accuracy']['support']['mean']:.1f}" for p in r["curve"])
        lines.append(
            f"| {method_label(r['config'])} | {end['steps'] / end['seconds']:.2f} | {r['step_flops'] / 1e9:.1f} | "
            f"{r['first_step_s']:.1f} | {accuracy} | {100 * end['accuracy']['transductive']['mean']:.1f} |"
        )
    return "\n".join(lines)


def frontier_lines(payload: Mapping[str, Any], runs: Optional[Sequence[str]] = None) -> list[str]:
    """One sentence per mark: which learner (of ``runs``, default all) leads, by how much, and whether the 95 %
    intervals separate it from the runner-up."""
    lines = []
    name = {run: method_label(r["config"]) for run, r in payload["learners"].items()}
    for w in frontier.winners(payload, runs=runs):
        best, second = w["accuracy"], w["runner_up_accuracy"]
        verdict = "clearly ahead of" if w["clear"] else "within the 95 % intervals of"
        lines.append(
            f"{w['mark_s']:g} s: {name[w['run']]} leads ({100 * best['mean']:.1f} ± {100 * best['ci95']:.1f} %), "
            f"{verdict} {name[w['runner_up']]} ({100 * second['mean']:.1f} ± {100 * second['ci95']:.1f} %)"
        )
    return lines


def plot_frontier(payload: Mapping[str, Any]) -> Figure:
    """Two panels of validation accuracy (support-set statistics): against seconds of training and against FLOPs."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for r in payload["learners"].values():
        accuracy = [100 * p["accuracy"]["support"]["mean"] for p in r["curve"]]
        for ax, key in ((axes[0], "seconds"), (axes[1], "flops")):
            ax.plot([p[key] for p in r["curve"]], accuracy, "o-", ms=3, label=method_label(r["config"]))
    for ax, label in ((axes[0], "seconds of training (one thread)"), (axes[1], "FLOPs of training")):
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation accuracy, 5-way 1-shot [%]")
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle(f"The same budget for every learner ({payload['device_name']})", fontsize=9)
    fig.tight_layout()
    return fig


def ood_figure(families: Mapping[str, Any], shots: Sequence[int] = (5, 10)) -> Figure:
    """Chapter 08: the median query MSE of the black-box learner and of MAML (each adaptation in the results) on
    each task family of ``ch08.blackbox.blackbox_ood`` (inside and outside the training range), one panel per K, log
    scale: the bars are the numbers of the results file or of a live run, nothing typed in."""
    import matplotlib.pyplot as plt

    names = list(families)
    fig, axes = plt.subplots(1, len(shots), figsize=(5.6 * len(shots), 3.9), squeeze=False)
    for ax, k in zip(axes[0], shots):
        cells = [families[n][f"K={k}"] for n in names]
        models = [m for m in cells[0] if m != "black_box_wins"]
        width = 0.8 / len(models)
        for j, model in enumerate(models):
            xs = [i + (j - (len(models) - 1) / 2) * width for i in range(len(names))]
            ax.bar(xs, [c[model]["median"] for c in cells], width=width, label=model)
        ax.set_xticks(range(len(names)), [n.replace(", ", ",\n") for n in names], fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel("median query MSE over tasks")
        ax.set_title(f"K={k} support points: inside and outside the training range", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def point_figure(
    inner_steps: int = 2,
    k_shot: int = 1,
    *,
    algos: Sequence[str] = ("maml", "fomaml", "anil", "reptile"),
    base: Point = FAST_BASE,
    repeats: int = 2,
) -> Figure:
    """Bars: measured seconds (vectorised) and exact graph MiB of one meta-iteration per algorithm at
    ``inner_steps`` and ``k_shot`` (the widget's figure; re-measures every time)."""
    import matplotlib.pyplot as plt

    point = replace(base, inner_steps=int(inner_steps), k_shot=int(k_shot))
    secs, mibs = [], []
    for algo in algos:
        secs.append(time_meta_iteration(algo, point, repeats=repeats)["seconds"] * 1e3)
        mibs.append(graph_memory(algo, point)["held"] / 2**20)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
    ax1.bar(algos, secs, color="tab:blue")
    ax1.set_ylabel("ms per meta-iteration (this machine)")
    ax2.bar(algos, mibs, color="tab:orange")
    ax2.set_ylabel("autograd graph MiB (exact)")
    for ax, vals, fmt in ((ax1, secs, "{:.0f}"), (ax2, mibs, "{:.2f}")):
        for i, v in enumerate(vals):
            ax.annotate(fmt.format(v), (i, v), ha="center", va="bottom", fontsize=8)
    fig.suptitle(
        f"{point.meta_batch} tasks, {point.n_way}-way {point.k_shot}-shot, K={point.inner_steps} inner steps, "
        f"Conv4({point.hidden}) {point.image_size}px",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def scaling_widget(*, inner_steps: int = 2, k_shot: int = 1, base: Point = FAST_BASE, display: bool = True):
    """Sliders for the inner steps and shots: re-measures time and graph memory of each algorithm and
    redraws :func:`point_figure`. Draws once with the default values (headless runs show the figure)."""
    import ipywidgets as w

    if not 0 <= inner_steps <= 10 or not 1 <= k_shot <= 10:
        raise ValueError(f"inner_steps={inner_steps}, k_shot={k_shot}: allowed 0..10 and 1..10")
    controls = {
        "inner_steps": w.IntSlider(value=inner_steps, min=0, max=10, description="inner steps K"),
        "k_shot": w.IntSlider(value=k_shot, min=1, max=10, description="shots"),
    }
    return live_figure(controls, lambda **kw: point_figure(base=base, **kw), display=display)


def timer() -> Callable[[], float]:
    """``elapsed = timer(); ...; elapsed()`` seconds (notebook cells report their own run time)."""
    start = time.perf_counter()
    return lambda: time.perf_counter() - start


def fit_linear(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares line ``y = a + b x``; returns ``(b, a)`` (memory = constant + per-step cost)."""
    n = len(xs)
    if n < 2:
        raise ValueError(f"need at least 2 points to fit a line, got {n}")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return b, my - b * mx


def distributed_report(**kwargs: Any) -> dict[str, Any]:
    """``mlcourse.distributed.measure_speedup(**kwargs)`` (1 vs 2 local CPU processes by default) with the
    device, torch version and date added (what chapter 08 shows and ``--distributed`` saves)."""
    report = distributed.measure_speedup(**kwargs)
    return {"kind": "mlcourse.distributed", **report, **provenance("cpu")}


def speedup_lines(report: Mapping[str, Any]) -> list[str]:
    """For each process count above one in a distributed measurement (:func:`distributed_report`): its speed-up over
    one process, said in words from the numbers (faster or slower than one process)."""
    results = {int(k): v for k, v in report["results"].items()}
    speedups = {int(k): float(v) for k, v in report["speedup"].items()}
    if 1 not in results:
        raise ValueError(f"the report has no one-process measurement; process counts: {sorted(results)}")
    lines = []
    for world in sorted(w for w in results if w > 1):
        s = speedups[world]
        verdict = "faster than" if s > 1 else "slower than" if s < 1 else "as fast as"
        lines.append(
            f"{world} processes: {1e3 * results[world]['median_s']:.0f} ms against {1e3 * results[1]['median_s']:.0f} ms "
            f"for one: speed-up {s:.2f}x, {verdict} one process"
        )
    return lines


def load_distributed_results(directory: Any = None) -> list[dict[str, Any]]:
    """Every ``distributed-*.json`` in ``directory`` (default ``benchmarks/results``), newest name last."""
    import json
    from pathlib import Path

    folder = Path(directory) if directory is not None else REPO_ROOT / "benchmarks" / "results"
    out = []
    for file in sorted(folder.glob("distributed-*.json")):
        payload = json.loads(file.read_text())
        payload["file"] = str(file)
        out.append(payload)
    return out


Algorithm = Literal[SCALING_ALGORITHMS]  # type: ignore[valid-type]

Axis = Literal[AXES]  # type: ignore[valid-type]


@dataclass(frozen=True)
class ScalingOptions:
    """Chapter 08: time and memory of one meta-iteration along five axes, written as JSON for the chapter
    (or, with --remedies, MAML and its memory remedies against the inner steps; with --distributed, one meta-step
    at 1 vs 2 local CPU processes)."""

    device: Annotated[str, arg("auto, cpu, cuda, cuda:N")] = "auto"
    full: Annotated[Flag, arg("chapter 03's network and the full grid (default: the tiny fast grid)", default="")] = (
        False
    )
    algorithms: Annotated[tuple[Algorithm, ...], arg("the algorithms")] = SCALING_ALGORITHMS
    axes: Annotated[tuple[Axis, ...], arg("the axes")] = AXES
    repeats: Annotated[int, arg("timed meta-iterations per point, after one warm-up (>= 1)")] = 3
    threads: Annotated[int, arg("torch CPU threads (0: torch's choice)")] = 0
    out: Annotated[
        Optional[str],
        tyro.conf.DisallowNone,
        arg("JSON path", metavar="FILE", default="runs/bench/scaling-<device>-<date>.json"),
    ] = None
    distributed: Annotated[Flag, arg("instead: time one meta-step at 1 vs 2 local CPU processes", default="")] = False
    remedies: Annotated[
        Flag,
        arg(
            f"instead: memory and time of MAML and its remedies ({', '.join(REMEDY_VARIANTS)}) against the inner "
            f"steps; with --full at chapter 03's shape and inner steps {', '.join(map(str, REMEDY_STEPS))}",
            default="",
        ),
    ] = False


def _remedies_command(a: ScalingOptions) -> str:
    return (
        "mlcourse scaling --remedies"
        + (" --full" if a.full else "")
        + (f" --threads {a.threads}" if a.threads else "")
        + (f" --repeats {a.repeats}" if a.repeats != 3 else "")
    )


def run_remedies(a: ScalingOptions, dev: torch.device) -> int:
    """``mlcourse scaling --remedies``: :func:`remedies_sweep` at chapter 03's shape, written as JSON
    (``kind: mlcourse.remedies``) for chapter 08."""
    keep_freed_memory()  # the setting training runs with (mlcourse.hostmemory), recorded in the file
    start = time.perf_counter()
    base, steps = (CH03_POINT, REMEDY_STEPS) if a.full else (FAST_BASE, FAST_GRID["inner_steps"])
    rows = remedies_sweep(steps=steps, base=base, repeats=a.repeats, device=dev, progress=True)
    payload = {
        "kind": "mlcourse.remedies",
        "rows": rows,
        "summary": remedy_summary(rows),
        "point": asdict(base),
        "inner_steps": list(steps),
        "variants": {k: {"algorithm": v[0], **v[1]} for k, v in REMEDY_VARIANTS.items()},
        "how_measured": "graph: exact bytes the autograd graph holds (per-task loop, saved-tensor hooks); process: "
        "peak RSS growth of one meta-iteration; seconds: best and median of --repeats eager meta-iterations "
        "(zero_grad + loss + backward) on random images, after one warm-up",
        **provenance(dev, command=_remedies_command(a), wall_time_s=time.perf_counter() - start),
    }
    out = Path(a.out) if a.out else runs_dir() / "bench" / f"remedies-{dev.type}-{payload['date'][:10]}.json"
    write_json(out, payload)
    for variant, summary in payload["summary"].items():
        print(variant, {k: None if v is None else round(v, 3) for k, v in summary.items()})
    print(f"wrote {out}")
    return 0


def scaling_command(a: ScalingOptions) -> int:
    """``mlcourse scaling [--device cuda] [--full] [--out FILE]``: every sweep of chapter 08 (the full grid with
    ``--full``), printed and written as JSON (``kind: mlcourse.scaling``) for the notebook to load; ``--distributed``
    times one meta-step at 1 vs 2 local CPU processes instead."""
    require(a.repeats >= 1, "--repeats", a.repeats, "an integer >= 1")
    require(a.threads >= 0, "--threads", a.threads, "0 (torch's choice) or more")
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.distributed:
        report = distributed_report()
        out = Path(a.out) if a.out else runs_dir() / "bench" / f"distributed-cpu-{report['date'][:10]}.json"
        write_json(out, report)
        print(json.dumps(report["speedup"]), f"wrote {out}")
        return 0
    dev = resolve_device(a.device)
    if a.remedies:
        return run_remedies(a, dev)
    grid, base = (FULL_GRID, FULL_BASE) if a.full else (FAST_GRID, FAST_BASE)
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    for axis in a.axes:
        rows += sweep(a.algorithms, axis, grid[axis], base=base, repeats=a.repeats, device=dev, progress=False)
        print(
            f"{axis}: time exponents "
            + ", ".join(f"{k} {v:.2f}" for k, v in exponents(rows, "seconds").get(axis, {}).items()),
            flush=True,
        )
    command = "mlcourse scaling" + (" --full" if a.full else "") + f" --repeats {a.repeats}"
    command += f" --threads {a.threads}" if a.threads else ""
    record = provenance(dev, command=command, wall_time_s=time.perf_counter() - start)
    payload = {
        "kind": "mlcourse.scaling",
        "rows": rows,
        "base": asdict(base),
        "grid": {k: grid[k] for k in a.axes},
        "exponents_seconds": exponents(rows, "seconds"),
        "exponents_graph_bytes": exponents(rows, "graph_held_bytes"),
        **record,
    }
    out = Path(a.out) if a.out else runs_dir() / "bench" / f"scaling-{dev.type}-{record['date'][:10]}.json"
    write_json(out, payload)
    print(f"wrote {out}")
    return 0
