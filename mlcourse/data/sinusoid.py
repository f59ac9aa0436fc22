"""Sinusoid regression tasks from the MAML paper (Finn et al., 2017), chapters 02-04.

Each task is ``y = amplitude * sin(x - phase)`` with amplitude ~ U[0.1, 5], phase ~ U[0, pi] and inputs
x ~ U[-5, 5] (MAML's ranges and formula).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from .images import positive_int as _positive_int
from .tasks import TaskBatch


def _range(name: str, value: tuple[float, float]) -> tuple[float, float]:
    low, high = (float(v) for v in value)
    if not low <= high:
        raise ValueError(f"{name}={value!r} is not a range: need low <= high")
    return low, high


class SinusoidTasks:
    """Distribution over sinusoid regression tasks; ``sample`` returns a regression ``TaskBatch``."""

    def __init__(self, amplitude: tuple[float, float] = (0.1, 5.0), phase: tuple[float, float] = (0.0, math.pi),
                 x_range: tuple[float, float] = (-5.0, 5.0)) -> None:
        self.amplitude = _range("amplitude", amplitude)
        self.phase = _range("phase", phase)
        self.x_range = _range("x_range", x_range)

    def __repr__(self) -> str:
        return f"SinusoidTasks(amplitude={self.amplitude}, phase={self.phase}, x_range={self.x_range})"

    @staticmethod
    def function(x: Tensor, task_params: Tensor) -> Tensor:
        """True outputs ``amplitude * sin(x - phase)``; ``x`` ``[T, M, 1]``, ``task_params`` ``[T, 2]``."""
        amplitude = task_params[:, 0].view(-1, 1, 1)
        phase = task_params[:, 1].view(-1, 1, 1)
        return amplitude * torch.sin(x - phase)

    def sample(self, num_tasks: int, k_shot: int, n_query: int, generator: Optional[torch.Generator] = None,
               device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> TaskBatch:
        """``num_tasks`` tasks with ``k_shot`` support and ``n_query`` query points each.

        Shapes: ``support_x``/``support_y`` ``[T, K, 1]``, ``query_x``/``query_y`` ``[T, Q, 1]``,
        ``task_params`` ``[T, 2]`` = (amplitude, phase). Random numbers come from ``generator`` (on its
        device; torch's global generator when ``None``); the result is moved to ``device``.
        """
        num_tasks = _positive_int("num_tasks", num_tasks)
        k_shot = _positive_int("k_shot", k_shot)
        n_query = _positive_int("n_query", n_query)
        gen_device = generator.device if generator is not None else torch.device("cpu")

        def uniform(shape: tuple[int, ...], low: float, high: float) -> Tensor:
            return torch.rand(shape, generator=generator, device=gen_device, dtype=dtype) * (high - low) + low

        amplitude = uniform((num_tasks,), *self.amplitude)
        phase = uniform((num_tasks,), *self.phase)
        params = torch.stack([amplitude, phase], dim=1)
        x = uniform((num_tasks, k_shot + n_query, 1), *self.x_range)
        y = self.function(x, params)
        batch = TaskBatch(support_x=x[:, :k_shot], support_y=y[:, :k_shot], query_x=x[:, k_shot:],
                          query_y=y[:, k_shot:], classes=None, task_params=params)
        return batch.to(device) if device is not None else batch
