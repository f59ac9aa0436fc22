"""Chapter 08, scalability: time and memory sweeps, the remedies, the frontier and the black-box learner.

The names chapter 08's notebook calls, from this folder's modules and the shared ones, and the
chapter's commands of the ``mlcourse`` command line (``COMMANDS``).
"""

from __future__ import annotations

from mlcourse.cliparse import Command
from mlcourse.course.bench_reports import (
    gpu_reference_entry,
    gpu_reference_source,
    gpu_results_table,
    load_gpu_reference,
)
from mlcourse.course.ch08 import blackbox, command
from mlcourse.course.ch08.blackbox import (
    BLACKBOX_OOD,
    BLACKBOX_VS_MAML,
    blackbox_ood,
    blackbox_table,
    blackbox_vs_maml,
    ood_figure,
    ood_findings,
    ood_table,
    parameter_count,
)
from mlcourse.course.ch08.frontier_report import frontier_lines, frontier_source, frontier_table, plot_frontier
from mlcourse.course.ch08.processes import distributed_report, load_distributed_results, speedup_lines
from mlcourse.course.ch08.remedies import imaml_cg_errors, load_remedies, plot_remedies, remedies_source, remedies_table
from mlcourse.course.ch08.sweeps import (
    AXES,
    FAST_BASE,
    FAST_GRID,
    FULL_BASE,
    SCALING_ALGORITHMS,
    axis_rows,
    exponent_table,
    exponents,
    fit_linear,
    graph_memory,
    implementation_sweep,
    load_scaling,
    memory_table,
    memory_vs_inner_steps,
    plot_sweep,
    scaling_source,
    scaling_widget,
    sweep,
    time_meta_iteration,
    timer,
)
from mlcourse.course.options import ExperimentOptions
from mlcourse.course.result_files import load_result
from mlcourse.course.sinusoid import committed_sinusoid_maml

COMMANDS = {
    "blackbox-vs-maml": Command(
        "chapter 08: a black-box (in-context) learner against MAML on the sinusoids",
        ExperimentOptions,
        blackbox.blackbox_command,
        "Chapter 08: a black-box (in-context) learner against MAML on the sinusoids (results/ch08_blackbox_vs_maml.json).",
    ),
    "blackbox-ood": Command(
        "chapter 08: the black-box learner and MAML on sinusoids outside the training range",
        blackbox.OodOptions,
        blackbox.ood_command,
    ),
    "scaling": Command(
        "chapter 08: time and memory sweeps (or --remedies, --distributed)",
        command.ScalingOptions,
        command.scaling_command,
    ),
}

__all__ = [
    "AXES",
    "BLACKBOX_OOD",
    "BLACKBOX_VS_MAML",
    "FAST_BASE",
    "FAST_GRID",
    "FULL_BASE",
    "SCALING_ALGORITHMS",
    "axis_rows",
    "blackbox_ood",
    "blackbox_table",
    "blackbox_vs_maml",
    "committed_sinusoid_maml",
    "distributed_report",
    "exponent_table",
    "exponents",
    "fit_linear",
    "frontier_lines",
    "frontier_source",
    "frontier_table",
    "gpu_reference_entry",
    "gpu_reference_source",
    "gpu_results_table",
    "graph_memory",
    "imaml_cg_errors",
    "implementation_sweep",
    "load_distributed_results",
    "load_gpu_reference",
    "load_remedies",
    "load_result",
    "load_scaling",
    "memory_table",
    "memory_vs_inner_steps",
    "ood_figure",
    "ood_findings",
    "ood_table",
    "parameter_count",
    "plot_frontier",
    "plot_remedies",
    "plot_sweep",
    "remedies_source",
    "remedies_table",
    "scaling_source",
    "scaling_widget",
    "speedup_lines",
    "sweep",
    "time_meta_iteration",
    "timer",
    "COMMANDS",
]
