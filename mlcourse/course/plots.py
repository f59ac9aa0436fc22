"""The figures every chapter draws with: accuracy bars, task images, sinusoid fits, adaptation and learning curves,
and the drawing primitives of the diagrams; every figure function returns a Figure.

Nothing here trains or samples: the functions take numbers and accept an optional ``ax``, so a chapter's widget can
redraw into an existing axes. A chapter's own pictures live in its folder (``ch02.plots``, ``ch03.plots``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

Curve = Sequence[float]


def figure_axes(ax: Optional[Axes], figsize: tuple[float, float] = (6.0, 4.0)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def legend_outside(ax: Axes, *, fontsize: int = 8, ncol: int = 2, where: str = "below") -> None:
    """A legend that cannot hide data: below the axes (``where="below"``) or to their right (``"right"``).
    ``fig.tight_layout()`` makes room for it."""
    if where == "below":
        ax.legend(fontsize=fontsize, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol, frameon=False)
    elif where == "right":
        ax.legend(fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    else:
        raise ValueError(f"where={where!r} is not allowed; allowed: below, right")


def legend_inside(ax: Axes, *, fontsize: int = 8) -> None:
    """A legend inside the axes where it covers the least data (``loc="best"``), semi-transparent."""
    ax.legend(fontsize=fontsize, loc="best", framealpha=0.7)


def as_array(values) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=float)


def accuracy_bars(
    results: Mapping[str, tuple[float, float]],
    *,
    title: str = "",
    ylabel: str = "query accuracy",
    chance: Optional[float] = None,
    ax: Optional[Axes] = None,
) -> Figure:
    """Bar plot of ``{name: (mean, ci95)}`` with 95% confidence intervals as error bars."""
    if not results:
        raise ValueError("accuracy_bars needs at least one result")
    fig, ax = figure_axes(ax, (1.6 + 1.4 * len(results), 4.0))
    names = list(results)
    means = [float(results[n][0]) for n in names]
    errs = [float(results[n][1]) for n in names]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    bars = ax.bar(
        range(len(names)), means, yerr=errs, capsize=6, color=[colours[i % len(colours)] for i in range(len(names))]
    )
    for bar, m, e in zip(bars, means, errs):
        ax.annotate(
            f"{100 * m:.1f}±{100 * e:.1f}%",
            (bar.get_x() + bar.get_width() / 2, m + e),
            ha="center",
            va="bottom",
            fontsize=9,
            xytext=(0, 2),
            textcoords="offset points",
        )
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", lw=1)
        ax.annotate("chance", (len(names) - 0.5, chance), ha="right", va="bottom", fontsize=8, color="grey")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, min(1.08, max(m + e for m, e in zip(means, errs)) + 0.12))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def task_images(
    support_x,
    support_y,
    *,
    n_way: Optional[int] = None,
    title: str = "",
    query_x=None,
    query_y=None,
    max_query: int = 2,
) -> Figure:
    """One few-shot task as an image grid: a row per class, its K support images (then a few queries)."""
    sx, sy = as_array(support_x), as_array(support_y).astype(int)
    n_way = n_way or int(sy.max()) + 1
    k = int((sy == 0).sum())
    qx = None if query_x is None else as_array(query_x)
    qy = None if query_y is None else as_array(query_y).astype(int)
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
                ax.imshow(
                    img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0)),
                    cmap="gray_r" if img.shape[0] == 1 else None,
                    vmin=0,
                    vmax=1,
                )
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


def sinusoid_tasks(
    x,
    ys: Sequence,
    params: Optional[Sequence[tuple[float, float]]] = None,
    *,
    ax: Optional[Axes] = None,
    title: str = "Sinusoid tasks: y = A sin(x - b)",
) -> Figure:
    """Several task functions on one grid (``ys`` one curve per task, ``params`` (A, b) for the legend)."""
    fig, ax = figure_axes(ax)
    x = as_array(x).ravel()
    for i, y in enumerate(ys):
        label = None if params is None else f"A={params[i][0]:.2f}, b={params[i][1]:.2f}"
        ax.plot(x, as_array(y).ravel(), label=label)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title)
    if params is not None:
        legend_outside(ax, where="right")
    fig.tight_layout()
    return fig


def sinusoid_fit(
    x_grid,
    y_true,
    support_x,
    support_y,
    predictions: Mapping[str, object],
    *,
    ax: Optional[Axes] = None,
    title: str = "",
    reference: Optional[Mapping[str, object]] = None,
) -> Figure:
    """A task's true curve, its K support points and predictions ``{label: y_on_grid}``; ``reference``:
    extra curves ``{label: y_on_grid}`` drawn thin and grey (e.g. the family's mean function, ch02). The
    legend sits below the axes, so it never hides a curve."""
    fig, ax = figure_axes(ax)
    xg = as_array(x_grid).ravel()
    ax.plot(xg, as_array(y_true).ravel(), color="tab:red", lw=2, label="ground truth")
    for label, y in (reference or {}).items():
        ax.plot(xg, as_array(y).ravel(), color="grey", ls=(0, (1, 1)), lw=1.4, label=label)
    styles = [":", "--", "-.", "-"]
    for i, (label, y) in enumerate(predictions.items()):
        ax.plot(xg, as_array(y).ravel(), ls=styles[i % len(styles)], lw=1.8, label=label)
    ax.scatter(
        as_array(support_x).ravel(),
        as_array(support_y).ravel(),
        marker="^",
        s=60,
        color="purple",
        zorder=5,
        label=f"K={as_array(support_x).size} support points",
    )
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_ylim(-6, 6)
    ax.set_title(title)
    legend_outside(ax, fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def adaptation_curves(
    curves: Mapping[str, Curve],
    *,
    x: Optional[Sequence[float]] = None,
    xlabel: str = "inner (gradient) steps at meta-test time",
    ylabel: str = "query MSE",
    errors: Optional[Mapping[str, Curve]] = None,
    logy: bool = False,
    title: str = "",
    ax: Optional[Axes] = None,
) -> Figure:
    """Loss against inner steps (or shots): one line per model, optional 95% CI bands."""
    fig, ax = figure_axes(ax)
    for label, curve in curves.items():
        y = as_array(curve)
        xs = np.arange(len(y)) if x is None else as_array(x)
        ax.plot(xs, y, marker="o", ms=4, label=label)
        if errors is not None and label in errors:
            e = as_array(errors[label])
            ax.fill_between(xs, y - e, y + e, alpha=0.2)
    return finish_axes(fig, ax, xlabel=xlabel, ylabel=ylabel, logy=logy, title=title)


def finish_axes(fig: Figure, ax: Axes, *, xlabel: str, ylabel: str, logy: bool, title: str) -> Figure:
    """Labels, optional log scale, legend and grid shared by the curve plots."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    legend_inside(ax, fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def learning_curves(
    histories: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str = "meta-training iteration",
    ylabel: str = "meta-training loss (query MSE)",
    smooth: int = 1,
    logy: bool = True,
    title: str = "",
    ax: Optional[Axes] = None,
) -> Figure:
    """Training curves ``{label: (iterations, losses)}``; ``smooth`` = moving-average window."""
    fig, ax = figure_axes(ax)
    for label, (steps, losses) in histories.items():
        s, y = as_array(steps), as_array(losses)
        if smooth > 1 and len(y) >= smooth:
            kernel = np.ones(smooth) / smooth
            y = np.convolve(y, kernel, mode="valid")
            s = s[smooth - 1 :]
        ax.plot(s, y, label=label)
    return finish_axes(fig, ax, xlabel=xlabel, ylabel=ylabel, logy=logy, title=title)


