"""Chapter 06 (applications): inputs and visible checks of the exercises.

1. ``check_advantages``: reward-to-go minus the leave-one-out baseline (the unbiased advantage of chapter 06's policy
   gradient).
2. ``check_gaussian_policy_gradient``: the exact gradient of ``E[-|a - g|^2]`` for ``a ~ N(mu, diag(sigma^2))`` with
   respect to ``mu`` and ``log sigma``, by hand; compared with a REINFORCE estimate from samples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import torch
from torch import Tensor

from mlcourse.course.exercises._common import Checks, as_float64, close, missing


def reward_table() -> Tensor:
    """Rewards ``[N, H]`` of 5 trajectories of 7 steps of one task (float64)."""
    return torch.randn(5, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def check_advantages(answer: Optional[Callable[[Tensor, float], Tensor]]) -> bool:
    """Properties of ``answer(rewards [N, H], gamma) -> [N, H]``: shape, advantages sum to zero over trajectories,
    identical trajectories have none, a reward shared by all trajectories changes nothing, and with gamma = 0 a step's
    advantage ignores later rewards."""
    name = "advantages"
    if missing(name, answer):
        return False
    check, r = Checks(name), reward_table()
    adv = as_float64(check.run(answer, r.clone(), 0.9))
    if not check("a [N, H] tensor", adv.shape == r.shape, "one advantage per trajectory and step"):
        return False
    check("at each step the advantages sum to 0 over trajectories", close(adv.sum(0), torch.zeros(7)), "leave one out")
    same = check.run(answer, r[:1].repeat(4, 1), 0.9)
    check(
        "identical trajectories have zero advantages",
        close(same, torch.zeros(4, 7)),
        "the baseline is the others' mean",
    )
    shared = check.run(answer, r + torch.linspace(-1, 2, 7, dtype=torch.float64), 0.9)
    check("a reward added to every trajectory changes nothing", close(shared, adv), "it cancels against the baseline")
    pair = check.run(answer, torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64), 0.0)
    check(
        "two trajectories: each one's baseline is the other's return",
        close(pair, torch.tensor([[1.0, -1.0], [-1.0, 1.0]])),
        "leave trajectory n out of its own baseline",
    )
    later = r.clone()
    later[:, 3:] = torch.randn(5, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    a0, b0 = as_float64(check.run(answer, r, 0.0)), as_float64(check.run(answer, later, 0.0))
    check(
        "gamma = 0: the advantage at step t ignores later rewards",
        a0.shape == r.shape and b0.shape == r.shape and close(a0[:, :3], b0[:, :3]),
        "reward-to-go sums gamma^(k - t) r_k over k >= t only",
    )
    return check.ok


def check_gaussian_policy_gradient(answer: Optional[Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]]) -> bool:
    """Properties of ``answer(mu, log_std, goal) -> (dJ/dmu, dJ/dlog_std)``: shapes, no pull at the goal, a negative
    log-std derivative, linear in ``mu - goal``, and within 5% of a REINFORCE estimate from 200,000 samples."""
    name = "policy gradient"
    if missing(name, answer):
        return False
    check = Checks(name)
    mu, log_std, goal = (torch.tensor(v, dtype=torch.float64) for v in ([0.1, -0.2], [-1.0, -0.5], [0.3, 0.4]))
    out = check.run(answer, mu, log_std, goal)
    if not check(
        "returns two [D] tensors",
        out is not None and len(out) == 2 and all(as_float64(t).shape == (2,) for t in out),
        "(dJ/dmu, dJ/dlog_std), each shaped like mu",
    ):
        return False
    d_mu, d_ls = (as_float64(t) for t in out)
    at_goal = check.run(answer, goal.clone(), log_std, goal)
    check("at mu = goal, dJ/dmu = 0", at_goal is not None and close(at_goal[0], torch.zeros(2)), "limiting case")
    check("dJ/dlog_std < 0", bool((d_ls < 0).all()), "a wider policy misses the goal more often")
    far = check.run(answer, goal + 2 * (mu - goal), log_std, goal)
    check("dJ/dmu doubles when mu is twice as far", far is not None and close(far[0], 2 * d_mu), "J is quadratic in mu")
    g = torch.Generator().manual_seed(0)
    eps = torch.randn(200_000, 2, generator=g, dtype=torch.float64)
    reward = -((mu + log_std.exp() * eps - goal) ** 2).sum(-1, keepdim=True)
    adv = reward - (reward.sum() - reward) / (reward.shape[0] - 1)
    estimate = torch.cat([(adv * eps / log_std.exp()).mean(0), (adv * (eps**2 - 1)).mean(0)])
    mine = torch.cat([d_mu, d_ls])
    check(
        "within 5% of a REINFORCE estimate from samples",
        float((estimate - mine).norm() / mine.norm().clamp_min(1e-12)) < 0.05,
        "differentiate -|mu - goal|^2 - sum exp(2 log_std)",
    )
    return check.ok


__all__ = ["reward_table", "check_advantages", "check_gaussian_policy_gradient"]
