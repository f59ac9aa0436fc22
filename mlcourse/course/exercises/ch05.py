"""Chapter 05 (the article's CIFAR-100 experiment, run properly): reference solutions and checkers.

1. ``confidence_interval``: mean and 95% confidence half-width of per-task accuracies, the few-shot
   protocol's ``1.96 * std / sqrt(n)``; checked against ``mlcourse.train.confidence_interval``.
2. ``distinct_superclasses``: for a batch of tasks, whether each task's classes come from different
   superclasses (what superclass-stratified sampling guarantees); checked on uniform and stratified batches.
3. ``inner_step``: the article's ``maml_update`` fixed: one differentiable SGD step on the support set,
   returning adapted parameters and leaving theta alone; checked by value and by meta-gradient against
   ``make_learner("maml")``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from mlcourse.algorithms import make_learner
from mlcourse.data import EpisodeSampler, ImageClassDataset
from mlcourse.data.tasks import TaskBatch
from mlcourse.models import Conv4
from mlcourse.train import confidence_interval as protocol

# --------------------------------------------------------------------------------------------------
# Exercise 1: a 95% confidence interval by hand
# --------------------------------------------------------------------------------------------------


def confidence_interval(accuracies: Any) -> tuple[float, float]:
    """Reference: ``(mean, 1.96 * std / sqrt(n))`` with the population standard deviation (as the MAML and
    ProtoNet reference code; with n >= 100 tasks the sample std differs by < 1%, which the checker accepts)."""
    a = torch.as_tensor(accuracies, dtype=torch.float64).reshape(-1)
    return float(a.mean()), 1.96 * float(a.std(unbiased=False)) / math.sqrt(a.numel())


def _exercise1_cases() -> list[Tensor]:
    """Per-task accuracies as the protocol produces them: 5-way, 15 queries per class -> multiples of 1/75."""
    g = torch.Generator().manual_seed(5)
    cases = []
    for n, p in ((600, 0.55), (100, 0.9), (2000, 0.35)):
        cases.append((torch.rand(n, 75, generator=g) < p).double().mean(1))
    return cases


def check_confidence_interval(answer: Optional[Callable[[Any], tuple[float, float]]]) -> bool:
    """Grade ``answer(accuracies) -> (mean, ci95)`` against ``mlcourse.train.confidence_interval``."""

    cases = _exercise1_cases()
    if answer is None:
        m, c, _ = protocol(cases[0].tolist())
        print(
            f"no answer yet. Reference for the first case ({cases[0].numel()} tasks): "
            f"{100 * m:.2f}% ± {100 * c:.2f}%  (mean ± 1.96·std/√n)"
        )
        return False
    ok = True
    for i, accs in enumerate(cases):
        m, c, _ = protocol(accs.tolist())
        got_m, got_c = (float(v) for v in answer(accs.clone()))
        passed = abs(got_m - m) < 1e-9 and abs(got_c - c) <= 1e-2 * c  # population or sample std
        ok &= passed
        print(
            f"case {i + 1} ({accs.numel()} tasks): {'correct' if passed else 'not yet'} "
            f"(expected {100 * m:.2f}% ± {100 * c:.2f}%, got {100 * got_m:.2f}% ± {100 * got_c:.2f}%)"
        )
    return ok


# --------------------------------------------------------------------------------------------------
# Exercise 2: checking stratified sampling
# --------------------------------------------------------------------------------------------------


def distinct_superclasses(classes: Tensor, superclass: Tensor) -> Tensor:
    """Reference: ``[T]`` bool, True where the ``N`` classes of task ``t`` have ``N`` different superclasses."""
    sup = superclass[classes]  # [T, N]
    same = sup.unsqueeze(2) == sup.unsqueeze(1)  # [T, N, N]
    return same.sum(dim=(1, 2)) == classes.shape[1]  # only the diagonal matches


def _exercise2_cases() -> list[tuple[str, Tensor, Tensor]]:
    """A 60-class data set in 12 superclasses of 5 (like FC100's training split); uniform and stratified
    5-way batches from ``EpisodeSampler``, plus hand-made edge cases."""

    superclass = torch.arange(12).repeat_interleave(5)
    images = torch.zeros(60, 2, 1, 2, 2, dtype=torch.uint8)
    data = ImageClassDataset(
        images=images, class_names=[f"c{i}" for i in range(60)], superclass=superclass, name="toy-60-classes"
    )
    cases = []
    for strat in (False, True):
        sampler = EpisodeSampler(data, 5, 1, 1, stratified=strat, seed=3)
        cases.append(
            (f"{'stratified' if strat else 'uniform'} sampler, 200 tasks", sampler.sample_classes(200), superclass)
        )
    edge = torch.tensor([[0, 5, 10, 15, 20], [0, 1, 10, 15, 20], [4, 9, 14, 19, 3], [55, 50, 45, 40, 59]])
    cases.append(("hand-made tasks", edge, superclass))
    return cases


def check_distinct_superclasses(answer: Optional[Callable[[Tensor, Tensor], Tensor]]) -> bool:
    """Grade ``answer(classes [T, N], superclass [C]) -> bool Tensor [T]``."""
    cases = _exercise2_cases()
    if answer is None:
        for name, classes, superclass in cases[:2]:
            ref = distinct_superclasses(classes, superclass)
            print(
                f"no answer yet. Reference, {name}: {int(ref.sum())} of {ref.numel()} tasks have 5 distinct superclasses"
            )
        return False
    ok = True
    for name, classes, superclass in cases:
        ref = distinct_superclasses(classes, superclass)
        got = torch.as_tensor(answer(classes.clone(), superclass.clone())).to(torch.bool).reshape(-1)
        passed = got.shape == ref.shape and bool(torch.equal(got, ref))
        ok &= passed
        print(
            f"{name}: {'correct' if passed else 'not yet'} ({int(ref.sum())}/{ref.numel()} tasks with distinct superclasses)"
        )
    return ok


# --------------------------------------------------------------------------------------------------
# Exercise 3: fix the article's maml_update
# --------------------------------------------------------------------------------------------------


def inner_step(model: nn.Module, params: dict[str, Tensor], x: Tensor, y: Tensor, alpha: float) -> dict[str, Tensor]:
    """Reference: ``phi = theta - alpha * grad L_support(theta)``, functional (theta is not modified) and
    differentiable (``create_graph=True``), so a query loss at ``phi`` back-propagates to theta."""
    loss = F.cross_entropy(functional_call(model, params, (x,)), y)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    return {name: p - alpha * g for (name, p), g in zip(params.items(), grads)}


def _exercise3_setup() -> tuple[nn.Module, Any, float]:

    torch.manual_seed(0)
    model = Conv4(in_channels=3, n_out=5, hidden=4, image_size=8).double()
    g = torch.Generator().manual_seed(1)
    batch = TaskBatch(
        support_x=torch.rand(1, 5, 3, 8, 8, generator=g, dtype=torch.float64),
        support_y=torch.arange(5).unsqueeze(0),
        query_x=torch.rand(1, 10, 3, 8, 8, generator=g, dtype=torch.float64),
        query_y=torch.arange(5).repeat_interleave(2).unsqueeze(0),
    )
    return model, batch, 0.3


def check_inner_step(answer: Optional[Callable[..., dict[str, Tensor]]]) -> bool:
    """Grade ``answer(model, params, x, y, alpha) -> dict`` (the fixed ``maml_update``): adapted values,
    theta untouched, and the meta-gradient through it equal to ``make_learner("maml")``'s."""

    model, batch, alpha = _exercise3_setup()
    params = dict(model.named_parameters())
    sx, sy, qx, qy = batch.support_x[0], batch.support_y[0], batch.query_x[0], batch.query_y[0]
    if answer is None:
        phi = inner_step(model, params, sx, sy, alpha)
        moved = sum(float((phi[k] - params[k]).detach().norm() ** 2) for k in params) ** 0.5
        print(
            f"no answer yet. Reference: {len(phi)} adapted tensors, ||phi - theta|| = {moved:.4f}, "
            f"query loss at phi = {float(F.cross_entropy(functional_call(model, phi, (qx,)), qy).detach()):.4f}"
        )
        return False
    before = {k: v.detach().clone() for k, v in params.items()}
    phi = answer(model, params, sx, sy, alpha)
    ok = True

    def report(name: str, passed: bool) -> None:
        nonlocal ok
        ok &= passed
        print(f"{name}: {'correct' if passed else 'not yet'}")

    if not isinstance(phi, dict) or set(phi) != set(params):
        report("returns a dict with one tensor per parameter name", False)
        return False
    ref = inner_step(model, {k: v.detach().requires_grad_() for k, v in before.items()}, sx, sy, alpha)
    report(
        "adapted values phi = theta - alpha * grad",
        all(torch.allclose(phi[k].detach(), ref[k].detach(), atol=1e-10) for k in params),
    )
    report("theta is not modified in place", all(torch.equal(params[k].detach(), before[k]) for k in params))
    differentiable = all(v.requires_grad for v in phi.values())
    report("phi is differentiable in theta (create_graph=True)", differentiable)
    if not differentiable:
        return False
    model.zero_grad(set_to_none=True)
    query = F.cross_entropy(functional_call(model, phi, (qx,)), qy)
    mine = torch.autograd.grad(query, list(params.values()), allow_unused=True)
    mine = torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params.values(), mine)])
    make_learner("maml", model, inner_lr=alpha, inner_steps=1)(batch).loss.backward()
    theirs = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    model.zero_grad(set_to_none=True)
    rel = float((mine - theirs).norm() / theirs.norm())
    report(f"meta-gradient == make_learner('maml') (relative error {rel:.1e} < 1e-8)", rel < 1e-8)
    return ok


__all__ = [
    "confidence_interval",
    "check_confidence_interval",
    "distinct_superclasses",
    "check_distinct_superclasses",
    "inner_step",
    "check_inner_step",
]
