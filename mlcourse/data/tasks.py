"""The one task-batch format every algorithm consumes (chapters 02-08, ``mlcourse.algorithms``).

A ``TaskBatch`` holds ``T`` tasks stacked on the leading dimension so that algorithms can
``vmap`` over it:

* classification: ``support_x`` ``[T, N*K, C, H, W]`` float, ``support_y`` ``[T, N*K]`` int64 in
  ``0..N-1`` (class-major order: the first K examples are class 0, ...), ``query_x`` ``[T, N*Q, C, H, W]``,
  ``query_y`` ``[T, N*Q]``; ``classes`` ``[T, N]`` int64 holds the global class index of each task label
  (used by the pretrain-then-fine-tune baseline and by stratification checks).
* regression (sinusoid): ``support_x``/``support_y`` ``[T, K, 1]`` float, ``query_x``/``query_y``
  ``[T, Q, 1]``; ``classes`` is ``None`` and ``task_params`` ``[T, P]`` may hold the true task parameters
  (amplitude, phase) for plots and task embeddings.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Optional

import torch
from torch import Tensor


@dataclass
class TaskBatch:
    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
    classes: Optional[Tensor] = None
    task_params: Optional[Tensor] = None

    def __post_init__(self) -> None:
        n = self.support_x.shape[0]
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value.shape[0] != n:
                raise ValueError(
                    f"TaskBatch.{f.name} has {value.shape[0]} tasks on its leading dimension, "
                    f"but support_x has {n}; every field must be shaped [tasks, ...]"
                )
        if self.support_x.shape[1] != self.support_y.shape[1] or self.query_x.shape[1] != self.query_y.shape[1]:
            raise ValueError("TaskBatch: x and y must hold the same number of examples per task")

    @property
    def num_tasks(self) -> int:
        return int(self.support_x.shape[0])

    @property
    def is_classification(self) -> bool:
        return not torch.is_floating_point(self.support_y)

    @property
    def n_way(self) -> int:
        if not self.is_classification:
            raise AttributeError("n_way is defined for classification tasks only")
        if self.classes is not None:
            return int(self.classes.shape[1])
        return int(self.support_y.max().item()) + 1

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "TaskBatch":
        """Move every tensor to ``device``; ``dtype`` converts the floating-point fields only."""

        def move(t: Optional[Tensor]) -> Optional[Tensor]:
            if t is None:
                return None
            if dtype is not None and torch.is_floating_point(t):
                return t.to(device=device, dtype=dtype)
            return t.to(device=device)

        return TaskBatch(**{f.name: move(getattr(self, f.name)) for f in fields(self)})

    def task(self, index: int) -> "TaskBatch":
        """Task ``index`` as a batch of one (leading dimension kept): the per-task reference loops use it."""
        return TaskBatch(
            **{
                f.name: (None if getattr(self, f.name) is None else getattr(self, f.name)[index : index + 1])
                for f in fields(self)
            }
        )

    def split(self, parts: int) -> list["TaskBatch"]:
        """Split along the task dimension (distributed training gives each rank one part)."""
        size = self.num_tasks
        if not 1 <= parts <= size:
            raise ValueError(f"cannot split {size} tasks into {parts} parts; allowed 1..{size}")
        chunks = [torch.tensor_split(getattr(self, f.name), parts) if getattr(self, f.name) is not None else [None] * parts for f in fields(self)]
        return [TaskBatch(*[c[i] for c in chunks]) for i in range(parts)]

    def replace(self, **changes: Tensor) -> "TaskBatch":
        return replace(self, **changes)
