"""Chapter 02's pictures: the inner and outer loop drawn as a diagram, decision boundaries before and after
adaptation on the 2-D toy tasks, sharpness histograms and a task embedding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from mlcourse.course.plots import arrow, as_array, blank_axes, box, figure_axes, finish_axes


def sharpness_histogram(values: Mapping[str, Sequence[float]], *, title: str = "", ax: Optional[Axes] = None) -> Figure:
    """Histograms of ``alpha * lambda_max`` per task (``ch02.paper.step_sharpness``), one per label, with
    the lines 1 (a step starts to overshoot the sharpest direction) and 2 (it grows the error) — ch02."""
    if not values:
        raise ValueError("sharpness_histogram needs at least one set of values")
    fig, ax = figure_axes(ax, (7.0, 4.0))
    arrays = {label: as_array(v) for label, v in values.items()}
    top = max(float(np.nanmax(a)) for a in arrays.values())
    bins = np.linspace(0.0, max(3.0, top * 1.02), 40)
    for label, a in arrays.items():
        share = float(np.mean(a > 2))
        ax.hist(
            a, bins=bins, histtype="step", lw=1.6, label=f"{label}: median {np.median(a):.2f}, {100 * share:.0f}% > 2"
        )
    for line, text in ((1.0, "a step overshoots"), (2.0, "a step grows the error")):
        ax.axvline(line, color="grey", ls=":", lw=1)
        ax.annotate(
            text,
            (line, 0.02),
            xycoords=("data", "axes fraction"),
            ha="right",
            va="bottom",
            fontsize=8,
            color="grey",
            rotation=90,
            xytext=(-2, 0),
            textcoords="offset points",
        )
    return finish_axes(
        fig,
        ax,
        xlabel=r"$\alpha\,\lambda_{max}$ of the support loss at $\theta$",
        ylabel="tasks",
        logy=False,
        title=title,
    )


def task_embedding(
    points,
    colour,
    *,
    colour_label: str = "",
    title: str = "",
    ax: Optional[Axes] = None,
    xlabel: str = "PC 1",
    ylabel: str = "PC 2",
    cmap: str = "viridis",
) -> Figure:
    """2-D task embedding (e.g. PCA of adapted-parameter deltas) coloured by a true task parameter."""
    fig, ax = figure_axes(ax, (5.2, 4.2))
    p = as_array(points)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"task_embedding needs points shaped [tasks, 2], got {p.shape}")
    sc = ax.scatter(p[:, 0], p[:, 1], c=as_array(colour), cmap=cmap, s=18)
    fig.colorbar(sc, ax=ax, label=colour_label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def _task_row(ax: Any, i: str, y: float, theta: tuple[float, float]) -> None:
    """One task's row of the MAML diagram: inner SGD on S_i -> phi_i -> query loss, and the arrows between them."""
    box(
        ax,
        0.31,
        y - 0.02,
        f"inner SGD on support set $S_{{{i}}}$\n"
        f"$\\phi_{{{i}}} = \\theta - \\alpha \\nabla_\\theta \\mathcal{{L}}_{{S_{{{i}}}}}(\\theta)$\n(repeated for K steps)",
        width=0.22,
        height=0.17,
        colour="tab:blue",
        fontsize=9,
    )
    box(
        ax,
        0.545,
        y - 0.02,
        f"$\\phi_{{{i}}}$\nadapted\nparameters",
        width=0.1,
        height=0.17,
        colour="tab:cyan",
        fontsize=9,
    )
    box(
        ax,
        0.75,
        y - 0.02,
        f"query loss on $Q_{{{i}}}$\n$\\mathcal{{L}}_{{Q_{{{i}}}}}(\\phi_{{{i}}})$",
        width=0.16,
        height=0.17,
        colour="tab:orange",
        fontsize=9,
    )
    arrow(ax, (theta[0] + 0.06, theta[1]), (0.2, y - 0.02))
    arrow(ax, (0.42, y - 0.02), (0.495, y - 0.02))
    arrow(ax, (0.595, y - 0.02), (0.67, y - 0.02))
    if i == "1":  # around the other row's box, into the outer update
        arrow(ax, (0.83, y - 0.02), (0.87, 0.19), colour="tab:orange", rad=-0.25)
    else:
        arrow(ax, (0.75, y - 0.105), (0.75, 0.19), colour="tab:orange")


def _outer_update(ax: Any, theta: tuple[float, float], first_order: bool) -> None:
    """The MAML diagram's outer update box and its (dashed, red) meta-gradient arrow back to theta."""
    gradient = (
        "first order: $\\nabla \\mathcal{L}_{Q_i}$ taken at $\\phi_i$,\nthe Hessian dropped"
        if first_order
        else "exact (one inner step), through the step:\n$(I - \\alpha \\nabla^2 \\mathcal{L}_{S_i}(\\theta))\\,"
        "\\nabla \\mathcal{L}_{Q_i}(\\phi_i)$"
    )
    box(
        ax,
        0.75,
        0.11,
        "outer loop (meta-optimisation)\n"
        "$\\theta \\leftarrow \\theta - \\beta \\nabla_\\theta \\frac{1}{B}\\sum_{i=1}^{B} \\mathcal{L}_{Q_i}(\\phi_i)$",
        width=0.3,
        height=0.15,
        colour="tab:red",
        fontsize=9.5,
    )
    arrow(ax, (0.6, 0.11), (theta[0], theta[1] - 0.13), colour="tab:red", ls="--", rad=-0.25, lw=1.8)
    ax.text(
        0.41,
        0.2,
        f"meta-gradient back to $\\theta$\n{gradient}",
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=8.5,
        color="tab:red",
    )


