"""Chapter 01, background: the Omniglot data, the from-scratch baseline and the shipped full-scale runs.

The names chapter 01's notebook calls, from this folder's modules and the shared ones, and the
chapter's commands of the ``mlcourse`` command line (``COMMANDS``).
"""

from __future__ import annotations

from mlcourse.cliparse import Command
from mlcourse.course.ch01 import scratch
from mlcourse.course.ch01.scratch import SCRATCH_RUN, scratch_baseline
from mlcourse.course.omniglot import load_omniglot_splits, run_dir, train_omniglot

COMMANDS = {
    "scratch-baseline": Command(
        "chapter 01: a fresh Conv-4 trained on each test task's support set",
        scratch.ScratchOptions,
        scratch.scratch_command,
    ),
}

__all__ = ["SCRATCH_RUN", "load_omniglot_splits", "run_dir", "scratch_baseline", "train_omniglot", "COMMANDS"]
