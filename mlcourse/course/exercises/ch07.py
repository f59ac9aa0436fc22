"""Chapter 07 (tools): reference solutions and checkers.

1. ``l2l_meta_loss``: MAML's meta-loss written with learn2learn's ``MAML`` wrapper (``clone()``/``adapt()``);
   its gradient must equal ``make_learner("maml")``'s in float64 (second and first order).
2. ``task_to_batch``: turn one learn2learn task (``TaskDataset.sample()``: images and labels 0..N-1 in any
   order) into our ``TaskBatch`` (class-major support = the first K images of each class, query = the rest).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlcourse.algorithms import make_learner
from mlcourse.bench import Shape, load_learn2learn, make_model, synthetic_batch
from mlcourse.data.tasks import TaskBatch

# --------------------------------------------------------------------------------------------------
# Exercise 1: the meta-loss with learn2learn
# --------------------------------------------------------------------------------------------------


def l2l_meta_loss(model: nn.Module, batch: TaskBatch, inner_lr: float, steps: int, first_order: bool) -> Tensor:
    """Reference: wrap ``model`` in ``l2l.algorithms.MAML``; per task ``clone()``, ``steps`` x ``adapt()`` on
    the support cross-entropy, query cross-entropy of the clone; mean over tasks."""

    l2l = load_learn2learn()
    maml = l2l.algorithms.MAML(model, lr=inner_lr, first_order=first_order)
    losses = []
    for t in range(batch.num_tasks):
        learner = maml.clone()
        for _ in range(steps):
            learner.adapt(F.cross_entropy(learner(batch.support_x[t]), batch.support_y[t]))
        losses.append(F.cross_entropy(learner(batch.query_x[t]), batch.query_y[t]))
    return torch.stack(losses).mean()


def _ex1_setup(seed: int = 0):

    shape = Shape(n_way=3, k_shot=2, n_query=2, tasks=3, inner_steps=2, hidden=4, image_size=12, channels=1)
    model = make_model(shape, seed=seed, dtype=torch.float64)
    return model, synthetic_batch(shape, seed=seed, dtype=torch.float64)


def _flat_grad(model: nn.Module) -> Tensor:
    return torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1) for p in model.parameters()])


def mlcourse_meta_gradient(
    model: nn.Module, batch: TaskBatch, inner_lr: float, steps: int, first_order: bool
) -> Tensor:
    """The meta-gradient from ``make_learner("maml")`` (vectorised), flattened."""

    learner = make_learner("maml", model, inner_lr=inner_lr, inner_steps=steps, first_order=first_order)
    model.zero_grad(set_to_none=True)
    learner(batch).loss.backward()
    g = _flat_grad(model)
    model.zero_grad(set_to_none=True)
    return g


def check_l2l_meta_loss(answer: Optional[Callable[[nn.Module, TaskBatch, float, int, bool], Tensor]]) -> bool:
    """Grade ``answer(model, batch, inner_lr, steps, first_order) -> scalar meta-loss``: its gradient with
    respect to the model's parameters must equal mlcourse's (relative error < 1e-10, float64)."""
    model, batch = _ex1_setup()
    if answer is None:
        ref = mlcourse_meta_gradient(model, batch, 0.3, 2, False)
        print(
            f"no answer yet. make_learner('maml') meta-gradient (2 steps, lr 0.3): norm {ref.norm():.6f}, "
            f"{ref.numel()} entries"
        )
        return False
    ok = True
    for first_order in (False, True):
        want = mlcourse_meta_gradient(model, batch, 0.3, 2, first_order)
        model.zero_grad(set_to_none=True)
        answer(model, batch, 0.3, 2, first_order).backward()
        got = _flat_grad(model)
        model.zero_grad(set_to_none=True)
        err = float((got - want).norm() / want.norm())
        passed = err < 1e-10
        ok &= passed
        print(f"first_order={first_order}: {'correct' if passed else 'not yet'} (relative error {err:.1e})")
    return ok


# --------------------------------------------------------------------------------------------------
# Exercise 2: a learn2learn task as a TaskBatch
# --------------------------------------------------------------------------------------------------


def task_to_batch(data: Tensor, labels: Tensor, n_way: int, k_shot: int) -> TaskBatch:
    """Reference: a stable sort by label makes the task class-major; in each class the first ``k_shot``
    images (in their original order) are the support set, the rest the query set. One task: ``[1, ...]``."""
    order = torch.sort(labels, stable=True).indices
    data, labels = data[order], labels[order]
    per_class = labels.numel() // n_way
    if per_class * n_way != labels.numel() or not torch.equal(labels, torch.arange(n_way).repeat_interleave(per_class)):
        raise ValueError(f"expected {n_way} classes with the same number of images each, got labels {labels.tolist()}")
    idx = torch.arange(labels.numel()).view(n_way, per_class)
    s, q = idx[:, :k_shot].reshape(-1), idx[:, k_shot:].reshape(-1)
    return TaskBatch(data[s].unsqueeze(0), labels[s].unsqueeze(0), data[q].unsqueeze(0), labels[q].unsqueeze(0))


def _ex2_cases() -> list[tuple[Tensor, Tensor, int, int]]:
    g = torch.Generator().manual_seed(7)
    cases = []
    for n_way, k_shot, n_query in ((3, 1, 2), (5, 2, 3), (2, 4, 1)):
        per = k_shot + n_query
        labels = torch.arange(n_way).repeat_interleave(per)[torch.randperm(n_way * per, generator=g)]
        data = torch.rand(n_way * per, 1, 4, 4, generator=g)
        cases.append((data, labels, n_way, k_shot))
    return cases


def check_task_to_batch(answer: Optional[Callable[[Tensor, Tensor, int, int], TaskBatch]]) -> bool:
    """Grade ``answer(data, labels, n_way, k_shot) -> TaskBatch`` on shuffled tasks (exact equality)."""
    cases = _ex2_cases()
    if answer is None:
        data, labels, n, k = cases[0]
        ref = task_to_batch(data, labels, n, k)
        print(
            f"no answer yet. Labels {labels.tolist()} (3-way 1-shot) give support_y {ref.support_y.tolist()}, "
            f"query_y {ref.query_y.tolist()}, support_x {tuple(ref.support_x.shape)}"
        )
        return False
    ok = True
    for i, (data, labels, n, k) in enumerate(cases):
        want = task_to_batch(data, labels, n, k)
        try:
            got = answer(data, labels, n, k)
            passed = all(
                torch.equal(getattr(got, f), getattr(want, f)) for f in ("support_x", "support_y", "query_x", "query_y")
            )
        except Exception as exc:  # noqa: BLE001 - report any failure as "not yet"
            print(f"case {i + 1}: your function raised {type(exc).__name__}: {exc}")
            passed = False
        ok &= passed
        print(f"case {i + 1} ({n}-way {k}-shot): {'correct' if passed else 'not yet'}")
    return ok
