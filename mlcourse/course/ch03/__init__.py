"""Chapter 03, algorithms: the sinusoid comparison of the five algorithms, the Omniglot runs, their plots and widgets.

The names chapter 03's notebook calls, from this folder's modules and the shared ones.
"""

from __future__ import annotations

from mlcourse.course.ch03.comparison import (
    SINUSOID_COMPARISON,
    SINUSOID_COMPARISON_ITERATIONS,
    SINUSOID_COMPARISON_META_BATCH,
    omniglot_train_accuracy,
    shipped_omniglot,
)
from mlcourse.course.ch03.plots import attention_map, prototype_embedding
from mlcourse.course.ch03.widgets import algorithm_widget, one_image_predictions, one_image_widget
from mlcourse.course.omniglot import load_omniglot_splits, run_dir, train_omniglot
from mlcourse.course.sinusoid import history_curve, mse_cell, sinusoid_adaptation, sinusoid_tasks, train_sinusoid

__all__ = [
    "SINUSOID_COMPARISON",
    "SINUSOID_COMPARISON_ITERATIONS",
    "SINUSOID_COMPARISON_META_BATCH",
    "algorithm_widget",
    "attention_map",
    "history_curve",
    "load_omniglot_splits",
    "mse_cell",
    "omniglot_train_accuracy",
    "one_image_predictions",
    "one_image_widget",
    "prototype_embedding",
    "run_dir",
    "shipped_omniglot",
    "sinusoid_adaptation",
    "sinusoid_tasks",
    "train_omniglot",
    "train_sinusoid",
]
