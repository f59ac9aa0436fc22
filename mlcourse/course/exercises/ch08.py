"""Chapter 08 (scalability): reference solutions and checkers.

1. ``predict_maml_memory``: second-order MAML's graph memory is linear in the inner steps; predict it at
   ``K`` from the measurements at 1 and 2 steps (checked against the exact measurement).
2. ``loglog_slope``: the least-squares growth exponent of ``y ~ x^b`` (checked against ``scaling.fit_exponent``).
3. ``conv4_forward_flops``: the forward FLOPs of one image through Conv-4 (convolutions and the head),
   counted by hand; checked against ``torch.utils.flop_counter.FlopCounterMode``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Optional

import torch

from mlcourse.course import ch08_scaling as S
from mlcourse.models import Conv4

# --------------------------------------------------------------------------------------------------
# Exercise 1: MAML's memory with K inner steps
# --------------------------------------------------------------------------------------------------


def predict_maml_memory(bytes_k1: int, bytes_k2: int, k: int) -> float:
    """Reference: every inner step keeps one more copy of the same activations and gradients, so
    ``M(K) = M(1) + (K - 1) (M(2) - M(1))``."""
    return bytes_k1 + (k - 1) * (bytes_k2 - bytes_k1)


def check_predict_maml_memory(answer: Optional[Callable[[int, int, int], float]]) -> bool:
    """Grade ``answer(bytes_k1, bytes_k2, k)`` against the exact graph bytes at K = 5 and 8 (within 0.5%)."""
    m = {k: S.graph_memory("maml", replace(S.FAST_BASE, inner_steps=k))["held"] for k in (1, 2, 5, 8)}
    if answer is None:
        print(f"no answer yet. Measured (exact) graph bytes: K=1 {m[1]:,}, K=2 {m[2]:,}, K=5 {m[5]:,}, K=8 {m[8]:,}")
        return False
    ok = True
    for k in (5, 8):
        got = float(answer(m[1], m[2], k))
        passed = abs(got - m[k]) <= 0.005 * m[k]
        ok &= passed
        print(f"K={k}: measured {m[k]:,} bytes, yours {got:,.0f}: {'correct' if passed else 'not yet'}")
    return ok


# --------------------------------------------------------------------------------------------------
# Exercise 2: the log-log growth exponent
# --------------------------------------------------------------------------------------------------


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Reference: least squares on ``(log x, log y)``: ``b = cov(log x, log y) / var(log x)``."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


EX2_CASES = [
    ([1, 2, 4, 8], [3.0, 6.0, 12.0, 24.0]),
    ([2, 4, 8, 16], [1.0, 4.1, 15.8, 64.5]),
    ([1, 2, 5, 10, 20], [10.0, 10.5, 12.0, 15.0, 21.0]),
    ([8, 16, 32], [5.0, 5.0, 5.0]),
]


def check_loglog_slope(answer: Optional[Callable[[Sequence[float], Sequence[float]], float]]) -> bool:
    """Grade ``answer(xs, ys) -> slope`` on four data sets (to 1e-9)."""
    if answer is None:
        print("no answer yet. Reference slopes: " + ", ".join(f"{S.fit_exponent(x, y)[0]:.4f}" for x, y in EX2_CASES))
        return False
    ok = True
    for i, (xs, ys) in enumerate(EX2_CASES):
        want = S.fit_exponent(xs, ys)[0]
        got = float(answer(xs, ys))
        passed = abs(got - want) < 1e-9
        ok &= passed
        print(f"data set {i + 1}: expected {want:.4f}, got {got:.4f}: {'correct' if passed else 'not yet'}")
    return ok


# --------------------------------------------------------------------------------------------------
# Exercise 3: Conv-4 FLOPs by hand
# --------------------------------------------------------------------------------------------------


def conv4_forward_flops(hidden: int, image_size: int = 28, in_channels: int = 1, n_way: int = 5) -> int:
    """Reference: 2 FLOPs per multiply-add (FlopCounterMode's convention), convolutions and the linear head
    only. Block ``i`` sees an ``s x s`` map (``s`` halves after each block while ``s >= 2``, 3x3 kernels with
    padding 1 keep the size): ``2 * s^2 * c_in * c_out * 9``; the head ``2 * hidden * s_final^2 * n_way``."""
    flops, size, c_in = 0, image_size, in_channels
    for _ in range(4):
        flops += 2 * size * size * c_in * hidden * 9
        size, c_in = (size // 2 if size >= 2 else size), hidden
    return flops + 2 * hidden * size * size * n_way


def measured_conv4_flops(hidden: int, image_size: int = 28, in_channels: int = 1, n_way: int = 5) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    model = Conv4(in_channels=in_channels, n_out=n_way, hidden=hidden, image_size=image_size)
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, in_channels, image_size, image_size))
    return int(counter.get_total_flops())


EX3_CASES = [(8, 28, 1, 5), (64, 28, 1, 5), (64, 32, 3, 5), (32, 84, 3, 5)]


def check_conv4_forward_flops(answer: Optional[Callable[[int, int, int, int], int]]) -> bool:
    """Grade ``answer(hidden, image_size, in_channels, n_way) -> FLOPs`` against FlopCounterMode (exact)."""
    if answer is None:
        print(
            "no answer yet. FlopCounterMode counts (hidden, size, channels, ways) -> FLOPs per image: "
            + ", ".join(f"{c} -> {measured_conv4_flops(*c):,}" for c in EX3_CASES)
        )
        return False
    ok = True
    for c in EX3_CASES:
        want = measured_conv4_flops(*c)
        got = int(answer(*c))
        passed = got == want
        ok &= passed
        print(
            f"hidden={c[0]}, {c[2]}x{c[1]}x{c[1]}: expected {want:,}, got {got:,}: {'correct' if passed else 'not yet'}"
        )
    return ok