def fmt(value: float, digits: int = 3) -> str:
    """A number for a title or legend with ``digits`` significant digits: ``fmt(0.0199526) == "0.02"``
    (a log slider's value), ``fmt(0.001) == "0.001"``, ``fmt(2e-5) == "2e-05"``."""
    return f"{float(value):.{int(digits)}g}"


def close(fig: Figure) -> None:
    """Free a figure (tests and widgets draw many)."""
    plt.close(fig)


FAMILY_COLOURS = ("tab:green", "tab:blue", "tab:grey")


def box(
    ax: Axes,
    x: float,
    y: float,
    text: str,
    *,
    width: float,
    height: float,
    colour: str = "tab:blue",
    fontsize: float = 9,
    alpha: float = 0.18,
    ls: str = "-",
) -> FancyBboxPatch:
    """A rounded box centred on (x, y) in axes coordinates with centred text; returns the patch."""
    patch = FancyBboxPatch(
        (x - width / 2, y - height / 2),
        width,
        height,
        boxstyle="round,pad=0.006,rounding_size=0.012",
        transform=ax.transAxes,
        facecolor=to_rgba(colour, alpha),
        edgecolor=colour,
        lw=1.4,
        ls=ls,
    )
    ax.add_patch(patch)
    ax.text(x, y, text, transform=ax.transAxes, ha="center", va="center", fontsize=fontsize)
    return patch


def arrow(
    ax: Axes,
    start: tuple[float, float],
    end: tuple[float, float],
    *,
    colour: str = "black",
    ls: str = "-",
    rad: float = 0.0,
    lw: float = 1.3,
) -> FancyArrowPatch:
    """An arrow from ``start`` to ``end`` (axes coordinates), curved by ``rad``; returns the patch."""
    arrow = FancyArrowPatch(
        start,
        end,
        transform=ax.transAxes,
        arrowstyle="-|>",
        mutation_scale=14,
        color=colour,
        lw=lw,
        ls=ls,
        connectionstyle=f"arc3,rad={rad}",
        shrinkA=0,
        shrinkB=0,
    )
    ax.add_patch(arrow)
    return arrow


def blank_axes(figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    fig, ax = plt.subplots(figsize=figsize)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    return fig, ax


__all__ = [
    "accuracy_bars",
    "task_images",
    "sinusoid_tasks",
    "sinusoid_fit",
    "adaptation_curves",
    "learning_curves",
    "legend_outside",
    "legend_inside",
    "fmt",
    "close",
    "as_array",
    "box",
    "arrow",
    "figure_axes",
    "blank_axes",
    "finish_axes",
    "FAMILY_COLOURS",
]
