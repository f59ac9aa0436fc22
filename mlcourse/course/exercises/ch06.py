"""Chapter 06 (applications): reference solutions and checkers.

1. ``pixel_prototypes``: the no-learning few-shot baseline, nearest class mean in pixel space; checked
   against ``mlcourse.course.ch06_applications.pixel_prototype_predictions``.
2. ``advantages``: reward-to-go minus the leave-one-out baseline (the unbiased advantage of chapter 06's
   policy gradient); checked against ``mlcourse.course.ch06_rl.advantages(normalise=False)``.
3. ``gaussian_policy_gradient``: the exact gradient of ``E[-|a - g|^2]`` for ``a ~ N(mu, diag(sigma^2))``
   with respect to ``mu`` and ``log sigma``; checked against autograd of the closed form, and compared with
   a REINFORCE estimate from samples (the estimator of ``mlcourse.course.ch06_rl`` is unbiased for it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import torch
from torch import Tensor

from mlcourse.course import ch06_applications as A
from mlcourse.course import ch06_rl as rl

# --------------------------------------------------------------------------------------------------
# Exercise 1: nearest class mean in pixel space


def pixel_prototypes(support_x: Tensor, support_y: Tensor, query_x: Tensor, n_way: int) -> Tensor:
    """Reference: class means of the flattened support images, each query -> the nearest mean (Euclidean)."""
    s, q = support_x.flatten(1), query_x.flatten(1)
    protos = torch.stack([s[support_y == c].mean(0) for c in range(n_way)])
    return ((q[:, None] - protos[None]) ** 2).sum(-1).argmin(-1)


def _ex1_cases() -> list[tuple[Tensor, Tensor, Tensor, int]]:
    g = torch.Generator().manual_seed(0)
    cases = []
    for n_way, k in ((5, 1), (5, 5), (3, 2)):
        centres = torch.rand(n_way, 1, 8, 8, generator=g)
        sy = torch.arange(n_way).repeat_interleave(k)
        sx = centres[sy] + 0.4 * torch.randn(n_way * k, 1, 8, 8, generator=g)
        qy = torch.arange(n_way).repeat_interleave(4)
        qx = centres[qy] + 0.4 * torch.randn(n_way * 4, 1, 8, 8, generator=g)
        cases.append((sx, sy, qx, n_way))
    return cases


def check_pixel_prototypes(answer: Optional[Callable[[Tensor, Tensor, Tensor, int], Tensor]]) -> bool:
    """Grade ``answer(support_x, support_y, query_x, n_way) -> predicted labels [Q]`` on three tasks."""
    cases = _ex1_cases()
    if answer is None:
        sx, sy, qx, n = cases[0]
        print(
            f"no answer yet. Reference predictions on task 1 (5-way 1-shot, 20 queries): "
            f"{pixel_prototypes(sx, sy, qx, n).tolist()}"
        )
        return False
    ok = True
    for i, (sx, sy, qx, n) in enumerate(cases):
        want = A.pixel_prototype_predictions(sx, sy, qx, n)
        got = torch.as_tensor(answer(sx, sy, qx, n)).reshape(-1).long()
        passed = got.shape == want.shape and bool(torch.equal(got, want))
        ok &= passed
        print(f"task {i + 1} ({n}-way): {'correct' if passed else 'not yet'}")
    return ok


# --------------------------------------------------------------------------------------------------
# Exercise 2: advantages with a leave-one-out baseline


def advantages(rewards: Tensor, gamma: float) -> Tensor:
    """Reference: ``rewards [N, H]`` (N trajectories of one task) -> ``A[n, t] = R[n, t] - mean_{m != n} R[m, t]``
    with ``R[n, t] = sum_{k >= t} gamma^(k - t) r[n, k]``."""
    n, h = rewards.shape
    discounts = gamma ** (torch.arange(h, dtype=rewards.dtype)[None, :] - torch.arange(h, dtype=rewards.dtype)[:, None])
    ret = rewards @ torch.triu(discounts).T  # R[n, t] = sum_k r[n, k] gamma^(k - t) [k >= t]
    baseline = (ret.sum(0, keepdim=True) - ret) / (n - 1)
    return ret - baseline


def check_advantages(answer: Optional[Callable[[Tensor, float], Tensor]]) -> bool:
    """Grade ``answer(rewards [N, H], gamma) -> advantages [N, H]`` against ``mlcourse.course.ch06_rl``."""
    g = torch.Generator().manual_seed(1)
    cases = [
        (torch.randn(5, 7, generator=g, dtype=torch.float64), 0.9),
        (-torch.rand(3, 4, generator=g, dtype=torch.float64), 1.0),
        (torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64), 0.5),
    ]
    if answer is None:
        r, gam = cases[2]
        print(f"no answer yet. Reference for rewards {r.tolist()}, gamma={gam}: {advantages(r, gam).tolist()}")
        return False
    ok = True
    for i, (r, gam) in enumerate(cases):
        want = rl.advantages(r, gam, normalise=False)
        got = torch.as_tensor(answer(r, gam), dtype=torch.float64)
        passed = got.shape == want.shape and torch.allclose(got, want, atol=1e-9)
        ok &= passed
        print(f"case {i + 1}: {'correct' if passed else 'not yet'}")
    return ok


# --------------------------------------------------------------------------------------------------
# Exercise 3: a policy gradient you can compute by hand


def gaussian_policy_gradient(mu: Tensor, log_std: Tensor, goal: Tensor) -> tuple[Tensor, Tensor]:
    """Reference: ``J = E[-|a - g|^2] = -|mu - g|^2 - sum exp(2 log_std)``, so
    ``dJ/dmu = -2 (mu - g)`` and ``dJ/dlog_std = -2 exp(2 log_std)``."""
    return -2 * (mu - goal), -2 * torch.exp(2 * log_std)


def reinforce_estimate(
    mu: Tensor, log_std: Tensor, goal: Tensor, samples: int = 100_000, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """The score-function (REINFORCE) estimate of the same gradient, with a leave-one-out baseline."""
    g = torch.Generator().manual_seed(seed)
    std = log_std.exp()
    eps = torch.randn(samples, mu.numel(), generator=g, dtype=mu.dtype)
    a = mu + std * eps
    r = -((a - goal) ** 2).sum(-1, keepdim=True)
    adv = r - (r.sum() - r) / (samples - 1)
    score_mu = eps / std  # d log N(a; mu, std) / d mu
    score_log_std = eps**2 - 1  # d log N(a; mu, std) / d log std
    return (adv * score_mu).mean(0), (adv * score_log_std).mean(0)


def check_gaussian_policy_gradient(answer: Optional[Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]]) -> bool:
    """Grade ``answer(mu, log_std, goal) -> (dJ/dmu, dJ/dlog_std)`` against autograd of the closed form."""
    cases = [
        (torch.tensor([0.1, -0.2]), torch.tensor([-1.0, -2.0]), torch.tensor([0.3, 0.4])),
        (torch.tensor([0.0, 0.5, 1.0]), torch.tensor([0.0, -0.5, -3.0]), torch.tensor([1.0, 0.0, -1.0])),
    ]
    cases = [tuple(t.double() for t in c) for c in cases]
    if answer is None:
        mu, ls, goal = cases[0]
        exact = gaussian_policy_gradient(mu, ls, goal)
        est = reinforce_estimate(mu, ls, goal)
        print(
            f"no answer yet. Case 1: exact dJ/dmu = {[round(v, 4) for v in exact[0].tolist()]}, dJ/dlog_std = "
            f"{[round(v, 4) for v in exact[1].tolist()]}; REINFORCE (100,000 samples): "
            f"{[round(v, 4) for v in est[0].tolist()]}, {[round(v, 4) for v in est[1].tolist()]}"
        )
        return False
    ok = True
    for i, (mu, ls, goal) in enumerate(cases):
        m, s = mu.clone().requires_grad_(), ls.clone().requires_grad_()
        J = -((m - goal) ** 2).sum() - torch.exp(2 * s).sum()
        want = torch.autograd.grad(J, (m, s))
        got = answer(mu, ls, goal)
        passed = all(torch.allclose(torch.as_tensor(x, dtype=torch.float64), w, atol=1e-9) for x, w in zip(got, want))
        ok &= passed
        print(f"case {i + 1}: {'correct' if passed else 'not yet'}")
    return ok
