"""Chapter 04 (the bilevel objective): inputs and visible checks of the exercises.

1. ``check_two_step_meta_gradient``: the exact meta-gradient after two inner steps, from gradients and
   Hessian-vector products only; compared with autograd through the unrolled loop.
2. ``check_first_order_error_quadratic``: the closed-form relative error of first-order MAML for a 1-D quadratic.
3. ``check_joint_training_loss``: the article's rule written honestly, as a joint-training loss whose gradient is the
   article's update; compared with ``make_learner("article")``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Optional

import torch
from torch import Tensor, nn
from torch.func import grad

from mlcourse.algorithms import make_learner
from mlcourse.course.ch04 import bilevel as B
from mlcourse.course.exercises._common import Checks, as_float64, close, missing
from mlcourse.data.sinusoid import SinusoidTasks
from mlcourse.models import SinusoidMLP


def exercise1_cases() -> list[tuple[B.BilevelTask, Tensor, float]]:
    """(task, theta, alpha): the toy quadratics and a non-quadratic task (a small tanh network on a sinusoid)."""
    theta = torch.tensor(B.TOY_THETA0, dtype=torch.float64)
    cases = [(task, theta, 0.3) for task in B.toy_tasks()]
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(3, 8, dtype=torch.float64, generator=gen)
    xs, xq = torch.linspace(-3, 3, 10, dtype=torch.float64), torch.linspace(-2.5, 2.5, 7, dtype=torch.float64)

    def net(p: Tensor, x: Tensor) -> Tensor:
        a, b, c = p.reshape(3, 8)
        return torch.tanh(x[:, None] * a + b) @ c

    def loss(x: Tensor) -> Callable[[Tensor], Tensor]:
        return lambda p: B.mse(net(p, x), torch.sin(x))

    cases.append((B.BilevelTask(loss(xs), loss(xq)), w.reshape(-1) * 0.5, 0.05))
    return cases


def check_two_step_meta_gradient(answer: Optional[Callable[[B.BilevelTask, Tensor, float], Tensor]]) -> bool:
    """Properties of ``answer(task, theta, alpha) -> Tensor``: shape, alpha = 0 gives the query gradient, and the
    value agrees with autograd through two unrolled inner steps on each case (relative error < 1e-8)."""
    name = "two-step meta-gradient"
    if missing(name, answer):
        return False
    check, cases = Checks(name), exercise1_cases()
    task, theta, _ = cases[-1]
    out = as_float64(check.run(answer, task, theta, 0.05))
    if not check("same shape as theta", out.shape == theta.shape, "one entry per parameter"):
        return False
    at_zero = as_float64(check.run(answer, task, theta, 0.0))
    query_grad = grad(task.query_loss)(theta)
    check(
        "alpha = 0 gives the query loss's gradient at theta",
        at_zero.shape == theta.shape and B.relative_error(at_zero, query_grad) < 1e-10,
        "limiting case: no inner steps",
    )
    for i, (task, theta, alpha) in enumerate(cases):
        got = as_float64(check.run(answer, task, theta, alpha))
        unrolled = B.meta_gradient_autograd(task, theta, alpha, steps=2)
        check(
            f"case {i + 1} ({'quadratic' if i < len(cases) - 1 else 'tanh network'}) agrees with autograd",
            got.shape == theta.shape and B.relative_error(got, unrolled) < 1e-8,
            "H_1 at phi_1 applied first, then H_0 at theta; both Hessians equal only for quadratics",
        )
    return check.ok


def check_first_order_error_quadratic(answer: Optional[Callable[[float, float, int], float]]) -> bool:
    """Properties of ``answer(curvature, alpha, steps) -> float``: zero at alpha = 0, about ``K alpha a`` for a small
    step, growing with the number of steps while ``alpha a < 1``."""
    name = "first-order error"
    if missing(name, answer):
        return False
    check = Checks(name)
    value = as_float64(check.run(answer, 2.0, 0.1, 3)).reshape(-1)
    if not check("returns one number", value.numel() == 1, "return a float"):
        return False
    check("alpha = 0: no error", abs(float(as_float64(check.run(answer, 2.0, 0.0, 3)).sum())) < 1e-12, "limiting case")
    small = [float(as_float64(check.run(answer, a, 1e-5, k)).sum()) for a, k in ((2.0, 1), (0.5, 4))]
    check(
        "a tiny step gives an error of about K * alpha * a",
        abs(small[0] / 2e-5 - 1) < 1e-3 and abs(small[1] / 2e-5 - 1) < 1e-3,
        "expand (1 - alpha a)^K for small alpha",
    )
    grows = [float(as_float64(check.run(answer, 1.0, 0.2, k)).sum()) for k in (1, 2, 4)]
    check("the error grows with the steps (alpha a < 1)", grows[0] < grows[1] < grows[2], "every step adds a factor")
    at_pole = check.run(answer, 2.0, 0.5, 3)  # alpha = 1/a (None, and a failed check, when it raises)
    check(
        "alpha = 1/a returns infinity without raising",
        at_pole is not None and math.isinf(float(as_float64(at_pole).sum())),
        "the exact meta-gradient vanishes there: return math.inf instead of dividing by zero",
    )
    return check.ok


def check_joint_training_loss(answer: Optional[Callable[[nn.Module, object], Tensor]]) -> bool:
    """Properties of ``answer(model, batch) -> scalar``: it ignores the query sets, and its gradient is
    ``make_learner("article")``'s update on a sinusoid batch (relative error < 1e-8)."""
    name = "joint-training loss"
    if missing(name, answer):
        return False
    check = Checks(name)
    torch.manual_seed(0)
    model = SinusoidMLP().double()
    batch = SinusoidTasks().sample(6, 10, 10, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    loss = check.run(answer, model, batch)
    if not check("returns a scalar tensor", isinstance(loss, Tensor) and loss.numel() == 1, "a 0-d tensor"):
        return False
    noisy = type(batch)(
        batch.support_x, batch.support_y, torch.randn_like(batch.query_x), torch.randn_like(batch.query_y)
    )
    other = check.run(answer, model, noisy)
    check("the query sets do not matter", close(other, loss, 1e-12), "the article never uses them")
    model.zero_grad(set_to_none=True)
    make_learner("article", model, inner_lr=0.01, inner_steps=1)(batch).loss.backward()
    article = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    model.zero_grad(set_to_none=True)
    check.run(lambda: answer(model, batch).backward())
    got = torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1) for p in model.parameters()])
    model.zero_grad(set_to_none=True)
    check(
        "its gradient is the article's update",
        B.relative_error(got, article) < 1e-8,
        "the mean over tasks of the support MSE at theta; no inner step",
    )
    return check.ok


__all__ = [
    "exercise1_cases",
    "check_two_step_meta_gradient",
    "check_first_order_error_quadratic",
    "check_joint_training_loss",
]
