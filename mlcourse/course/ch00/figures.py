"""Chapter 00's map of the field: the families of meta-learning methods and where each chapter meets them."""

from __future__ import annotations

from matplotlib.figure import Figure

from mlcourse.course.plots import FAMILY_COLOURS, arrow, blank_axes, box

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


def field_map() -> Figure:
    """Chapter 00: the three families of meta-learning, each algorithm with the chapters that treat it
    (``FIELD_MAP``). Boxes: 1 root + 3 families + one per algorithm; arrows: root -> each family."""
    fig, ax = blank_axes((13.0, 8.2))
    box(
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
        arrow(ax, (0.5, 0.905), (x, 0.855), colour="dimgrey")
        box(ax, x, 0.8, f"{family}\n{idea}", width=0.31, height=0.1, colour=colour, alpha=0.28, fontsize=8.5)
        for j, (name, reference, where) in enumerate(algorithms):
            not_run = where.endswith("not run in this course")
            box(
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
