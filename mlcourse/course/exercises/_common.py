"""Shared helpers of the visible exercise checks: named properties that pass or fail with a hint.

A check never prints or returns an expected value: it says which property of the answer failed (its shape, a
sign, a limiting case, an invariance, a finite-difference test), so the hidden tests stay the real grade.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class Checks:
    """Collects the verdicts of one exercise's properties and prints one line per property."""

    def __init__(self, exercise: str) -> None:
        self.exercise = exercise
        self.ok = True

    def __call__(self, prop: str, passed: Any, hint: str) -> bool:
        """Record property ``prop``; on failure print ``hint`` (what to look at, never the expected value)."""
        passed = bool(passed)
        self.ok &= passed
        print(f"[{self.exercise}] {prop}: {'pass' if passed else 'FAIL'}" + ("" if passed else f" ({hint})"))
        return passed

    def run(self, answer: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``answer(*args, **kwargs)``, or ``None`` (the check fails, naming the exception) when it raises."""
        try:
            return answer(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any error in the student's code is reported, not raised
            self("your function runs", False, f"it raised {type(exc).__name__}: {exc}")
            return None


def missing(exercise: str, answer: Any) -> bool:
    """True (after saying so) when there is no answer to check yet."""
    if answer is None:
        print(f"[{exercise}] no answer yet: write the function `answer` in the cell above")
        return True
    return False


def as_float64(value: Any) -> torch.Tensor:
    """The answer as a float64 tensor, or an empty tensor when it cannot be read as numbers."""
    try:
        if isinstance(value, torch.Tensor):
            return value.detach().to(torch.float64).cpu()
        return torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return torch.empty(0, dtype=torch.float64)


def close(a: Any, b: Any, tol: float = 1e-9) -> bool:
    """Two numbers or tensors of the same shape agree to ``tol`` (relative to their size, at least 1)."""
    x, y = as_float64(a), as_float64(b)
    if x.shape != y.shape or x.numel() == 0:
        return False
    return bool(((x - y).abs() <= tol * torch.maximum(torch.ones_like(x), y.abs())).all())
