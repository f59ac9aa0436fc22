"""Sinusoid regression tasks from the MAML paper (Finn et al., 2017), chapters 02-04.

Each task is ``y = amplitude * sin(x - phase)`` with amplitude ~ U[0.1, 5], phase ~ U[0, pi] and inputs
x ~ U[-5, 5] (MAML's ranges and formula).

The **mean function** of the family (the best single predictor for all tasks, chapter 02) is not y = 0:
with A and b independent, E[y | x] = E[A] E[sin(x - b)], and for b ~ U[p0, p1]

    E[sin(x - b)] = (cos(x - p1) - cos(x - p0)) / (p1 - p0),

which for MAML's b ~ U[0, pi] is -(2/pi) cos x: the phases cover only half a period, so the waves do not
cancel. With E[A] = 2.55 the mean function is -(2/pi) 2.55 cos x = -1.62 cos x
(:meth:`SinusoidTasks.mean_function`).
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

    def mean_amplitude(self) -> float:
        """``E[A]`` for ``A ~ U[low, high]``."""
        return 0.5 * (self.amplitude[0] + self.amplitude[1])

    def mean_function(self, x: Tensor) -> Tensor:
        """The family's mean function ``E[y | x] = E[A] E[sin(x - b)]`` (``A``, ``b`` independent), exact:
        ``E[sin(x - b)] = (cos(x - p1) - cos(x - p0)) / (p1 - p0)`` for ``b ~ U[p0, p1]`` (``sin(x - p0)`` when
        the range is a point). For the default ranges: ``-(2 / pi) * 2.55 * cos(x)`` = ``-1.62 cos(x)``.
        It is the best single predictor of all tasks in mean squared error; any shape of ``x``."""
        p0, p1 = self.phase
        if p1 > p0:
            mean_sin = (torch.cos(x - p1) - torch.cos(x - p0)) / (p1 - p0)
        else:
            mean_sin = torch.sin(x - p0)
        return self.mean_amplitude() * mean_sin

    def _average_over_x(self, grid_points: int, subtract_mean: bool) -> float:
        """``E_x E[y^2 | x]`` (minus ``E_x mean_function(x)^2`` with ``subtract_mean``): ``E[A^2]`` and the
        average over ``b`` exact, the average over ``x ~ U[x_range]`` by the trapezoid rule (float64)."""
        (a0, a1), (p0, p1), (x0, x1) = self.amplitude, self.phase, self.x_range
        mean_a2 = (a1 ** 3 - a0 ** 3) / (3 * (a1 - a0)) if a1 > a0 else a0 ** 2
        x = torch.linspace(x0, x1, max(2, int(grid_points)), dtype=torch.float64)
        if p1 > p0:  # E_b[sin^2(x - b)] = 1/2 - E_b[cos(2x - 2b)] / 2
            mean_cos2 = (torch.sin(2 * x - 2 * p0) - torch.sin(2 * x - 2 * p1)) / (2 * (p1 - p0))
            mean_sin2 = 0.5 - 0.5 * mean_cos2
        else:
            mean_sin2 = torch.sin(x - p0) ** 2
        value = mean_a2 * mean_sin2
        if subtract_mean:
            value = value - self.mean_function(x) ** 2
        if x1 == x0:
            return float(value[0])
        return float(torch.trapezoid(value, x) / (x1 - x0))

    def mean_square(self, grid_points: int = 20001) -> float:
        """``E[y^2]`` over tasks and inputs: the expected MSE of predicting ``y = 0`` (default family: 4.25)."""
        return self._average_over_x(grid_points, subtract_mean=False)

    def mean_function_mse(self, grid_points: int = 20001) -> float:
        """Expected MSE of :meth:`mean_function` on a random task and input, ``E_x Var[y | x]``: the lowest
        loss any single function (one that ignores the task) can reach (default family: 3.01, against 4.25
        for ``y = 0``, :meth:`mean_square`)."""
        return self._average_over_x(grid_points, subtract_mean=True)

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
