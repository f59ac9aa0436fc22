"""Chapter 08's remedies for MAML's memory, which grows with the inner steps: checkpointed and truncated
backpropagation, first-order MAML, Reptile, ANIL and iMAML's implicit gradient, each measured against MAML on one
shape as the inner loop grows; iMAML's conjugate-gradient error against the dense implicit gradient; the committed remedies
file read back into a table and a plot.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Optional

import torch

from mlcourse import bench
from mlcourse.algorithms import make_learner
from mlcourse.course.ch08.sweeps import Point, measured_by
from mlcourse.provenance import load_measurement

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn (the GPU machine may not have it)
    from matplotlib.figure import Figure


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

CH03_POINT = Point(n_way=5, k_shot=1, n_query=5, meta_batch=8, inner_steps=1, hidden=64, image_size=28)

REMEDY_STEPS = (1, 2, 5, 10, 20, 50)


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
        f"{measured_by(payload)}; Conv-4 {p['hidden']} filters, {p['image_size']} px, {p['n_way']}-way {p['k_shot']}-shot, "
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
