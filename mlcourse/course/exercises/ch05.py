"""Chapter 05 (the article's CIFAR-100 experiment, run properly): inputs and visible checks of the exercises.

1. ``check_distinct_superclasses``: whether each task's classes come from different superclasses (what
   superclass-stratified sampling guarantees).
2. ``check_inner_step``: the article's ``maml_update`` fixed: one differentiable SGD step on the support set, returning
   adapted parameters and leaving theta alone; its meta-gradient is compared with ``make_learner("maml")``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from mlcourse.algorithms import make_learner
from mlcourse.course.exercises._common import Checks, missing
from mlcourse.data import EpisodeSampler, ImageClassDataset
from mlcourse.data.tasks import TaskBatch
from mlcourse.models import Conv4


def sampler_batches() -> dict[str, Tensor]:
    """A 60-class data set in 12 superclasses of 5 (FC100's training structure): its ``superclass`` table and 200
    5-way tasks' classes from ``EpisodeSampler``, uniform and stratified."""
    superclass = torch.arange(12).repeat_interleave(5)
    images = torch.zeros(60, 2, 1, 2, 2, dtype=torch.uint8)
    data = ImageClassDataset(
        images=images, class_names=[f"c{i}" for i in range(60)], superclass=superclass, name="toy-60-classes"
    )
    batches = {"superclass": superclass}
    for strat in (False, True):
        sampler = EpisodeSampler(data, 5, 1, 1, stratified=strat, seed=3)
        batches["stratified" if strat else "uniform"] = sampler.sample_classes(200)
    return batches


def check_distinct_superclasses(answer: Optional[Callable[[Tensor, Tensor], Tensor]]) -> bool:
    """Properties of ``answer(classes [T, N], superclass [C]) -> bool [T]``: shape, hand-made tasks with known
    verdicts, every stratified task passes, and reordering a task's classes changes nothing."""
    name = "distinct superclasses"
    if missing(name, answer):
        return False
    check, b = Checks(name), sampler_batches()
    sup = b["superclass"]
    uniform = check.run(answer, b["uniform"].clone(), sup.clone())
    uniform = torch.as_tensor(uniform).reshape(-1) if uniform is not None else torch.empty(0)
    if not check("one True/False per task", uniform.shape == (200,), "a [T] boolean tensor"):
        return False
    hand = torch.tensor([[0, 5, 10, 15, 20], [0, 1, 2, 3, 4], [0, 1, 10, 15, 20], [59, 50, 45, 40, 3]])
    verdicts = torch.as_tensor(check.run(answer, hand, sup)).reshape(-1).bool().tolist()
    check("hand-made tasks: all distinct -> True", verdicts[0] and verdicts[3], "5 different superclasses")
    check("hand-made tasks: a repeated superclass -> False", not verdicts[1] and not verdicts[2], "compare all pairs")
    strat = torch.as_tensor(check.run(answer, b["stratified"].clone(), sup.clone())).reshape(-1).bool()
    check("every stratified task passes", bool(strat.all()), "a stratified sampler draws one class per superclass")
    flipped = torch.as_tensor(check.run(answer, b["uniform"].flip(1), sup.clone())).reshape(-1).bool()
    check("reordering a task's classes changes nothing", torch.equal(flipped, uniform.bool()), "a set property")
    return check.ok


def inner_step_setup() -> tuple[nn.Module, TaskBatch, float]:
    """A small Conv-4 (float64), one 5-way task of 8x8 colour images, and alpha."""
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
    """Properties of ``answer(model, params, x, y, alpha) -> dict``: same keys, theta untouched, differentiable in
    theta, alpha = 0 returns theta's values, a small step lowers the support loss, and the meta-gradient through it
    equals ``make_learner("maml")``'s (relative error < 1e-8)."""
    name = "inner step"
    if missing(name, answer):
        return False
    check, (model, batch, alpha) = Checks(name), inner_step_setup()
    params = dict(model.named_parameters())
    sx, sy, qx, qy = batch.support_x[0], batch.support_y[0], batch.query_x[0], batch.query_y[0]
    before = {k: v.detach().clone() for k, v in params.items()}
    phi = check.run(answer, model, params, sx, sy, alpha)
    if not check(
        "a dict with one tensor per parameter name", isinstance(phi, dict) and set(phi) == set(params), "{name: tensor}"
    ):
        return False
    check("theta is not modified in place", all(torch.equal(params[k].detach(), before[k]) for k in params), "no .data")
    differentiable = all(isinstance(v, Tensor) and v.grad_fn is not None for v in phi.values())
    if not check("phi is differentiable in theta", differentiable, "create_graph=True, and no .detach()"):
        return False
    same = check.run(answer, model, params, sx, sy, 0.0) or {}
    check(
        "alpha = 0 returns theta's values",
        all(torch.equal(same.get(k, v + 1).detach(), v) for k, v in before.items()),
        "limiting case: no step",
    )
    support_loss = lambda p: float(F.cross_entropy(functional_call(model, p, (sx,)), sy).detach())
    small = check.run(answer, model, params, sx, sy, 1e-3) or params
    check(
        "a small step lowers the support loss", support_loss(small) < support_loss(params), "step against the gradient"
    )
    query = F.cross_entropy(functional_call(model, phi, (qx,)), qy)
    mine = torch.autograd.grad(query, list(params.values()), allow_unused=True)
    mine = torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params.values(), mine)])
    model.zero_grad(set_to_none=True)
    make_learner("maml", model, inner_lr=alpha, inner_steps=1)(batch).loss.backward()
    theirs = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    model.zero_grad(set_to_none=True)
    check(
        "the meta-gradient through phi equals make_learner('maml')'s",
        float((mine - theirs).norm() / theirs.norm()) < 1e-8,
        "the support cross-entropy, one step of size alpha",
    )
    return check.ok


__all__ = ["sampler_batches", "check_distinct_superclasses", "inner_step_setup", "check_inner_step"]
