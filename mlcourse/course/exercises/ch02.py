"""Chapter 02 (core concepts) exercises: reference solutions and checkers.

1. ``check_inner_step``: one inner-loop (fast adaptation) step for a linear model, by hand.
2. ``check_meta_gradient``: MAML's meta-gradient for quadratic task losses, with its second-order factor.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mlcourse.course.exercises._common import grade


# --- exercise 1 ------------------------------------------------------------------------------------
def inner_step_inputs() -> dict[str, Any]:
    """theta = (w, b) of ``y_hat = w * x + b``, a support set of K = 5 points and alpha."""
    x = torch.tensor([-2.0, -1.0, 0.0, 1.5, 3.0], dtype=torch.float64)
    y = 2.0 * x - 1.0
    return {"w": 0.5, "b": 0.0, "x": x, "y": y, "alpha": 0.1}


def inner_step(w: float, b: float, x: Tensor, y: Tensor, alpha: float) -> tuple[float, float]:
    """Reference: ``phi = theta - alpha * grad`` of the MSE ``mean((w x + b - y)^2)``."""
    r = w * x + b - y
    grad_w = float((2 * r * x).mean())
    grad_b = float((2 * r).mean())
    return w - alpha * grad_w, b - alpha * grad_b


def check_inner_step(answer: Any = None) -> Any:
    """``answer`` = ``(w_new, b_new)`` after one step on ``inner_step_inputs()``."""
    return grade("inner step", answer, inner_step(**inner_step_inputs()))


# --- exercise 2 ------------------------------------------------------------------------------------
def meta_gradient_inputs() -> dict[str, Any]:
    """Three 1-D tasks ``L_t(theta) = a_t / 2 * (theta - c_t)^2`` (curvature a_t, optimum c_t), theta, alpha."""
    return {
        "a": torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64),
        "c": torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64),
        "theta": 0.0,
        "alpha": 0.2,
    }


def meta_gradient(a: Tensor, c: Tensor, theta: float, alpha: float) -> float:
    """Reference: ``d/dtheta mean_t L_t(theta - alpha L_t'(theta))``.

    ``phi_t = theta - alpha a_t (theta - c_t)``, so ``d phi_t / d theta = 1 - alpha a_t`` (the second-order
    term) and the meta-gradient is ``mean_t a_t (phi_t - c_t) (1 - alpha a_t)``.
    """
    phi = theta - alpha * a * (theta - c)
    return float((a * (phi - c) * (1 - alpha * a)).mean())


def check_meta_gradient(answer: Any = None) -> Any:
    """``answer`` = the MAML meta-gradient (a float) for ``meta_gradient_inputs()``."""
    return grade("meta-gradient", answer, meta_gradient(**meta_gradient_inputs()))


__all__ = [
    "inner_step_inputs",
    "inner_step",
    "check_inner_step",
    "meta_gradient_inputs",
    "meta_gradient",
    "check_meta_gradient",
]
