"""Chapter 08 (scalability): inputs and visible checks of the exercises.

1. ``check_predict_maml_memory``: second-order MAML's graph memory at any ``K`` from the measurements at 1 and 2 steps.
2. ``check_loglog_slope``: the least-squares growth exponent of ``y ~ x^b``.
3. ``check_conv4_forward_flops``: the forward FLOPs of one image through Conv-4, counted by hand; compared with
   ``torch.utils.flop_counter.FlopCounterMode``.
4. ``check_predict_run_time``: the time of a training run at a larger meta-batch, from per-iteration times measured at
   small ones (medians, then a least-squares line).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Optional

import torch
from torch.utils.flop_counter import FlopCounterMode

from mlcourse.course.exercises._common import Checks, as_float64, missing
from mlcourse.models import Conv4


def _number(value: Any) -> float:
    """The answer as a float, NaN when it is not one number."""
    t = as_float64(value).reshape(-1)
    return float(t[0]) if t.numel() == 1 else math.nan


def check_predict_maml_memory(answer: Optional[Callable[[int, int, int], float]]) -> bool:
    """Properties of ``answer(bytes_k1, bytes_k2, k) -> bytes``: it reproduces both measurements, is linear in ``k``,
    and is constant when the two measurements agree."""
    name = "MAML memory"
    if missing(name, answer):
        return False
    check = Checks(name)
    m1, m2 = 1_000_000, 1_300_000
    at = {k: _number(check.run(answer, m1, m2, k)) for k in (1, 2, 3, 4, 7)}
    if not check("returns one number", not any(math.isnan(v) for v in at.values()), "return the bytes"):
        return False
    check("k = 1 and k = 2 give the two measurements", at[1] == m1 and at[2] == m2, "interpolate between them")
    steps = [at[k + 1] - at[k] for k in (1, 2, 3)]
    check("every extra inner step adds the same bytes", max(steps) - min(steps) < 1e-6, "a straight line in k")
    check(
        "equal measurements predict the same bytes at k = 7", _number(check.run(answer, m1, m1, 7)) == m1, "no growth"
    )
    return check.ok


def check_loglog_slope(answer: Optional[Callable[[Sequence[float], Sequence[float]], float]]) -> bool:
    """Properties of ``answer(xs, ys) -> slope``: the exponent of an exact power law, unchanged by scaling y or
    reordering the points, 0 for constant data, and pulled by the middle points, not only the endpoints."""
    name = "log-log slope"
    if missing(name, answer):
        return False
    check = Checks(name)
    xs = [1.0, 2.0, 5.0, 10.0, 20.0]
    exact = _number(check.run(answer, xs, [3.0 * x**1.5 for x in xs]))
    if not check("returns one number", not math.isnan(exact), "return a float"):
        return False
    check("recovers the exponent 1.5 of y = 3 x^1.5", abs(exact - 1.5) < 1e-9, "fit log y against log x")
    ys = [10.0, 10.5, 12.0, 15.0, 21.0]
    base = _number(check.run(answer, xs, ys))
    scaled = _number(check.run(answer, xs, [7 * y for y in ys]))
    check("scaling y by 7 changes nothing", abs(scaled - base) < 1e-9, "a factor only moves the intercept a")
    reordered = _number(check.run(answer, xs[::-1], ys[::-1]))
    check("reordering the points changes nothing", abs(reordered - base) < 1e-9, "a fit over all points, not a path")
    check("constant data: slope 0", abs(_number(check.run(answer, xs, [5.0] * 5))) < 1e-9, "limiting case")
    bumped = ys[:2] + [ys[2] * 3] + ys[3:]
    check(
        "a middle point moves the slope", abs(_number(check.run(answer, xs, bumped)) - base) > 1e-3, "all points count"
    )
    return check.ok


FLOP_SHAPES = [(8, 28, 1, 5), (64, 28, 1, 5), (64, 32, 3, 5), (32, 84, 3, 5)]


def check_conv4_forward_flops(answer: Optional[Callable[[int, int, int, int], int]]) -> bool:
    """Properties of ``answer(hidden, image_size, in_channels, n_way) -> FLOPs``: an integer, and equal to what
    ``FlopCounterMode`` counts for one image on four shapes (pass or fail per shape)."""
    name = "Conv-4 FLOPs"
    if missing(name, answer):
        return False
    check = Checks(name)
    for hidden, size, channels, n_way in FLOP_SHAPES:
        model = Conv4(in_channels=channels, n_out=n_way, hidden=hidden, image_size=size)
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, channels, size, size))
        got = check.run(answer, hidden, size, channels, n_way)
        check(
            f"hidden={hidden}, {channels}x{size}x{size}, {n_way}-way: equals FlopCounterMode's count",
            isinstance(got, int) and got == counter.get_total_flops(),
            "an int; 2 FLOPs per multiply-add; max-pooling halves the side while it is >= 2",
        )
    return check.ok


def check_predict_run_time(answer: Optional[Callable[[dict[int, list[float]], int, int], float]]) -> bool:
    """Properties of ``answer(times, tasks, iterations) -> seconds`` (``times``: meta-batch size -> repeated
    per-iteration seconds): exact for noise-free linear data, robust to one disturbed repeat, linear in
    ``iterations``."""
    name = "run time"
    if missing(name, answer):
        return False
    check = Checks(name)
    overhead, per_task = 0.004, 0.0025  # made-up data: t(T) = overhead + per_task * T, known by construction
    clean = {t: [overhead + per_task * t] * 3 for t in (1, 2, 4)}
    got = _number(check.run(answer, clean, 16, 100))
    if not check("returns one number", not math.isnan(got), "return the seconds"):
        return False
    check(
        "noise-free linear data: exact", abs(got - 100 * (overhead + per_task * 16)) < 1e-9, "overhead + cost per task"
    )
    spiked = {t: list(v) for t, v in clean.items()}
    spiked[2][1] *= 10  # another process stole the CPU during one repeat
    check(
        "one disturbed repeat changes nothing", abs(_number(check.run(answer, spiked, 16, 100)) - got) < 1e-9, "median"
    )
    twice = _number(check.run(answer, clean, 16, 200))
    check("twice the iterations, twice the time", abs(twice - 2 * got) < 1e-9, "iterations x seconds per iteration")
    return check.ok


__all__ = [
    "check_predict_maml_memory",
    "check_loglog_slope",
    "FLOP_SHAPES",
    "check_conv4_forward_flops",
    "check_predict_run_time",
]
