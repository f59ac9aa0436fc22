"""Matplotlib figures for chapters 00-03; every function returns a Figure.

Nothing here trains or samples. The curve and bar plots take numbers (from ``mlcourse.course.experiments``) and accept
an optional ``ax`` so the widgets in ``mlcourse.course.widgets`` can redraw into an existing axes. The pictures at the
end (``field_map``, ``inner_outer_loop_diagram``: chapters 00 and 02) draw fixed diagrams; three take a learner
and a task batch and run only forward passes and inner steps on it: ``maml_decision_boundaries`` (chapter 02),
``prototype_embedding`` and ``attention_map`` (chapter 03).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

Curve = Sequence[float]


def _axes(ax: Optional[Axes], figsize: tuple[float, float] = (6.0, 4.0)) -> tuple[Figure, Axes]:
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


def _array(values) -> np.ndarray:
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
    fig, ax = _axes(ax, (1.6 + 1.4 * len(results), 4.0))
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
    fig, ax = _axes(ax)
    x = _array(x).ravel()
    for i, y in enumerate(ys):
        label = None if params is None else f"A={params[i][0]:.2f}, b={params[i][1]:.2f}"
        ax.plot(x, _array(y).ravel(), label=label)
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
    fig, ax = _axes(ax)
    xg = _array(x_grid).ravel()
    ax.plot(xg, _array(y_true).ravel(), color="tab:red", lw=2, label="ground truth")
    for label, y in (reference or {}).items():
        ax.plot(xg, _array(y).ravel(), color="grey", ls=(0, (1, 1)), lw=1.4, label=label)
    styles = [":", "--", "-.", "-"]
    for i, (label, y) in enumerate(predictions.items()):
        ax.plot(xg, _array(y).ravel(), ls=styles[i % len(styles)], lw=1.8, label=label)
    ax.scatter(
        _array(support_x).ravel(),
        _array(support_y).ravel(),
        marker="^",
        s=60,
        color="purple",
        zorder=5,
        label=f"K={_array(support_x).size} support points",
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
    fig, ax = _axes(ax)
    for label, curve in curves.items():
        y = _array(curve)
        xs = np.arange(len(y)) if x is None else _array(x)
        ax.plot(xs, y, marker="o", ms=4, label=label)
        if errors is not None and label in errors:
            e = _array(errors[label])
            ax.fill_between(xs, y - e, y + e, alpha=0.2)
    return _finish(fig, ax, xlabel=xlabel, ylabel=ylabel, logy=logy, title=title)


def sharpness_histogram(values: Mapping[str, Sequence[float]], *, title: str = "", ax: Optional[Axes] = None) -> Figure:
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
    return _finish(
        fig,
        ax,
        xlabel=r"$\alpha\,\lambda_{max}$ of the support loss at $\theta$",
        ylabel="tasks",
        logy=False,
        title=title,
    )


def _finish(fig: Figure, ax: Axes, *, xlabel: str, ylabel: str, logy: bool, title: str) -> Figure:
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
    fig, ax = _axes(ax)
    for label, (steps, losses) in histories.items():
        s, y = _array(steps), _array(losses)
        if smooth > 1 and len(y) >= smooth:
            kernel = np.ones(smooth) / smooth
            y = np.convolve(y, kernel, mode="valid")
            s = s[smooth - 1 :]
        ax.plot(s, y, label=label)
    return _finish(fig, ax, xlabel=xlabel, ylabel=ylabel, logy=logy, title=title)


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


def fmt(value: float, digits: int = 3) -> str:
    """A number for a title or legend with ``digits`` significant digits: ``fmt(0.0199526) == "0.02"``
    (a log slider's value), ``fmt(0.001) == "0.001"``, ``fmt(2e-5) == "2e-05"``."""
    return f"{float(value):.{int(digits)}g}"


def close(fig: Figure) -> None:
    """Free a figure (tests and widgets draw many)."""
    plt.close(fig)


# --------------------------------------------------------------------------------------------------
# Pictures and maps (chapters 00, 02, 03). The last three take a learner and a task batch: they run forward
# passes (and, for MAML, inner steps) but never train.

# (family, what is meta-learned, [(algorithm, reference, where the course treats it)]); chapters read off the notebooks
FIELD_MAP: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "metric-based",
        "learn an embedding; a query takes the label\nof the support items it is closest to (no inner loop)",
        (
            ("Prototypical Networks", "Snell et al. 2017", "ch. 03 · 05 (CIFAR) · 08 (cost)"),
            ("Matching Networks", "Vinyals et al. 2016", "ch. 03"),
        ),
    ),
    (
        "optimisation-based",
        "learn an initialisation (and step sizes) from which\na few gradient steps on the support set fit the task",
        (
            ("MAML", "Finn et al. 2017", "ch. 02 · 03 · 04 (bilevel) · 05 · 06 (RL) · 07 · 08"),
            ("first-order MAML", "Finn et al. 2017", "ch. 03 · 04 (its error) · 07 · 08"),
            ("Reptile", "Nichol et al. 2018", "ch. 03 · 04 (why it works) · 08"),
            ("Meta-SGD", "Li et al. 2017", "ch. 03 · 05 · 07 · 08"),
            ("ANIL", "Raghu et al. 2020", "ch. 03 (Omniglot table) · 08 (cost)"),
            ("Proto-MAML", "Triantafillou et al. 2020", "ch. 03 (Omniglot table; a ProtoNet head, then MAML)"),
            ("iMAML (implicit gradients)", "Rajeswaran et al. 2019", "ch. 08 (memory flat in the inner steps)"),
        ),
    ),
    (
        "model-based / black-box",
        "a network reads the support set and predicts directly:\nadaptation is a forward pass, no gradient step",
        (
            ("memory-augmented networks", "Santoro et al. 2016", "not run in this course"),
            ("SNAIL", "Mishra et al. 2018", "not run in this course"),
            ("RL² (recurrent meta-RL)", "Duan et al. 2016", "named in ch. 06; not run in this course"),
            ("in-context sequence models", "e.g. transformers", "ch. 08 (a small transformer, sinusoids)"),
        ),
    ),
)
FAMILY_COLOURS = ("tab:green", "tab:blue", "tab:grey")


