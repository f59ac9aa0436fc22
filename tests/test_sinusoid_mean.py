"""Chapter 02: the mean function of the sinusoid family is -(2/pi) E[A] cos x (about -1.62 cos x), not y = 0.

Checked against a Monte-Carlo average of tasks sampled by ``SinusoidTasks`` itself, so the test fails if
either the analytic formula or the sampler's parameterisation (``A sin(x - b)``, ``b ~ U[0, pi]``) changes."""

from __future__ import annotations

import math

import torch

from mlcourse.data import SinusoidTasks

NUM_TASKS = 200_000


def _sampled(tasks: SinusoidTasks, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """``[NUM_TASKS, len(x)]`` outputs of sampled tasks on the fixed inputs ``x`` (float64)."""
    batch = tasks.sample(NUM_TASKS, 1, 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return SinusoidTasks.function(x.view(1, -1, 1).expand(NUM_TASKS, -1, -1), batch.task_params).squeeze(-1)


def test_default_family_mean_function_is_minus_1_62_cos_x() -> None:
    tasks = SinusoidTasks()
    x = torch.linspace(-5, 5, 41, dtype=torch.float64)
    expected = -(2 / math.pi) * 2.55 * torch.cos(x)
    torch.testing.assert_close(tasks.mean_function(x), expected, rtol=1e-12, atol=1e-12)
    assert abs(-(2 / math.pi) * tasks.mean_amplitude() - (-1.6234)) < 1e-4
    # Monte Carlo: the average of 200,000 sampled tasks; the standard error is below 0.005 at every x
    y = _sampled(tasks, x)
    mc, se = y.mean(0), y.std(0) / math.sqrt(NUM_TASKS)
    assert float(se.max()) < 0.006
    assert float(((mc - expected).abs() / se).max()) < 5.0, "analytic mean function disagrees with sampled tasks"
    assert float((mc - expected).abs().max()) < 0.03
    # and it is far from y = 0: at x = 0 the average wave is at -1.62
    assert float(mc[20]) < -1.5


def test_mean_function_for_other_ranges_matches_monte_carlo() -> None:
    tasks = SinusoidTasks(amplitude=(1.0, 2.0), phase=(0.5, 2.0))
    x = torch.linspace(-5, 5, 21, dtype=torch.float64)
    y = _sampled(tasks, x, seed=1)
    se = y.std(0) / math.sqrt(NUM_TASKS)
    assert float(((y.mean(0) - tasks.mean_function(x)).abs() / se).max()) < 5.0
    full_period = SinusoidTasks(phase=(0.0, 2 * math.pi))  # phases over a whole period do cancel
    torch.testing.assert_close(full_period.mean_function(x), torch.zeros_like(x), atol=1e-12, rtol=0)


def test_mean_function_mse_and_mean_square() -> None:
    """The pretrained network's loss plateau: 3.01 for the mean function, 4.25 for y = 0."""
    tasks = SinusoidTasks()
    assert abs(tasks.mean_square() - 8.50333 / 2) < 1e-3  # E[A^2] E[sin^2] = (125 - 0.001) / 14.7 / 2
    assert abs(tasks.mean_function_mse() - 3.006) < 2e-3
    batch = tasks.sample(NUM_TASKS, 1, 1, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    y, x = batch.support_y.flatten(), batch.support_x.flatten()
    assert abs(float((y**2).mean()) - tasks.mean_square()) < 0.05
    assert abs(float(((y - tasks.mean_function(x)) ** 2).mean()) - tasks.mean_function_mse()) < 0.05