def inner_outer_loop_diagram(*, first_order: bool = False) -> Figure:
    """Chapter 02: MAML's two loops as boxes and arrows. For each task i (two rows drawn, i = 1 and i = B):
    theta -> inner SGD on the support set S_i -> phi_i -> query loss L_Q_i(phi_i); the losses meet in the outer
    update, whose meta-gradient goes back to theta. 8 boxes, 9 arrows (the meta-gradient one dashed, red)."""
    fig, ax = blank_axes((12.0, 5.4))
    theta = (0.075, 0.6)
    box(
        ax,
        *theta,
        "$\\theta$\nmeta-parameters\n(shared\ninitialisation)",
        width=0.12,
        height=0.26,
        colour="tab:purple",
        alpha=0.2,
        fontsize=10,
    )
    rows = {"1": 0.8, "B": 0.4}
    ax.add_patch(
        Rectangle((0.17, 0.27), 0.46, 0.66, transform=ax.transAxes, fill=False, ls=":", lw=1.2, edgecolor="tab:blue")
    )
    ax.text(
        0.175,
        0.915,
        "inner loop (adaptation), one per task $i = 1 \\dots B$",
        transform=ax.transAxes,
        fontsize=9,
        va="top",
        color="tab:blue",
    )
    for i, y in rows.items():
        _task_row(ax, i, y, theta)
    ax.text(0.545, 0.59, "$\\vdots$", transform=ax.transAxes, ha="center", va="center", fontsize=16)
    _outer_update(ax, theta, first_order)
    ax.set_title("Meta-optimisation: an inner loop per task inside an outer loop over tasks (MAML)", fontsize=12)
    fig.tight_layout()
    return fig


def maml_decision_boundaries(grid, task, *, title: str = "") -> Figure:
    """Chapter 02: one 2-D classification task, one panel per number of inner steps of ``grid``
    (``mlcourse.course.ch02.toy2d.decision_grid``): p(class 1) of the MAML learner at theta (0 steps) and at phi
    after each number of steps on the support set, its decision boundary (black), the task's true boundary
    (dashed), support points (large) and query points (small)."""
    steps = sorted(grid.probs)
    extent = float(grid.xs[-1])
    sx, sy = as_array(task.support_x[0]), as_array(task.support_y[0]).astype(int)
    qx, qy = as_array(task.query_x[0]), as_array(task.query_y[0]).astype(int)
    xs, ys = as_array(grid.xs), as_array(grid.ys)
    fig, axes = plt.subplots(1, len(steps), figsize=(4.2 * len(steps), 4.6), squeeze=False)
    for ax, s in zip(axes[0], steps):
        p = as_array(grid.probs[s])
        ax.contourf(xs, ys, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.55, vmin=0, vmax=1)
        if p.min() < 0.5 < p.max():
            ax.contour(xs, ys, p, levels=[0.5], colors="black", linewidths=2)
        if grid.truth is not None:
            ax.contour(xs, ys, as_array(grid.truth), levels=[0.5], colors="dimgrey", linewidths=1.2, linestyles="--")
        ax.scatter(qx[:, 0], qx[:, 1], c=np.where(qy == 1, "tab:red", "tab:blue"), s=9, alpha=0.6, label="query points")
        ax.scatter(
            sx[:, 0],
            sx[:, 1],
            c=np.where(sy == 1, "tab:red", "tab:blue"),
            s=90,
            edgecolors="black",
            linewidths=1.5,
            marker="o",
            label="support points",
            zorder=5,
        )
        name = "θ (no adaptation)" if s == 0 else f"φ after {s} inner step{'s' if s > 1 else ''}"
        ax.set_title(f"{name}\nquery accuracy {100 * grid.accuracy[s]:.0f}%", fontsize=10)
        ax.set_xlim(-extent, extent)
        ax.set_ylim(-extent, extent)
        ax.set_aspect("equal")
        ax.set_xticks([]), ax.set_yticks([])
    handles = [
        Line2D([], [], color="black", lw=2, label="model's boundary, p = 0.5"),
        Line2D([], [], color="dimgrey", lw=1.2, ls="--", label="true boundary"),
        Line2D(
            [],
            [],
            marker="o",
            ls="",
            markersize=9,
            markerfacecolor="white",
            markeredgecolor="black",
            label=f"support points ({len(sy)})",
        ),
        Line2D([], [], marker="o", ls="", markersize=4, color="grey", label="query points"),
        Line2D([], [], marker="s", ls="", color="tab:blue", label="class 0"),
        Line2D([], [], marker="s", ls="", color="tab:red", label="class 1"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=6, fontsize=8, frameon=False)
    fig.suptitle(title or "MAML on a new 2-D task: the decision boundary before and after adaptation")
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    return fig
