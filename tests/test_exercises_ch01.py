import math

import torch

from mlcourse.course.exercises import ch01
from mlcourse.data.tasks import TaskBatch


def test_confidence_interval_reference():
    acc = ch01.exercise_accuracies()
    mean, ci = ch01.confidence_interval(acc)
    assert math.isclose(mean, float(acc.mean()))
    assert math.isclose(ci, 1.96 * float(acc.std(unbiased=False)) / math.sqrt(40))
    assert ch01.check_confidence_interval((mean, ci)) is True
    assert ch01.check_confidence_interval((mean + 0.01, ci)) is False
    assert ch01.check_confidence_interval(None) == (mean, ci)


def _task():
    g = torch.Generator().manual_seed(0)
    centres = torch.rand(3, 1, 4, 4, generator=g)
    sx = centres.repeat_interleave(2, 0) + 0.01 * torch.randn(6, 1, 4, 4, generator=g)
    qx = centres.repeat_interleave(2, 0) + 0.01 * torch.randn(6, 1, 4, 4, generator=g)
    y = torch.arange(3).repeat_interleave(2)
    return TaskBatch(sx[None], y[None], qx[None], y[None].clone())


def test_nearest_centroid_reference_solves_separable_task(capsys):
    task = _task()
    pred = ch01.nearest_centroid_predict(task.support_x[0], task.support_y[0], task.query_x[0])
    assert torch.equal(pred, task.query_y[0])
    assert ch01.check_nearest_centroid(pred, task) is True
    assert "accuracy of these predictions: 1.000" in capsys.readouterr().out
    assert ch01.check_nearest_centroid(torch.zeros(6, dtype=torch.long), task) is False
