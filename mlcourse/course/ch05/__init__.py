"""Chapter 05, the CIFAR-100 project: data, the comparison grid and its tables.

The names chapter 05's notebook calls, from this folder's modules and the shared ones, and the
chapter's commands of the ``mlcourse`` command line (``COMMANDS``).
"""

from __future__ import annotations

from mlcourse.cliparse import Command
from mlcourse.course.ch05 import grid
from mlcourse.course.ch05.article_code import ARTICLE_CODE, run_article_code
from mlcourse.course.ch05.data import choose_dataset, load_splits, stratification_report, uniform_distinct_probability
from mlcourse.course.ch05.grid import grid_config, per_task_std, run_grid
from mlcourse.course.ch05.results import (
    PUBLISHED,
    data_label,
    load_project_results,
    project_table,
    published_protocol_command,
)
from mlcourse.course.ch05.widgets import hyperparameter_widget

COMMANDS = {
    "cifar-grid": Command(
        "chapter 05: the comparison grid at full scale (a results.json per variant)",
        grid.GridOptions,
        grid.grid_command,
    ),
}

__all__ = [
    "ARTICLE_CODE",
    "PUBLISHED",
    "choose_dataset",
    "data_label",
    "grid_config",
    "hyperparameter_widget",
    "load_project_results",
    "load_splits",
    "per_task_std",
    "project_table",
    "published_protocol_command",
    "run_article_code",
    "run_grid",
    "stratification_report",
    "uniform_distinct_probability",
    "COMMANDS",
]
