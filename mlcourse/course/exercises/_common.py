"""Shared grading helpers for the chapter exercise modules (``ch01`` ...)."""

from __future__ import annotations

from typing import Any

import torch


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float64).cpu()
    return torch.as_tensor(value, dtype=torch.float64)


def grade(name: str, answer: Any, reference: Any, *, atol: float = 1e-4, rtol: float = 1e-4) -> Any:
    """Compare ``answer`` with ``reference`` (numbers, tuples or tensors) and print the verdict.

    ``answer is None``: print the reference result and return it (the notebook then shows the solution's
    output). Otherwise return ``True``/``False``.
    """
    if answer is None:
        print(f"[{name}] no answer yet; the reference solution gives:\n{reference}")
        return reference
    try:
        got, want = _as_tensor(answer), _as_tensor(reference)
    except (TypeError, ValueError, RuntimeError) as exc:
        print(f"[{name}] could not read your answer as numbers ({exc}); expected something like {reference}")
        return False
    if got.shape != want.shape:
        print(f"[{name}] shape mismatch: your answer has shape {tuple(got.shape)}, expected {tuple(want.shape)}")
        return False
    if torch.allclose(got, want, atol=atol, rtol=rtol):
        print(f"[{name}] correct!")
        return True
    worst = (got - want).abs().max().item()
    print(f"[{name}] not quite: largest difference {worst:.4g}; expected\n{reference}\ngot\n{answer}")
    return False
