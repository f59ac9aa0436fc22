"""SinusoidTasks: shapes, ranges, the MAML formula, determinism, errors."""

from __future__ import annotations

import math

import pytest
import torch

from mlcourse.data import SinusoidTasks


def test_shapes_ranges_and_formula():
    batch = SinusoidTasks().sample(200, 10, 7, generator=torch.Generator().manual_seed(0))
    assert batch.support_x.shape == (200, 10, 1) and batch.query_y.shape == (200, 7, 1)
    assert batch.task_params.shape == (200, 2) and batch.classes is None and not batch.is_classification
    amp, phase = batch.task_params[:, 0], batch.task_params[:, 1]
    assert 0.1 <= amp.min() and amp.max() <= 5.0 and 0 <= phase.min() and phase.max() <= math.pi
    assert amp.max() > 4.5 and amp.min() < 0.6  # really spans the range
    x = torch.cat([batch.support_x, batch.query_x], 1)
    assert -5 <= x.min() and x.max() <= 5
    y = torch.cat([batch.support_y, batch.query_y], 1)
    assert torch.allclose(y, amp.view(-1, 1, 1) * torch.sin(x - phase.view(-1, 1, 1)))


def test_determinism_and_device():
    tasks = SinusoidTasks(amplitude=(1.0, 2.0))
    a = tasks.sample(4, 5, 5, generator=torch.Generator().manual_seed(1))
    b = tasks.sample(4, 5, 5, generator=torch.Generator().manual_seed(1), device="cpu")
    c = tasks.sample(4, 5, 5, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.task_params, b.task_params)
    assert not torch.equal(a.support_x, c.support_x)
    assert a.task_params[:, 0].min() >= 1.0 and a.support_x.dtype == torch.float32
    assert tasks.sample(2, 1, 1, dtype=torch.float64).query_y.dtype == torch.float64


@pytest.mark.parametrize(
    "args, message",
    [
        ((0, 5, 5), "num_tasks=0 is out of range; allowed >= 1"),
        ((2, 0, 5), "k_shot=0 is out of range; allowed >= 1"),
        ((2, 5, -1), "n_query=-1 is out of range; allowed >= 1"),
        ((2, 2.5, 5), "k_shot=2.5 is not allowed"),
    ],
)
def test_errors(args, message):
    with pytest.raises(ValueError, match=message):
        SinusoidTasks().sample(*args)
    with pytest.raises(ValueError, match="need low <= high"):
        SinusoidTasks(amplitude=(5.0, 0.1))
