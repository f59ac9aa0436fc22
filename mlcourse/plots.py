"""Matplotlib figures for chapters 00-03 (pure drawing: every function takes numbers, returns a Figure).

Nothing here trains or samples; the numbers come from ``mlcourse.experiments``. Each function accepts an
optional ``ax`` so the widgets in ``mlcourse.widgets`` can redraw into an existing axes.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

Curve = Sequence[float]


def _axes(ax: Optional[Axes], figsize: tuple[float, float] = (6.0, 4.0)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def _array(values) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=float)


def accuracy_bars(results: Mapping[str, tuple[float, float]], *, title: str = "", ylabel: str = "query accuracy",
                  chance: Optional[float] = None, ax: Optional[Axes] = None) -> Figure:
    """Bar plot of ``{name: (mean, ci95)}`` with 95% confidence intervals as error bars."""
    if not results:
        raise ValueError("accuracy_bars needs at least one result")
    fig, ax = _axes(ax, (1.6 + 1.4 * len(results), 4.0))
    names = list(results)
    means = [float(results[n][0]) for n in names]
    errs = [float(results[n][1]) for n in names]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    bars = ax.bar(range(len(names)), means, yerr=errs, capsize=6,
                  color=[colours[i % len(colours)] for i in range(len(names))])
    for bar, m, e in zip(bars, means, errs):
        ax.annotate(f"{100 * m:.1f}±{100 * e:.1f}%", (bar.get_x() + bar.get_width() / 2, m + e),
                    ha="center", va="bottom", fontsize=9, xytext=(0, 2), textcoords="offset points")
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", lw=1)
        ax.annotate("chance", (len(names) - 0.5, chance), ha="right", va="bottom", fontsize=8, color="grey")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, min(1.08, max(m + e for m, e in zip(means, errs)) + 0.12))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def task_images(support_x, support_y, *, n_way: Optional[int] = None, title: str = "",
                query_x=None, query_y=None, max_query: int = 2) -> Figure:
    """One few-shot task as an image grid: a row per class, its K support images (then a few queries)."""
    sx, sy = _array(support_x), _array(support_y).astype(int)
    n_way = n_way or int(sy.max()) + 1
    k = int((sy == 0).sum())
    qx = None if query_x is None else _array(query_x)
    qy = None if query_y is None else _array(query_y).astype(int)
    cols = k + (max_query if qx is not None else 0)
    fig, axes = plt.subplots(n_way, cols, figsize=(1.1 * cols, 1.1 * n_way), squeeze=False)
    for c in range(n_way):
        imgs = sx[sy == c]
        extra = [] if qx is None else list(qx[qy == c][:max_query])
        for j in range(cols):
            ax = axes[c, j]
            ax.set_xticks([]), ax.set_yticks([])
            img = imgs[j] if j < k else (extra[j - k] if j - k < len(extra) else None)
            if img is not None:
                ax.imshow(img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0)), cmap="gray_r"
                          if img.shape[0] == 1 else None, vmin=0, vmax=1)
            if j == 0:
                ax.set_ylabel(f"class {c}", fontsize=8)
            if c == 0:
                ax.set_title("support" if j < k else "query", fontsize=8)
            if j >= k:
                for spine in ax.spines.values():
                    spine.set_color("tab:orange")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def sinusoid_tasks(x, ys: Sequence, params: Optional[Sequence[tuple[float, float]]] = None, *,
                   ax: Optional[Axes] = None, title: str = "Sinusoid tasks: y = A sin(x - b)") -> Figure:
    """Several task functions on one grid (``ys`` one curve per task, ``params`` (A, b) for the legend)."""
    fig, ax = _axes(ax)
    x = _array(x).ravel()
    for i, y in enumerate(ys):
        label = None if params is None else f"A={params[i][0]:.2f}, b={params[i][1]:.2f}"
        ax.plot(x, _array(y).ravel(), label=label)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title)
    if params is not None:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def sinusoid_fit(x_grid, y_true, support_x, support_y, predictions: Mapping[str, object], *,
                 ax: Optional[Axes] = None, title: str = "") -> Figure:
    """A task's true curve, its K support points and predictions ``{label: y_on_grid}``."""
    fig, ax = _axes(ax)
    xg = _array(x_grid).ravel()
    ax.plot(xg, _array(y_true).ravel(), color="tab:red", lw=2, label="ground truth")
    styles = [":", "--", "-.", "-"]
    for i, (label, y) in enumerate(predictions.items()):
        ax.plot(xg, _array(y).ravel(), ls=styles[i % len(styles)], lw=1.8, label=label)
    ax.scatter(_array(support_x).ravel(), _array(support_y).ravel(), marker="^", s=60, color="purple",
               zorder=5, label=f"K={_array(support_x).size} support points")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_ylim(-6, 6)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def adaptation_curves(curves: Mapping[str, Curve], *, x: Optional[Sequence[float]] = None,
                      xlabel: str = "inner (gradient) steps at meta-test time", ylabel: str = "query MSE",
                      errors: Optional[Mapping[str, Curve]] = None, logy: bool = False,
                      title: str = "", ax: Optional[Axes] = None) -> Figure:
    """Loss against inner steps (or shots): one line per model, optional 95% CI bands."""
    fig, ax = _axes(ax)
    for label, curve in curves.items():
        y = _array(curve)
        xs = np.arange(len(y)) if x is None else _array(x)
        ax.plot(xs, y, marker="o", ms=4, label=label)
        if errors is not None and label in errors:
            e = _array(errors[label])
            ax.fill_between(xs, y - e, y + e, alpha=0.2)
    return _finish(fig, ax, xlabel=xlabel, ylabel=ylabel, logy=logy, title=title)


