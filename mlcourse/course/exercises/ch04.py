"""Chapter 04 (the bilevel objective): reference solutions and checkers.

1. ``two_step_meta_gradient``: the exact meta-gradient after two inner steps, written with gradients and
   Hessian-vector products only; checked against autograd through the unrolled loop.
2. ``first_order_error_quadratic``: the closed-form relative error of first-order MAML for a 1-D
   quadratic; checked against the measured error.
3. ``joint_training_loss``: the article's rule written honestly, as a joint-training loss whose gradient
   is the article's update; checked against ``make_learner("article")``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad

from mlcourse.algorithms import make_learner
from mlcourse.course import ch04_bilevel as B
from mlcourse.data.sinusoid import SinusoidTasks
from mlcourse.models import SinusoidMLP

# --------------------------------------------------------------------------------------------------
# Exercise 1: the two-step meta-gradient by hand
# --------------------------------------------------------------------------------------------------


def two_step_meta_gradient(task: B.BilevelTask, theta: Tensor, alpha: float) -> Tensor:
    """Reference: ``(I - alpha H_0)(I - alpha H_1) grad L^val(phi_2)`` with ``H_k = nabla^2 L^tr(phi_k)``,
    applied right to left with Hessian-vector products."""
    g = grad(task.support_loss)
    phi0 = theta
    phi1 = phi0 - alpha * g(phi0)
    phi2 = phi1 - alpha * g(phi1)
    v = grad(task.query_loss)(phi2)
    v = v - alpha * B.hvp(task.support_loss, phi1, v)  # (I - alpha H_1) v
    v = v - alpha * B.hvp(task.support_loss, phi0, v)  # (I - alpha H_0) (...)
    return v


def _exercise1_cases() -> list[tuple[B.BilevelTask, Tensor, float]]:
    """The toy quadratics and a non-quadratic task (a small tanh network on a sinusoid), float64."""
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
    """Grade ``answer(task, theta, alpha) -> Tensor`` against autograd through two inner steps."""
    cases = _exercise1_cases()
    if answer is None:
        task, theta, alpha = cases[0]
        ref = two_step_meta_gradient(task, theta, alpha)
        print(
            f"no answer yet. Reference, toy task 1 at theta={tuple(theta.tolist())}, alpha={alpha}: "
            f"meta-gradient = {[round(v, 4) for v in ref.tolist()]}"
        )
        return False
    ok = True
    for i, (task, theta, alpha) in enumerate(cases):
        expected = B.meta_gradient_autograd(task, theta, alpha, steps=2)
        got = answer(task, theta, alpha)
        err = B.relative_error(torch.as_tensor(got, dtype=expected.dtype).reshape(expected.shape), expected)
        passed = err < 1e-8
        ok &= passed
        print(f"case {i + 1}: {'correct' if passed else 'not yet'} (relative error vs autograd < 1e-8: {passed})")
    return ok


# --------------------------------------------------------------------------------------------------
# Exercise 2: the first-order error of a quadratic in closed form
# --------------------------------------------------------------------------------------------------


def first_order_error_quadratic(curvature: float, alpha: float, steps: int) -> float:
    """Reference: for ``L^tr = 1/2 a (t - c)^2`` and ``L^val = 1/2 a (t - d)^2`` the exact meta-gradient is
    ``(1 - alpha a)^K`` times the first-order one, so ``|exact - fo| / |exact| = |1 - (1 - alpha a)^K| /
    |1 - alpha a|^K`` (about ``K alpha a`` for small ``alpha``)."""
    m = (1.0 - alpha * curvature) ** steps
    return abs(1.0 - m) / abs(m)


def _measured_first_order_error(curvature: float, alpha: float, steps: int) -> float:
    a = torch.tensor([[curvature]], dtype=torch.float64)
    task = B.BilevelTask(
        B.quadratic_loss(torch.tensor([1.0], dtype=torch.float64), a),
        B.quadratic_loss(torch.tensor([1.7], dtype=torch.float64), a),
    )
    return float(B.first_order_relative_error([task], torch.tensor([-2.0], dtype=torch.float64), [alpha], steps)[0])


EXERCISE2_CASES = [(2.0, 0.01, 1), (2.0, 0.1, 1), (2.0, 0.1, 3), (0.5, 0.3, 5), (4.0, 0.2, 2)]


def check_first_order_error_quadratic(answer: Optional[Callable[[float, float, int], float]]) -> bool:
    """Grade ``answer(curvature, alpha, steps) -> float`` against the error measured with ``mlcourse.course.ch04_bilevel``."""
    if answer is None:
        print(
            "no answer yet. Measured errors (curvature, alpha, steps) -> error: "
            + ", ".join(f"{c} -> {_measured_first_order_error(*c):.4f}" for c in EXERCISE2_CASES)
        )
        return False
    ok = True
    for case in EXERCISE2_CASES:
        measured = _measured_first_order_error(*case)
        passed = abs(float(answer(*case)) - measured) <= 1e-6 * max(1.0, abs(measured))
        ok &= passed
        print(f"curvature={case[0]}, alpha={case[1]}, steps={case[2]}: {'correct' if passed else 'not yet'}")
    return ok


# --------------------------------------------------------------------------------------------------
# Exercise 3: the article's rule, honestly, as joint training
# --------------------------------------------------------------------------------------------------


def joint_training_loss(model: nn.Module, batch) -> Tensor:
    """Reference: the mean over tasks of the support MSE at theta; its gradient is the article's update
    (``(1/N) sum_i grad L_{T_i}(theta)``). No inner loop: the article's ``theta_i`` never matter."""
    params = dict(model.named_parameters())
    return torch.stack(
        [
            B.mse(functional_call(model, params, (batch.support_x[i],)), batch.support_y[i])
            for i in range(batch.num_tasks)
        ]
    ).mean()


def _article_gradient(model: nn.Module, batch) -> Tensor:

    learner = make_learner("article", model, inner_lr=0.01, inner_steps=1)
    model.zero_grad(set_to_none=True)
    learner(batch).loss.backward()
    g = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    model.zero_grad(set_to_none=True)
    return g


def check_joint_training_loss(answer: Optional[Callable[[nn.Module, object], Tensor]]) -> bool:
    """Grade ``answer(model, batch) -> scalar loss``: its gradient must equal ``make_learner("article")``'s."""

    torch.manual_seed(0)
    model = SinusoidMLP().double()
    batch = SinusoidTasks().sample(6, 10, 10, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    expected = _article_gradient(model, batch)
    if answer is None:
        print(f"no answer yet. The article's update on this batch has norm {expected.norm():.4f}")
        return False
    model.zero_grad(set_to_none=True)
    answer(model, batch).backward()
    got = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in model.parameters()])
    passed = B.relative_error(got, expected) < 1e-8
    print(f"gradient equals the article's update (make_learner('article')): {'correct' if passed else 'not yet'}")
    return passed
