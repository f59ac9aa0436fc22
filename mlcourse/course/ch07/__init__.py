"""Chapter 07, tools: the committed benchmark files read back (rankings, changes, the GPU reference).

The names chapter 07's notebook calls, from this folder's modules and the shared ones.
"""

from __future__ import annotations

from mlcourse.course.bench_reports import (
    bench_changes,
    bench_rankings,
    format_gpu_reference,
    gpu_reference_entry,
    gpu_results_table,
    load_gpu_reference,
)

__all__ = [
    "bench_changes",
    "bench_rankings",
    "format_gpu_reference",
    "gpu_reference_entry",
    "gpu_results_table",
    "load_gpu_reference",
]
