"""Chapter 06, applications: few-shot images, cross-domain, drift, personalisation and meta-reinforcement learning.

The names chapter 06's notebook calls, from this folder's modules and the shared ones.
"""

from __future__ import annotations

from mlcourse.course.ch06.applications import (
    SHIFTS,
    cross_domain_figure,
    cross_domain_table,
    drift_errors,
    drift_widget,
    fewshot_accuracy,
    fixed_tasks,
    learner_predictions,
    load_lake_split,
    personalisation_curve,
    personalisation_figure,
    pixel_prototype_predictions,
    prediction_figure,
    rl_returns_figure,
    shift_images,
    train_fewshot,
    train_personalisation,
    trajectory_figure,
    untrained_learner,
)
from mlcourse.course.ch06.rl import GaussianMLPPolicy, PointNavigation, adaptation_returns, chapter_config, train_policy
from mlcourse.course.sinusoid import train_sinusoid

__all__ = [
    "GaussianMLPPolicy",
    "PointNavigation",
    "SHIFTS",
    "adaptation_returns",
    "chapter_config",
    "cross_domain_figure",
    "cross_domain_table",
    "drift_errors",
    "drift_widget",
    "fewshot_accuracy",
    "fixed_tasks",
    "learner_predictions",
    "load_lake_split",
    "personalisation_curve",
    "personalisation_figure",
    "pixel_prototype_predictions",
    "prediction_figure",
    "rl_returns_figure",
    "shift_images",
    "train_fewshot",
    "train_personalisation",
    "train_policy",
    "train_sinusoid",
    "trajectory_figure",
    "untrained_learner",
]
