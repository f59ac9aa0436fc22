"""Chapter 01 (background: the few-shot problem): inputs and visible checks of the exercises.

1. ``check_confidence_interval``: the few-shot protocol's mean and 95% half-width over test tasks.
2. ``check_nearest_centroid``: a no-learning baseline, nearest class mean in pixel space.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import torch
from torch import Tensor

from mlcourse.course.exercises._common import Checks, as_float64, missing


def exercise_accuracies() -> Tensor:
    """Per-task query accuracies of 40 made-up test tasks (fixed, so everyone works on the same numbers)."""
    g = torch.Generator().manual_seed(1)
    return (0.6 + 0.3 * torch.rand(40, generator=g, dtype=torch.float64)).round(decimals=3)


def check_confidence_interval(answer: Optional[Callable[[Tensor], Any]]) -> bool:
    """Properties of ``answer(accuracies) -> (mean, ci95)``: two numbers, the mean inside the data's range, a
    positive half-width that vanishes for equal accuracies, ignores a shift, and halves with 4x the tasks."""
    name = "confidence interval"
    if missing(name, answer):
        return False
    check, accs = Checks(name), exercise_accuracies()
    got = as_float64(check.run(answer, accs.clone())).reshape(-1)
    if not check("returns two numbers (mean, ci95)", got.numel() == 2, "return a tuple (mean, ci95)"):
        return False
    mean, ci = got.tolist()
    check("mean lies between the smallest and largest accuracy", accs.min() <= mean <= accs.max(), "average them")
    check("ci95 > 0", ci > 0, "a half-width is positive")
    flat = as_float64(check.run(answer, torch.full((10,), 0.7, dtype=torch.float64))).reshape(-1)
    check("equal accuracies give ci95 = 0", flat.numel() == 2 and abs(flat[1]) < 1e-12, "limiting case: no spread")
    shifted = as_float64(check.run(answer, accs + 0.05)).reshape(-1)
    check(
        "adding 0.05 to every accuracy moves the mean by 0.05 and keeps ci95",
        shifted.numel() == 2 and abs(shifted[0] - mean - 0.05) < 1e-9 and abs(shifted[1] - ci) < 1e-9,
        "the half-width depends on the spread only",
    )
    four = as_float64(check.run(answer, accs.repeat(4))).reshape(-1)
    check(
        "each accuracy repeated 4 times halves ci95",
        four.numel() == 2 and abs(four[1] - ci / 2) < 1e-9,
        "1/sqrt(n) with the population standard deviation (unbiased=False)",
    )
    return check.ok


def _blob_task(n_way: int, k_shot: int, n_query: int, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A small pixel task with well-separated classes: support, labels, queries, their labels."""
    g = torch.Generator().manual_seed(seed)
    centres = 3 * torch.rand(n_way, 1, 6, 6, generator=g)
    sy, qy = torch.arange(n_way).repeat_interleave(k_shot), torch.arange(n_way).repeat(n_query)
    sx = centres[sy] + 0.2 * torch.randn(n_way * k_shot, 1, 6, 6, generator=g)
    qx = centres[qy] + 0.2 * torch.randn(n_way * n_query, 1, 6, 6, generator=g)
    return sx, sy, qx, qy


def check_nearest_centroid(answer: Optional[Callable[[Tensor, Tensor, Tensor], Tensor]], task: Any = None) -> bool:
    """Properties of ``answer(support_x, support_y, query_x) -> labels [Q]``: shape and range, a query equal to a
    class's mean support image gets that class, relabelling the classes relabels the predictions, and a constant
    added to every pixel changes nothing. With ``task`` (a one-task ``TaskBatch``) also prints the accuracy."""
    name = "nearest centroid"
    if missing(name, answer):
        return False
    check = Checks(name)
    sx, sy, qx, _ = _blob_task(4, 3, 3, seed=5)
    pred = as_float64(check.run(answer, sx, sy, qx)).reshape(-1)
    if not check(
        "one label in 0..N-1 per query",
        pred.shape == (qx.shape[0],) and set(pred.tolist()) <= set(range(4)),
        "a [Q] tensor of class labels",
    ):
        return False
    means = torch.stack([sx[sy == c].mean(0) for c in range(4)])
    at_means = as_float64(check.run(answer, sx, sy, means)).reshape(-1)
    check("a query equal to a class's mean image gets that class", at_means.tolist() == [0, 1, 2, 3], "limiting case")
    perm = torch.tensor([2, 0, 3, 1])
    relabelled = as_float64(check.run(answer, sx, perm[sy], qx)).reshape(-1)
    check(
        "renaming the classes renames the predictions",
        relabelled.numel() == pred.numel() and torch.equal(relabelled, perm[pred.long()].double()),
        "use the labels, not the position of the images",
    )
    moved = as_float64(check.run(answer, sx + 5, sy, qx + 5)).reshape(-1)
    check("adding 5 to every pixel changes no prediction", torch.equal(moved, pred), "distances, not raw pixel sums")
    if task is not None and check.ok:
        sx, sy, qx, qy = (t[0] for t in (task.support_x, task.support_y, task.query_x, task.query_y))
        got = torch.as_tensor(answer(sx, sy, qx)).reshape(-1).cpu()
        print(f"query accuracy of your baseline on this task: {(got == qy.cpu()).double().mean().item():.3f}")
    return check.ok


__all__ = ["exercise_accuracies", "check_confidence_interval", "check_nearest_centroid"]
