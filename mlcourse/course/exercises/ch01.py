"""Chapter 01 (background: the few-shot problem) exercises: reference solutions and checkers.

1. ``check_confidence_interval``: the few-shot evaluation protocol's mean +- 95% CI over test tasks.
2. ``check_nearest_centroid``: a no-learning baseline, nearest class mean in pixel space, on one task.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from mlcourse.course.exercises._common import grade


# --- exercise 1 ------------------------------------------------------------------------------------
def exercise_accuracies() -> Tensor:
    """Per-task query accuracies of 40 made-up test tasks (fixed, so everyone gets the same answer)."""
    g = torch.Generator().manual_seed(1)
    return (0.6 + 0.3 * torch.rand(40, generator=g, dtype=torch.float64)).round(decimals=3)


def confidence_interval(accuracies: Tensor) -> tuple[float, float]:
    """Reference: ``(mean, 1.96 * std / sqrt(n))`` with the population std (``unbiased=False``)."""
    a = torch.as_tensor(accuracies, dtype=torch.float64).reshape(-1)
    return float(a.mean()), 1.96 * float(a.std(unbiased=False)) / math.sqrt(a.numel())


def check_confidence_interval(answer: Any = None) -> Any:
    """``answer`` = ``(mean, ci95)`` of ``exercise_accuracies()``."""
    return grade("confidence interval", answer, confidence_interval(exercise_accuracies()), atol=1e-4)


# --- exercise 2 ------------------------------------------------------------------------------------
def nearest_centroid_predict(support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
    """Reference: label of the nearest class mean (squared Euclidean distance on flattened pixels)."""
    sx = support_x.reshape(support_x.shape[0], -1).double()
    qx = query_x.reshape(query_x.shape[0], -1).double()
    n_way = int(support_y.max()) + 1
    centroids = torch.stack([sx[support_y == c].mean(0) for c in range(n_way)])
    return torch.cdist(qx, centroids).argmin(dim=1)


def check_nearest_centroid(answer: Any, task) -> Any:
    """``answer`` = predicted query labels ``[N*Q]`` for the single-task ``TaskBatch`` ``task``.

    Also prints the accuracy those predictions reach on the task's queries.
    """
    sx, sy, qx, qy = (
        t[0] if t.dim() > 1 and t.shape[0] == 1 else t
        for t in (task.support_x, task.support_y, task.query_x, task.query_y)
    )
    reference = nearest_centroid_predict(sx, sy, qx)
    result = grade("nearest centroid", answer, reference, atol=0)
    predictions = reference if answer is None else torch.as_tensor(answer).reshape(-1)
    if predictions.shape == qy.shape:
        print(f"query accuracy of these predictions: {(predictions.cpu() == qy.cpu()).double().mean().item():.3f}")
    return result


__all__ = [
    "exercise_accuracies",
    "confidence_interval",
    "check_confidence_interval",
    "nearest_centroid_predict",
    "check_nearest_centroid",
]
