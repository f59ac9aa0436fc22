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

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import torch

from mlcourse import bench
from mlcourse.algorithms import make_learner
from mlcourse.algorithms.batched import BATCHED_ALGORITHMS
from mlcourse.course.display import live_figure
from mlcourse.hostmemory import release_freed_memory
from mlcourse.provenance import load_measurement

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
    """Best-of-``repeats`` seconds (and the median) of one meta-gradient of ``algo`` at ``point`` (``implementation``:
    vectorised, batched, per-task loop or learn2learn), and on CUDA the peak allocated memory of one more step."""
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
        batched = implementation == bench.BATCHED
        vectorise = implementation in (bench.VECTORISED, bench.BATCHED)
        step, _ = bench.mlcourse_step(algo, model, shape, batch, vectorise=vectorise, batched=batched)
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


def measured_by(payload: Mapping[str, Any]) -> str:
    """A sweep file's provenance in words: file, command, device, threads, torch, date and wall time."""
    wall = f", sweep wall time {payload['wall_time_s'] / 60:.1f} min" if payload.get("wall_time_s") else ""
    return (
        f"{Path(payload['file']).name} ({payload['command']}): {payload['device_name']}, {payload['threads']} "
        f"threads, torch {payload['torch']}, {payload['date'][:10]}{wall}"
    )


def scaling_source(payload: Mapping[str, Any]) -> str:
    """One line: where the sweep was measured (:func:`measured_by`) and its base point."""
    b = payload["base"]
    return (
        f"{measured_by(payload)}; around Conv-4 {b['hidden']} filters, {b['image_size']} px, {b['n_way']}-way "
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
    """Seconds per meta-iteration of the vectorised core, the batched step (for the algorithms it has), the per-task
    loop and learn2learn (when available) along ``axis`` (time only). Rows as :func:`sweep` with ``"algorithm"`` set
    to the implementation name."""
    _check(algo, axis)
    l2l = bench.load_learn2learn() if algo in bench.L2L_ALGORITHMS else None
    batched = [bench.BATCHED] if algo in BATCHED_ALGORITHMS else []
    impls = [bench.VECTORISED, *batched, bench.LOOP] + ([bench.L2L] if l2l is not None else [])
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
