"""Chapter 02 (core concepts): inputs and visible checks of the exercises.

1. ``check_inner_step``: one inner-loop (fast adaptation) step for a linear model, by hand.
2. ``check_meta_gradient``: MAML's meta-gradient for quadratic task losses, with its second-order factor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import torch

from mlcourse.course.exercises._common import Checks, as_float64, missing


def inner_step_inputs() -> dict[str, Any]:
    """theta = (w, b) of ``y_hat = w * x + b``, a support set of K = 5 points and alpha."""
    x = torch.tensor([-2.0, -1.0, 0.0, 1.5, 3.0], dtype=torch.float64)
    y = 2.0 * x - 1.0
    return {"w": 0.5, "b": 0.0, "x": x, "y": y, "alpha": 0.1}


def check_inner_step(answer: Optional[Callable[..., Any]]) -> bool:
    """Properties of ``answer(w, b, x, y, alpha) -> (w_new, b_new)``: alpha = 0 and a perfect fit leave (w, b)
    unchanged, and ``(theta - theta_new) / alpha`` matches a finite-difference gradient of the MSE."""
    name = "inner step"
    if missing(name, answer):
        return False
    check, inputs = Checks(name), inner_step_inputs()
    got = as_float64(check.run(answer, **inputs)).reshape(-1)
    if not check("returns two numbers (w_new, b_new)", got.numel() == 2, "return a tuple (w_new, b_new)"):
        return False
    still = as_float64(check.run(answer, **{**inputs, "alpha": 0.0})).reshape(-1).tolist()
    check("alpha = 0 leaves (w, b) unchanged", still == [inputs["w"], inputs["b"]], "limiting case: no step")
    x = inputs["x"]
    fit = as_float64(check.run(answer, 0.5, -1.0, x, 0.5 * x - 1.0, 0.1)).reshape(-1).tolist()
    check("a perfect fit is not moved", fit == [0.5, -1.0], "the gradient of the loss is zero at its minimum")
    h, (w, b, y, alpha) = 1e-6, (inputs[k] for k in ("w", "b", "y", "alpha"))
    loss = lambda w_, b_: float(((w_ * x + b_ - y) ** 2).mean())
    fd = torch.tensor([(loss(w + h, b) - loss(w - h, b)) / (2 * h), (loss(w, b + h) - loss(w, b - h)) / (2 * h)])
    step = (torch.tensor([w, b], dtype=torch.float64) - got) / alpha
    check(
        "(theta - theta_new) / alpha matches a finite-difference gradient of the MSE",
        torch.allclose(step, fd.double(), atol=1e-5),
        "differentiate mean((w x + b - y)^2) with respect to w and to b; check the sign of the step",
    )
    return check.ok


def meta_gradient_inputs() -> dict[str, Any]:
    """Three 1-D tasks ``L_t(theta) = a_t / 2 * (theta - c_t)^2`` (curvature a_t, optimum c_t), theta, alpha."""
    return {
        "a": torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64),
        "c": torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64),
        "theta": 0.0,
        "alpha": 0.2,
    }


def check_meta_gradient(answer: Optional[Callable[..., Any]]) -> bool:
    """Properties of ``answer(a, c, theta, alpha) -> float``: at alpha = 0 it is the plain gradient of the mean
    loss, and it matches a finite-difference derivative of ``mean_t L_t(phi_t(theta))`` at other points."""
    name = "meta-gradient"
    if missing(name, answer):
        return False
    check, inputs = Checks(name), meta_gradient_inputs()
    a, c, alpha = inputs["a"], inputs["c"], inputs["alpha"]
    got = as_float64(check.run(answer, **inputs)).reshape(-1)
    if not check("returns one number", got.numel() == 1, "return a float"):
        return False
    plain = as_float64(check.run(answer, a, c, 0.7, 0.0)).reshape(-1)
    check(
        "alpha = 0 gives the gradient of mean_t L_t at theta",
        plain.numel() == 1 and abs(float(plain) - float((a * (0.7 - c)).mean())) < 1e-9,
        "limiting case: without an inner step MAML's meta-gradient is the ordinary one",
    )

    def objective(theta: float) -> float:  # mean_t L_t(phi_t), phi_t one inner step from theta
        phi = theta - alpha * a * (theta - c)
        return float((a / 2 * (phi - c) ** 2).mean())

    h, agree = 1e-5, True
    for theta in (0.0, -0.8, 1.3):
        fd = (objective(theta + h) - objective(theta - h)) / (2 * h)
        value = as_float64(check.run(answer, a, c, theta, alpha)).reshape(-1)
        agree &= value.numel() == 1 and abs(float(value) - fd) < 1e-6
    check(
        "matches a finite-difference derivative of the meta-objective at theta = 0, -0.8, 1.3",
        agree,
        "differentiate through the inner step: d phi_t / d theta = 1 - alpha a_t",
    )
    return check.ok


__all__ = ["inner_step_inputs", "check_inner_step", "meta_gradient_inputs", "check_meta_gradient"]
