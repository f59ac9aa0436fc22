"""Chapter 07 (tools): inputs and visible checks of the exercises.

1. ``check_l2l_meta_loss``: MAML's meta-loss written with learn2learn's ``MAML`` wrapper (``clone()``/``adapt()``); its
   gradient is compared with ``make_learner("maml")``'s in float64 (second and first order).
2. ``check_task_to_batch``: one learn2learn task (images and labels 0..N-1 in any order) as our ``TaskBatch``
   (class-major support = the first K images of each class, query = the rest).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import torch
from torch import Tensor, nn

from mlcourse.algorithms import make_learner
from mlcourse.bench import Shape, make_model, synthetic_batch
from mlcourse.course.exercises._common import Checks, missing
from mlcourse.data.tasks import TaskBatch


def l2l_setup(seed: int = 0) -> tuple[nn.Module, TaskBatch]:
    """A small Conv-4 and a batch of 3 synthetic 3-way 2-shot tasks, float64."""
    shape = Shape(n_way=3, k_shot=2, n_query=2, tasks=3, inner_steps=2, hidden=4, image_size=12, channels=1)
    return make_model(shape, seed=seed, dtype=torch.float64), synthetic_batch(shape, seed=seed, dtype=torch.float64)


def _flat_grad(model: nn.Module) -> Tensor:
    return torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1) for p in model.parameters()])


def check_l2l_meta_loss(answer: Optional[Callable[[nn.Module, TaskBatch, float, int, bool], Tensor]]) -> bool:
    """Properties of ``answer(model, batch, inner_lr, steps, first_order) -> scalar``: its gradient with respect to the
    model's parameters equals ``make_learner("maml")``'s (relative error < 1e-10, float64), second and first order."""
    name = "learn2learn meta-loss"
    if missing(name, answer):
        return False
    check, (model, batch) = Checks(name), l2l_setup()
    loss = check.run(answer, model, batch, 0.3, 2, False)
    if not check("returns a scalar tensor", isinstance(loss, Tensor) and loss.numel() == 1, "the mean over tasks"):
        return False
    for first_order in (False, True):
        learner = make_learner("maml", model, inner_lr=0.3, inner_steps=2, first_order=first_order)
        model.zero_grad(set_to_none=True)
        learner(batch).loss.backward()
        want = _flat_grad(model)
        model.zero_grad(set_to_none=True)
        check.run(lambda fo=first_order: answer(model, batch, 0.3, 2, fo).backward())
        got = _flat_grad(model)
        model.zero_grad(set_to_none=True)
        check(
            f"{'first' if first_order else 'second'}-order meta-gradient equals make_learner('maml')'s",
            float((got - want).norm() / want.norm()) < 1e-10,
            "MAML(model, lr=inner_lr, first_order=...), clone() per task, `steps` adapt() calls, mean query loss",
        )
    return check.ok


def shuffled_task(n_way: int = 3, k_shot: int = 2, n_query: int = 2, seed: int = 7) -> tuple[Tensor, Tensor]:
    """One task as learn2learn samples it: images ``[N (K + Q), 1, 4, 4]`` and labels 0..N-1 in a random order."""
    g = torch.Generator().manual_seed(seed)
    per = k_shot + n_query
    labels = torch.arange(n_way).repeat_interleave(per)[torch.randperm(n_way * per, generator=g)]
    return torch.rand(n_way * per, 1, 4, 4, generator=g), labels


def check_task_to_batch(answer: Optional[Callable[[Tensor, Tensor, int, int], TaskBatch]]) -> bool:
    """Properties of ``answer(data, labels, n_way, k_shot) -> TaskBatch``: shapes, class-major labels, every image
    once with its own label, and within each class the original order (support images before query images)."""
    name = "task to batch"
    if missing(name, answer):
        return False
    check = Checks(name)
    n, k, q = 3, 2, 2
    data, labels = shuffled_task(n, k, q)
    out = check.run(answer, data.clone(), labels.clone(), n, k)
    fields = ("support_x", "support_y", "query_x", "query_y")
    if not check("returns a TaskBatch", all(hasattr(out, f) for f in fields), "TaskBatch(support_x, support_y, ...)"):
        return False
    sx, sy, qx, qy = (getattr(out, f) for f in fields)
    shapes = (
        sx.shape == (1, n * k, 1, 4, 4),
        sy.shape == (1, n * k),
        qx.shape == (1, n * q, 1, 4, 4),
        qy.shape == (1, n * q),
    )
    if not check("one task: [1, N*K, ...] support and [1, N*Q, ...] query", all(shapes), "unsqueeze(0)"):
        return False
    check("class-major labels", sy[0].tolist() == [c for c in range(n) for _ in range(k)], "sort by label")
    position = {tuple(img.flatten().tolist()): i for i, img in enumerate(data)}
    where = [position.get(tuple(img.flatten().tolist()), -1) for img in torch.cat([sx[0], qx[0]])]
    check(
        "every image exactly once", sorted(where) == list(range(len(data))), "index the images, do not copy one twice"
    )
    kept = all(i >= 0 and int(labels[i]) == int(y) for i, y in zip(where, torch.cat([sy[0], qy[0]])))
    check("each image keeps its label", kept, "reorder data and labels with the same indices")
    ordered = True
    for c in range(n):
        support = [i for i, y in zip(where[: n * k], sy[0].tolist()) if y == c]
        query = [i for i, y in zip(where[n * k :], qy[0].tolist()) if y == c]
        ordered &= (
            support == sorted(support)
            and query == sorted(query)
            and max(support, default=-1) < min(query, default=1 << 30)
        )
    check("in each class the first K images support, in their original order", ordered, "a *stable* sort")
    return check.ok


__all__ = ["l2l_setup", "check_l2l_meta_loss", "shuffled_task", "check_task_to_batch"]
