"""Chapter 02, core concepts: the 2-D toy tasks, the MAML paper's sinusoid experiment, its plots and widgets.

The names chapter 02's notebook calls, from this folder's modules and the shared ones, and the
chapter's commands of the ``mlcourse`` command line (``COMMANDS``).
"""

from __future__ import annotations

from mlcourse.cliparse import Command
from mlcourse.course.ch02 import paper
from mlcourse.course.ch02.paper import (
    PAPER_SINUSOID,
    full_runs_summary,
    load_paper_runs,
    maml_beats_pretrained,
    paper_table,
    pca_2d,
    shots_curve,
    sinusoid_paper_experiment,
    sinusoid_task_embedding,
    variants_table,
)
from mlcourse.course.ch02.plots import (
    inner_outer_loop_diagram,
    maml_decision_boundaries,
    sharpness_histogram,
    task_embedding,
)
from mlcourse.course.ch02.toy2d import decision_grid, meta_train, sample_tasks
from mlcourse.course.ch02.widgets import adaptation_widget, beta_widget
from mlcourse.course.result_files import load_result
from mlcourse.course.sinusoid import sinusoid_tasks

COMMANDS = {
    "sinusoid-paper": Command(
        "chapter 02: the MAML paper's sinusoid run at full scale (resumable)",
        paper.SinusoidOptions,
        paper.sinusoid_command,
    ),
}

__all__ = [
    "PAPER_SINUSOID",
    "adaptation_widget",
    "beta_widget",
    "decision_grid",
    "full_runs_summary",
    "inner_outer_loop_diagram",
    "load_paper_runs",
    "load_result",
    "maml_beats_pretrained",
    "maml_decision_boundaries",
    "meta_train",
    "paper_table",
    "pca_2d",
    "sample_tasks",
    "sharpness_histogram",
    "shots_curve",
    "sinusoid_paper_experiment",
    "sinusoid_task_embedding",
    "sinusoid_tasks",
    "task_embedding",
    "variants_table",
    "COMMANDS",
]
