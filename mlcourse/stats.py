"""Statistics of the few-shot protocol: mean accuracy over test tasks with its 95 % confidence interval.

The one formula of the package (``mlcourse eval``, every chapter's results tables, the exercises of
chapters 01 and 05 check a student's version against it).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


def confidence_interval(values: Any) -> tuple[float, float, float]:
    """``(mean, ci95, std)`` with ``ci95 = 1.96 * std / sqrt(n)`` (population std, as in the reference
    implementations of MAML and ProtoNets)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().double().cpu().numpy()
    array = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise ValueError("confidence_interval needs at least one value")
    std = float(array.std())
    return float(array.mean()), 1.96 * std / math.sqrt(array.size), std


def mean_ci(values: Any) -> tuple[float, float]:
    """Mean and 95 % confidence half-width ``1.96 * std / sqrt(n)``."""
    mean, ci95, _ = confidence_interval(values)
    return mean, ci95


__all__ = ["confidence_interval", "mean_ci"]