def _box(
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


def _arrow(
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


def _blank_axes(figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    fig, ax = plt.subplots(figsize=figsize)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    return fig, ax


def field_map() -> Figure:
    """Chapter 00: the three families of meta-learning, each algorithm with the chapters that treat it
    (``FIELD_MAP``). Boxes: 1 root + 3 families + one per algorithm; arrows: root -> each family."""
    fig, ax = _blank_axes((13.0, 8.2))
    _box(
        ax,
        0.5,
        0.94,
        "meta-learning: learn from many tasks how to solve a new task from a few examples",
        width=0.62,
        height=0.06,
        colour="black",
        alpha=0.06,
        fontsize=11,
    )
    columns = (1 / 6, 1 / 2, 5 / 6)
    longest = max(len(algorithms) for _, _, algorithms in FIELD_MAP)
    spacing = min(0.125, 0.58 / max(1, longest - 1))  # the longest column ends above the footnote
    for (family, idea, algorithms), x, colour in zip(FIELD_MAP, columns, FAMILY_COLOURS):
        _arrow(ax, (0.5, 0.905), (x, 0.855), colour="dimgrey")
        _box(ax, x, 0.8, f"{family}\n{idea}", width=0.31, height=0.1, colour=colour, alpha=0.28, fontsize=8.5)
        for j, (name, reference, where) in enumerate(algorithms):
            not_run = where.endswith("not run in this course")
            _box(
                ax,
                x,
                0.66 - spacing * j,
                f"{name}  ({reference})\n{where}",
                width=0.29,
                height=min(0.085, 0.82 * spacing),
                colour=colour,
                alpha=0.08 if not_run else 0.16,
                fontsize=8.5,
                ls="--" if not_run else "-",
            )
    ax.text(
        0.5,
        0.005,
        "ch. = the course's chapter (notebooks/NN_*.ipynb). Dashed boxes: families and methods the "
        "course names but does not run.",
        transform=ax.transAxes,
        ha="center",
        va="bottom",
        fontsize=8,
        color="dimgrey",
    )
    ax.set_title(
        "A map of the field: three families of meta-learners, and where this course treats each one", fontsize=12
    )
    fig.tight_layout()
    return fig


def _task_row(ax: Any, i: str, y: float, theta: tuple[float, float]) -> None:
    """One task's row of the MAML diagram: inner SGD on S_i -> phi_i -> query loss, and the arrows between them."""
    _box(
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
    _box(
        ax,
        0.545,
        y - 0.02,
        f"$\\phi_{{{i}}}$\nadapted\nparameters",
        width=0.1,
        height=0.17,
        colour="tab:cyan",
        fontsize=9,
    )
    _box(
        ax,
        0.75,
        y - 0.02,
        f"query loss on $Q_{{{i}}}$\n$\\mathcal{{L}}_{{Q_{{{i}}}}}(\\phi_{{{i}}})$",
        width=0.16,
        height=0.17,
        colour="tab:orange",
        fontsize=9,
    )
    _arrow(ax, (theta[0] + 0.06, theta[1]), (0.2, y - 0.02))
    _arrow(ax, (0.42, y - 0.02), (0.495, y - 0.02))
    _arrow(ax, (0.595, y - 0.02), (0.67, y - 0.02))
    if i == "1":  # around the other row's box, into the outer update
        _arrow(ax, (0.83, y - 0.02), (0.87, 0.19), colour="tab:orange", rad=-0.25)
    else:
        _arrow(ax, (0.75, y - 0.105), (0.75, 0.19), colour="tab:orange")


def _outer_update(ax: Any, theta: tuple[float, float], first_order: bool) -> None:
    """The MAML diagram's outer update box and its (dashed, red) meta-gradient arrow back to theta."""
    gradient = (
        "first order: $\\nabla \\mathcal{L}_{Q_i}$ taken at $\\phi_i$,\nthe Hessian dropped"
        if first_order
        else "exact (one inner step), through the step:\n$(I - \\alpha \\nabla^2 \\mathcal{L}_{S_i}(\\theta))\\,"
        "\\nabla \\mathcal{L}_{Q_i}(\\phi_i)$"
    )
    _box(
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
    _arrow(ax, (0.6, 0.11), (theta[0], theta[1] - 0.13), colour="tab:red", ls="--", rad=-0.25, lw=1.8)
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
    fig, ax = _blank_axes((12.0, 5.4))
    theta = (0.075, 0.6)
    _box(
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
    (``mlcourse.course.ch02_toy2d.decision_grid``): p(class 1) of the MAML learner at theta (0 steps) and at phi
    after each number of steps on the support set, its decision boundary (black), the task's true boundary
    (dashed), support points (large) and query points (small)."""
    steps = sorted(grid.probs)
    extent = float(grid.xs[-1])
    sx, sy = _array(task.support_x[0]), _array(task.support_y[0]).astype(int)
    qx, qy = _array(task.query_x[0]), _array(task.query_y[0]).astype(int)
    xs, ys = _array(grid.xs), _array(grid.ys)
    fig, axes = plt.subplots(1, len(steps), figsize=(4.2 * len(steps), 4.6), squeeze=False)
    for ax, s in zip(axes[0], steps):
        p = _array(grid.probs[s])
        ax.contourf(xs, ys, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.55, vmin=0, vmax=1)
        if p.min() < 0.5 < p.max():
            ax.contour(xs, ys, p, levels=[0.5], colors="black", linewidths=2)
        if grid.truth is not None:
            ax.contour(xs, ys, _array(grid.truth), levels=[0.5], colors="dimgrey", linewidths=1.2, linestyles="--")
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


def _one_task(learner, batch, task: int):
    """Task ``task`` of ``batch`` on the learner's device, and the learner's model."""
    model = learner.model
    device = next(model.parameters()).device
    if not 0 <= task < batch.num_tasks:
        raise ValueError(f"task={task} is out of range; the batch holds {batch.num_tasks} task(s)")
    if not batch.is_classification:
        raise ValueError("this picture is for classification tasks (ProtoNets / Matching Nets) only")
    return batch.task(task).to(device), model


def _task_embeddings(learner, model, one):
    """One task's support and query embeddings as the learner computes them: the support set with its own
    statistics; the queries as one batch (``transductive``) or with the support set's statistics (its other modes)."""
    import torch

    from mlcourse.models import context_rows  # local import: the plots module stays importable without torch

    sx, qx = one.support_x[0], one.query_x[0]
    fs = model.features(sx)
    if getattr(learner, "norm_mode", "transductive") == "transductive":
        return fs, model.features(qx)
    with context_rows(model, sx.shape[0]):
        return fs, model.features(torch.cat([sx, qx]))[sx.shape[0] :]


def prototype_projection(learner, batch, *, task: int = 0) -> dict:
    """The numbers behind :func:`prototype_embedding`: the embeddings of one task's support and query images
    (computed as the learner computes them, in its normalisation mode), the class prototypes, and
    the first two principal components of all of them (SVD of the centred points).

    Returns ``{"support", "query", "prototypes"}`` (2-D points), ``"support_y"``, ``"query_y"``, ``"predicted"``
    (nearest prototype in the full embedding, the ProtoNet's decision), ``"accuracy"``, ``"explained"``."""
    import torch

    one, model = _one_task(learner, batch, task)
    n_way = batch.n_way
    with torch.no_grad():
        fs, fq = _task_embeddings(learner, model, one)
        sy, qy = one.support_y[0], one.query_y[0]
        onehot = (sy.unsqueeze(-1) == torch.arange(n_way, device=sy.device)).to(fs.dtype)
        protos = (onehot.T @ fs) / onehot.sum(0).unsqueeze(-1)
        predicted = torch.cdist(fq, protos).argmin(-1)
        points = torch.cat([fs, fq, protos]).double().cpu()
        centred = points - points[: len(fs) + len(fq)].mean(0)
        _, sv, vh = torch.linalg.svd(centred, full_matrices=False)
        flat = centred @ vh[:2].T
    var = sv.square()
    ns, nq = len(fs), len(fq)
    return {
        "support": flat[:ns],
        "query": flat[ns : ns + nq],
        "prototypes": flat[ns + nq :],
        "support_y": sy.cpu(),
        "query_y": qy.cpu(),
        "predicted": predicted.cpu(),
        "accuracy": float((predicted == qy).double().mean()),
        "explained": (var[:2] / var.sum()).tolist() if float(var.sum()) > 0 else [0.0, 0.0],
    }


def prototype_embedding(learner, batch, *, task: int = 0, title: str = "", ax: Optional[Axes] = None) -> Figure:
    """Chapter 03: a ProtoNet's embedding of one held-out task in 2-D (PCA): support images (circles), query
    images (triangles in their true class's colour, hollow when the nearest prototype is wrong) and the class
    prototypes (stars, one per class; in 1-shot each sits on its single support image). Works with any learner
    whose ``model.features`` embeds images. Axes: [0]; collections: queries, prototypes, support."""
    data = prototype_projection(learner, batch, task=task)
    fig, ax = _axes(ax, (6.4, 5.4))
    colours = plt.get_cmap("tab10")
    sy, qy = data["support_y"].numpy(), data["query_y"].numpy()
    wrong = data["predicted"].numpy() != qy
    s, q, p = (_array(data[k]) for k in ("support", "query", "prototypes"))
    qcol = [colours(int(c) % 10) for c in qy]
    ax.scatter(
        q[:, 0],
        q[:, 1],
        facecolors=[(0, 0, 0, 0) if w else c for c, w in zip(qcol, wrong)],
        edgecolors=qcol,
        marker="^",
        s=40,
        linewidths=1.3,
        label="query images (hollow: nearest prototype is wrong)",
    )
    ax.scatter(
        p[:, 0],
        p[:, 1],
        c=[colours(c % 10) for c in range(len(p))],
        marker="*",
        s=460,
        edgecolors="black",
        linewidths=1.2,
        label="prototypes (class means)",
        zorder=4,
    )
    ax.scatter(
        s[:, 0],
        s[:, 1],
        c=[colours(int(c) % 10) for c in sy],
        marker="o",
        s=36,
        edgecolors="black",
        linewidths=0.8,
        label="support images",
        zorder=5,
    )
    for c, (x, y) in enumerate(p):
        ax.annotate(f"class {c}", (x, y), xytext=(7, 7), textcoords="offset points", fontsize=8)
    ex1, ex2 = data["explained"]
    ax.set_xlabel(f"PC 1 ({100 * ex1:.0f}% of the variance)")
    ax.set_ylabel(f"PC 2 ({100 * ex2:.0f}% of the variance)")
    ax.set_title(
        title
        or f"ProtoNet embedding of one test task (PCA to 2-D)\nnearest prototype in the full embedding: "
        f"{100 * data['accuracy']:.0f}% of the queries right",
        fontsize=10,
    )
    legend_outside(ax, ncol=2)
    fig.tight_layout()
    return fig


def matching_attention(learner, batch, *, task: int = 0) -> dict:
    """The numbers behind :func:`attention_map`: Matching Networks' attention of each query over the support
    items, ``softmax_i(tau * cos(f(q), f(s_i)))`` ``[Q, S]`` with the learner's temperature ``tau = exp(log_scale)``,
    and the class probabilities ``p(c|q) = sum_{i: y_i = c} a(q, s_i)`` ``[Q, N]`` (what the learner classifies with).
    Returns ``{"attention", "probs", "support_y", "query_y", "tau", "accuracy"}``."""
    import torch
    import torch.nn.functional as F

    if not hasattr(learner, "log_scale"):
        raise TypeError(
            f"matching_attention needs a Matching Networks learner (with log_scale), got {type(learner).__name__}"
        )
    one, model = _one_task(learner, batch, task)
    n_way = batch.n_way
    with torch.no_grad():
        fs, fq = _task_embeddings(learner, model, one)
        tau = learner.log_scale.exp()
        attention = (tau * F.normalize(fq, dim=-1) @ F.normalize(fs, dim=-1).T).softmax(-1)
        sy, qy = one.support_y[0], one.query_y[0]
        probs = attention @ (sy.unsqueeze(-1) == torch.arange(n_way, device=sy.device)).to(attention.dtype)
    return {
        "attention": attention.cpu(),
        "probs": probs.cpu(),
        "support_y": sy.cpu(),
        "query_y": qy.cpu(),
        "tau": float(tau),
        "accuracy": float((probs.argmax(-1) == qy).double().mean()),
    }


def _class_ticks(ax: Axes, labels: np.ndarray, axis: str) -> None:
    """Tick each class's block of rows/columns at its centre and separate the blocks with white lines."""
    centres, names = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        centres.append(idx.mean())
        names.append(f"c{c}")
        if idx.min() > 0:
            (ax.axvline if axis == "x" else ax.axhline)(idx.min() - 0.5, color="white", lw=1.5)
    (ax.set_xticks if axis == "x" else ax.set_yticks)(centres, names, fontsize=8)


def attention_map(learner, batch, *, task: int = 0, title: str = "") -> Figure:
    """Chapter 03: a Matching Network's attention on one held-out task. Left: the attention matrix (rows =
    queries, columns = support items, both grouped by class; each row sums to 1). Right: p(class | query), the
    row's attention summed per class; a dot marks the predicted class."""
    data = matching_attention(learner, batch, task=task)
    qorder = np.argsort(data["query_y"].numpy(), kind="stable")
    sorder = np.argsort(data["support_y"].numpy(), kind="stable")
    attention = _array(data["attention"])[qorder][:, sorder]
    probs = _array(data["probs"])[qorder]
    qy, sy = data["query_y"].numpy()[qorder], data["support_y"].numpy()[sorder]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(10.5, 5.0), gridspec_kw={"width_ratios": [max(len(sy), 3), max(probs.shape[1], 3)]}
    )
    im = left.imshow(
        attention,
        cmap="viridis",
        vmin=0,
        vmax=max(float(attention.max()), 1e-12),
        aspect="auto",
        interpolation="nearest",
    )
    fig.colorbar(im, ax=left, fraction=0.05, label="attention a(q, s)")
    _class_ticks(left, sy, "x")
    _class_ticks(left, qy, "y")
    left.set_xlabel(f"support items (by class; {len(sy)} in all)")
    left.set_ylabel(f"query images (by true class; {len(qy)})")
    left.set_title(f"attention = softmax(τ · cos), τ = {data['tau']:.1f}", fontsize=10)
    im2 = right.imshow(probs, cmap="magma", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    fig.colorbar(im2, ax=right, fraction=0.05, label="p(class | query)")
    right.scatter(probs.argmax(-1), np.arange(len(qy)), s=14, c="white", edgecolors="black", linewidths=0.6)
    right.set_xticks(range(probs.shape[1]), [f"c{c}" for c in range(probs.shape[1])], fontsize=8)
    _class_ticks(right, qy, "y")
    right.set_xlabel("class")
    right.set_title(
        f"p(c | q) = attention summed per class\naccuracy {100 * data['accuracy']:.0f}% (dot = prediction)", fontsize=10
    )
    fig.suptitle(title or "Matching Networks: where each query looks in the support set")
    fig.tight_layout()
    return fig


__all__ = [
    "accuracy_bars",
    "task_images",
    "sinusoid_tasks",
    "sinusoid_fit",
    "adaptation_curves",
    "learning_curves",
    "task_embedding",
    "sharpness_histogram",
    "legend_outside",
    "legend_inside",
    "fmt",
    "close",
    "field_map",
    "FIELD_MAP",
    "inner_outer_loop_diagram",
    "maml_decision_boundaries",
    "prototype_projection",
    "prototype_embedding",
    "matching_attention",
    "attention_map",
    "matplotlib",
]
