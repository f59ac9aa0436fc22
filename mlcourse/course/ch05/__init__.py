"""Chapter 05, the CIFAR-100 project: data, the comparison grid and its tables.

The names chapter 05's notebook calls, from this folder's modules and the shared ones, and the
chapter's commands of the ``mlcourse`` command line (``COMMANDS``).
"""

from __future__ import annotations

from mlcourse.cliparse import Command
from mlcourse.course.ch05 import project
from mlcourse.course.ch05.project import (
    ARTICLE_CODE,
    PUBLISHED,
    choose_dataset,
    data_label,
    grid_config,
    hyperparameter_widget,
    load_project_results,
    load_splits,
    per_task_std,
    project_table,
    published_protocol_command,
    run_article_code,
    run_grid,
    stratification_report,
    uniform_distinct_probability,
)

COMMANDS = {
    "cifar-grid": Command(
        "chapter 05: the comparison grid at full scale (a results.json per variant)",
        project.GridOptions,
        project.grid_command,
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
