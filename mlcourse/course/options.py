"""What the chapters' experiment commands share: the thread option and the plain experiment options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Optional

import torch
import tyro

from mlcourse.cliparse import arg

THREADS_HELP = "torch CPU threads"


@dataclass(frozen=True)
class ExperimentOptions:
    """The options of ``mlcourse article-vs-maml`` (chapter 04) and ``mlcourse blackbox-vs-maml`` (chapter 08)."""

    iterations: Annotated[
        Optional[int],
        tyro.conf.DisallowNone,
        arg("meta-iterations", default="20,000 (article-vs-maml), 10,000 (blackbox-vs-maml)"),
    ] = None
    threads: Annotated[Optional[int], tyro.conf.DisallowNone, arg(THREADS_HELP, default="torch's choice")] = None
    device: Annotated[str, arg("auto, cpu, cuda, cuda:N")] = "cpu"
    seed: Annotated[int, arg("training seed (the test tasks are the same for every seed)")] = 0


def set_threads(count: Optional[int]) -> None:
    """Use ``count`` torch CPU threads; ``None`` or 0 leaves torch's choice."""
    if count:
        torch.set_num_threads(count)
