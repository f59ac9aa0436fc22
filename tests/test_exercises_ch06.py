"""Chapter 06's exercises: the reference solutions pass their checkers, wrong answers fail, and ``None``
prints the reference result."""

from __future__ import annotations

import torch

from mlcourse.course.exercises import ch06


def test_pixel_prototypes_reference_passes_and_wrong_fails(capsys) -> None:
    assert ch06.check_pixel_prototypes(ch06.pixel_prototypes)
    assert "not yet" not in capsys.readouterr().out

    # nearest single support image instead of the class mean: differs on the 5-shot task
    def nearest_neighbour(sx, sy, qx, n):
        return sy[torch.cdist(qx.flatten(1), sx.flatten(1)).argmin(-1)]

    assert not ch06.check_pixel_prototypes(nearest_neighbour)
    assert "not yet" in capsys.readouterr().out


def test_advantages_reference_passes_and_wrong_fails(capsys) -> None:
    assert ch06.check_advantages(ch06.advantages)
    assert "not yet" not in capsys.readouterr().out

    # including the trajectory itself in the baseline (the plain mean): not the leave-one-out baseline
    def plain_mean(r, gamma):
        ret = torch.stack([sum(gamma ** (k - t) * r[:, k] for k in range(t, r.shape[1])) for t in range(r.shape[1])], 1)
        return ret - ret.mean(0, keepdim=True)

    assert not ch06.check_advantages(plain_mean)


def test_gaussian_policy_gradient_reference_passes_and_matches_reinforce(capsys) -> None:
    assert ch06.check_gaussian_policy_gradient(ch06.gaussian_policy_gradient)
    assert not ch06.check_gaussian_policy_gradient(
        lambda mu, ls, g: (-2 * (mu - g), -2 * ls.exp())
    )  # d/dsigma, not d/dlog sigma
    mu, ls, goal = (
        torch.tensor([0.1, -0.2], dtype=torch.float64),
        torch.tensor([-1.0, -2.0], dtype=torch.float64),
        torch.tensor([0.3, 0.4], dtype=torch.float64),
    )
    exact = torch.cat(ch06.gaussian_policy_gradient(mu, ls, goal))
    estimate = torch.cat(ch06.reinforce_estimate(mu, ls, goal, samples=200_000))
    assert (estimate - exact).norm() / exact.norm() < 0.05


def test_none_prints_reference(capsys) -> None:
    assert ch06.check_pixel_prototypes(None) is False
    assert ch06.check_advantages(None) is False
    assert ch06.check_gaussian_policy_gradient(None) is False
    out = capsys.readouterr().out
    assert out.count("no answer yet") == 3