def sharpness_histogram(values: Mapping[str, Sequence[float]], *, title: str = "",
                        ax: Optional[Axes] = None) -> Figure:
    """Histograms of ``alpha * lambda_max`` per task (``experiments.step_sharpness``), one per label, with
    the lines 1 (a step starts to overshoot the sharpest direction) and 2 (it grows the error) — ch02."""
    if not values:
        raise ValueError("sharpness_histogram needs at least one set of values")
    fig, ax = _axes(ax, (7.0, 4.0))
    arrays = {label: _array(v) for label, v in values.items()}
    top = max(float(np.nanmax(a)) for a in arrays.values())
    bins = np.linspace(0.0, max(3.0, top * 1.02), 40)
    for label, a in arrays.items():
        share = float(np.mean(a > 2))
        ax.hist(a, bins=bins, histtype="step", lw=1.6, label=f"{label}: median {np.median(a):.2f}, {100 * share:.0f}% > 2")
    for line, text in ((1.0, "a step overshoots"), (2.0, "a step grows the error")):
        ax.axvline(line, color="grey", ls=":", lw=1)
        ax.annotate(text, (line, 0.02), xycoords=("data", "axes fraction"), ha="right", va="bottom", fontsize=8,
                    color="grey", rotation=90, xytext=(-2, 0), textcoords="offset points")
    return _finish(fig, ax, xlabel=r"$\alpha\,\lambda_{max}$ of the support loss at $\theta$", ylabel="tasks",
                   logy=False, title=title)


def _finish(fig: Figure, ax: Axes, *, xlabel: str, ylabel: str, logy: bool, title: str) -> Figure:
    """Labels, optional log scale, legend and grid shared by the curve plots."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def learning_curves(histories: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
                    xlabel: str = "meta-training iteration", ylabel: str = "meta-training loss (query MSE)",
                    smooth: int = 1, logy: bool = True, title: str = "", ax: Optional[Axes] = None) -> Figure:
    """Training curves ``{label: (iterations, losses)}``; ``smooth`` = moving-average window."""
    fig, ax = _axes(ax)
    for label, (steps, losses) in histories.items():
        s, y = _array(steps), _array(losses)
        if smooth > 1 and len(y) >= smooth:
            kernel = np.ones(smooth) / smooth
            y = np.convolve(y, kernel, mode="valid")
            s = s[smooth - 1:]
        ax.plot(s, y, label=label)
    return _finish(fig, ax, xlabel=xlabel, ylabel=ylabel, logy=logy, title=title)


def task_embedding(points, colour, *, colour_label: str = "", title: str = "", ax: Optional[Axes] = None,
                   xlabel: str = "PC 1", ylabel: str = "PC 2", cmap: str = "viridis") -> Figure:
    """2-D task embedding (e.g. PCA of adapted-parameter deltas) coloured by a true task parameter."""
    fig, ax = _axes(ax, (5.2, 4.2))
    p = _array(points)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"task_embedding needs points shaped [tasks, 2], got {p.shape}")
    sc = ax.scatter(p[:, 0], p[:, 1], c=_array(colour), cmap=cmap, s=18)
    fig.colorbar(sc, ax=ax, label=colour_label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def close(fig: Figure) -> None:
    """Free a figure (tests and widgets draw many)."""
    plt.close(fig)


__all__ = ["accuracy_bars", "task_images", "sinusoid_tasks", "sinusoid_fit", "adaptation_curves",
           "learning_curves", "task_embedding", "close", "matplotlib"]
