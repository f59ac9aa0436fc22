"""Chapter 04, the bilevel objective: meta-gradient formulas on small problems, and the article's rule against MAML.

The names chapter 04's notebook calls, from this folder's modules and the shared ones, and the
chapter's commands of the ``mlcourse`` command line (``COMMANDS``).
"""

from __future__ import annotations

from mlcourse.cliparse import Command
from mlcourse.course.ch04 import article
from mlcourse.course.ch04.article import ARTICLE_VS_MAML, article_vs_maml
from mlcourse.course.ch04.bilevel import (
    TOY_THETA0,
    adaptation_widget,
    article_update_direction,
    finite_difference_gradient,
    first_order_relative_error,
    flatten_parameters,
    gradient_alignment_gradient,
    hvp,
    inner_trajectory,
    joint_training_gradient,
    joint_training_loss,
    mean_over_tasks,
    meta_gradient_autograd,
    meta_gradient_formula,
    meta_objective,
    quadratic_loss,
    quadratic_minimiser,
    regression_tasks,
    relative_error,
    reptile_displacement,
    toy_landscape_widget,
    toy_tasks,
)
from mlcourse.course.options import ExperimentOptions
from mlcourse.course.result_files import load_result

COMMANDS = {
    "article-vs-maml": Command(
        "chapter 04: the article's rule vs MAML at full size (results/ch04_article_vs_maml.json)",
        ExperimentOptions,
        article.article_command,
        "Chapter 04: the article's rule against MAML at full size (results/ch04_article_vs_maml.json).",
    ),
}

__all__ = [
    "ARTICLE_VS_MAML",
    "TOY_THETA0",
    "adaptation_widget",
    "article_update_direction",
    "article_vs_maml",
    "finite_difference_gradient",
    "first_order_relative_error",
    "flatten_parameters",
    "gradient_alignment_gradient",
    "hvp",
    "inner_trajectory",
    "joint_training_gradient",
    "joint_training_loss",
    "load_result",
    "mean_over_tasks",
    "meta_gradient_autograd",
    "meta_gradient_formula",
    "meta_objective",
    "quadratic_loss",
    "quadratic_minimiser",
    "regression_tasks",
    "relative_error",
    "reptile_displacement",
    "toy_landscape_widget",
    "toy_tasks",
    "COMMANDS",
]
