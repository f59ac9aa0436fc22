"""Chapter 06 meta-RL: the 2-D navigation environment, the policy-gradient estimator, MAML-RL."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import grad, jvp, vmap

from mlcourse.course.ch06 import rl

F64 = torch.float64


# ---------------------------------------------------------------------------------------------- environment
def test_env_dynamics_clip_and_reward():
    env = rl.PointNavigation()
    pos = torch.tensor([[[0.0, 0.0], [0.2, -0.1]]])  # one task, two trajectories
    goals = torch.tensor([[0.3, 0.4]])
    action = torch.tensor([[[0.05, 0.5], [-1.0, 0.02]]])
    nxt, reward = env.step(pos, action, goals)
    torch.testing.assert_close(nxt, torch.tensor([[[0.05, 0.1], [0.1, -0.08]]]))  # velocities clipped to 0.1
    expected = -torch.tensor([[math.hypot(0.25, 0.3), math.hypot(0.2, 0.48)]])
    torch.testing.assert_close(reward, expected)


def test_goals_in_unit_square_and_reset_at_origin():
    env = rl.PointNavigation()
    goals = env.sample_goals(1000, torch.Generator().manual_seed(0))
    assert goals.shape == (1000, 2) and goals.min() >= -0.5 and goals.max() <= 0.5
    assert goals.std(0).min() > 0.25  # uniform on [-0.5, 0.5]: std 0.289
    assert torch.equal(env.reset(3, 4), torch.zeros(3, 4, 2))
    with pytest.raises(ValueError, match="horizon"):
        rl.PointNavigation(horizon=0)


def test_rollout_shapes_vectorisation_and_per_task_params():
    env = rl.PointNavigation(horizon=7)
    torch.manual_seed(0)
    policy = rl.GaussianMLPPolicy(hidden=16)
    goals = env.sample_goals(3, torch.Generator().manual_seed(1))
    traj = rl.rollout(policy, policy.params(), goals, 5, env, generator=torch.Generator().manual_seed(2))
    assert traj.obs.shape == (3, 5, 7, 2) and traj.actions.shape == (3, 5, 7, 2) and traj.rewards.shape == (3, 5, 7)
    assert torch.equal(traj.obs[:, :, 0], torch.zeros(3, 5, 2))
    # obs[t+1] = obs[t] + clip(a_t); reward_t = -|obs[t+1] - goal|
    path = traj.positions()
    torch.testing.assert_close(path[:, :, 1:], traj.obs[:, :, :1] + traj.actions.clamp(-0.1, 0.1).cumsum(2))
    torch.testing.assert_close(traj.rewards, -(path[:, :, 1:] - goals[:, None, None]).norm(dim=-1))
    # per-task parameters equal to the shared ones give the same rollout (same noise)
    stacked = {k: v.detach().expand(3, *v.shape).clone() for k, v in policy.params().items()}
    again = rl.rollout(policy, stacked, goals, 5, env, per_task=True, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(again.actions, traj.actions)
    # one task at a time == all tasks at once (vectorised over tasks and trajectories)
    for t in range(3):
        one = {k: v[t] for k, v in stacked.items()}
        mean = policy.mean(one, traj.obs[t])
        torch.testing.assert_close(mean, vmap(policy.mean)(stacked, traj.obs)[t])


def test_reward_to_go_and_leave_one_out_baseline():
    r = torch.tensor([[1.0, 2.0, 3.0]])
    torch.testing.assert_close(rl.reward_to_go(r, 0.5), torch.tensor([[1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3.0]]))
    ret = torch.tensor([[1.0, 10.0], [3.0, 20.0], [5.0, 60.0]])  # [N=3, H=2]
    b = rl.leave_one_out_baseline(ret)
    torch.testing.assert_close(b, torch.tensor([[4.0, 40.0], [3.0, 35.0], [2.0, 15.0]]))
    rewards = torch.randn(2, 6, 4)
    raw = rl.advantages(rewards, 0.9, normalise=False)
    torch.testing.assert_close(raw.sum(-2), torch.zeros(2, 4), atol=1e-5, rtol=0)  # already centred at every step
    adv = rl.advantages(rewards, 0.9, normalise=True)
    torch.testing.assert_close(adv.mean((-2, -1)), torch.zeros(2), atol=1e-6, rtol=0)
    torch.testing.assert_close(
        adv, raw / raw.std((-2, -1), keepdim=True), rtol=1e-4, atol=1e-5
    )  # re-centring is a no-op


def test_leave_one_out_scale_excludes_the_trajectory_itself():
    """Trajectory n's advantages are (R_n - b_n) / s_n with b_n and s_n computed from the other trajectories
    only: changing trajectory n's rewards changes its own advantage only through R_n."""
    g = torch.Generator().manual_seed(0)
    ret = torch.randn(7, 5, generator=g, dtype=F64)  # [N=7, H=5] reward-to-go (gamma = 1: reward_to_go is a cumsum)
    scale = rl.leave_one_out_scale(ret)
    for n in range(7):
        others = torch.cat([ret[:n], ret[n + 1 :]])
        spread = ((others - others.mean(0)).square().sum() / ((7 - 2) * 5)).sqrt()
        torch.testing.assert_close(scale[n], spread)
    rewards = torch.randn(3, 7, 5, generator=g, dtype=F64)
    changed = rewards.clone()
    changed[:, 2] = 10 * torch.randn(3, 5, generator=g, dtype=F64)  # trajectory 2 only
    ret, ret2 = rl.reward_to_go(rewards, 0.9), rl.reward_to_go(changed, 0.9)
    # trajectory 2's baseline and scale come from the others only: unchanged; everyone else's change
    torch.testing.assert_close(rl.leave_one_out_baseline(ret2)[:, 2], rl.leave_one_out_baseline(ret)[:, 2])
    torch.testing.assert_close(rl.leave_one_out_scale(ret2)[:, 2], rl.leave_one_out_scale(ret)[:, 2])
    assert not torch.allclose(rl.leave_one_out_baseline(ret2)[:, 0], rl.leave_one_out_baseline(ret)[:, 0])
    # MAML's normalisation (the default) divides by a std that does depend on trajectory 2
    adv, adv2 = rl.advantages(rewards, 0.9), rl.advantages(changed, 0.9)
    raw, raw2 = rl.advantages(rewards, 0.9, False), rl.advantages(changed, 0.9, False)
    assert not torch.allclose(adv2[:, 0] / raw2[:, 0], adv[:, 0] / raw[:, 0])
    assert torch.equal(rl.leave_one_out_scale(torch.randn(4, 2, 3)), torch.ones(4, 2))  # N = 2: no spread to use


def test_baseline_is_unbiased_and_the_per_task_normalisation_is_not():
    """One-step bandit a ~ N(mu, sigma^2), reward -(a - g)^2: dJ/dmu = -2(mu - g), dJ/dlog sigma = -2 sigma^2.
    100,000 tasks of N = 8 trajectories each. With the leave-one-out baseline alone (``normalise=False``) the
    estimate is unbiased. MAML's per-task normalisation (the default) divides by a std that includes the
    trajectory itself: it bends the direction (the ratio of the two components comes out at about 0.72 of
    the true one: chapter 06 quotes this). Dividing by the leave-one-out scale instead keeps the direction."""
    mu, sigma, goal, groups, n = 0.0, 1.0, 1.0, 100_000, 8
    a = mu + sigma * torch.randn(groups, n, 1, generator=torch.Generator().manual_seed(0), dtype=F64)
    rewards = -(a - goal).square()  # [tasks, N, H=1]
    score_mu, score_log_sigma = (a - mu) / sigma**2, ((a - mu) / sigma).square() - 1
    exact = torch.tensor([-2 * (mu - goal), -2 * sigma**2], dtype=F64)

    def estimate(adv):
        return torch.stack([(score_mu * adv).mean(), (score_log_sigma * adv).mean()])

    def direction_ratio(est):
        return float(est[1] / est[0]) / float(exact[1] / exact[0])

    raw = estimate(rl.advantages(rewards, gamma=1.0, normalise=False))
    assert float((raw - exact).norm() / exact.norm()) < 0.03, "the leave-one-out baseline must keep it unbiased"
    naive = estimate(rewards - rewards.mean(-2, keepdim=True))  # a baseline that includes the trajectory itself:
    torch.testing.assert_close(naive, (n - 1) / n * raw)  # shrinks the expectation by (N - 1) / N
    normalised = estimate(rl.advantages(rewards, gamma=1.0, normalise=True))
    ratio = direction_ratio(normalised)
    assert 0.65 < ratio < 0.8, f"MAML's normalisation: direction ratio {ratio:.3f} (chapter 06 quotes 0.72)"
    loo = rewards - rl.leave_one_out_baseline(rewards)
    scaled = estimate(loo / rl.leave_one_out_scale(rewards).unsqueeze(-1))
    assert abs(direction_ratio(scaled) - 1) < 0.03


# ---------------------------------------------------------------------------------------------- estimator
def test_policy_gradient_matches_known_gradient():
    """One-step Gaussian problem with a known expected reward: a ~ N(mu_theta(s), sigma^2), reward -|a - g|^2,
    so E[reward] = -|mu - g|^2 - sum sigma^2, differentiable in closed form. The REINFORCE estimate (with the
    leave-one-out baseline) from many samples must match its gradient; a fixed seed keeps it deterministic,
    and the tolerance is several standard errors."""
    torch.manual_seed(0)
    policy = rl.GaussianMLPPolicy(hidden=8, init_std=0.3).double()
    params = {k: v.detach() for k, v in policy.params().items()}
    n = 100_000
    s = torch.full((1, 1, 2), 0.2, dtype=F64)
    goal = torch.tensor([0.3, -0.4], dtype=F64)
    g = torch.Generator().manual_seed(0)
    mean = policy.mean(params, s)
    a = (mean + params["log_std"].exp() * torch.randn(1, n, 2, generator=g, dtype=F64)).unsqueeze(2)  # [1, n, 1, 2]
    obs = s.expand(1, n, 2).unsqueeze(2)
    rewards = -(a - goal).square().sum(-1)  # [1, n, 1]
    traj = rl.Trajectories(obs=obs, actions=a, rewards=rewards, goals=goal[None])
    estimate = rl.flat(rl.policy_gradient(policy, params, traj, gamma=1.0, normalise=False))

    def expected_reward(p):
        mu = policy.mean(p, s[0, 0])
        return -(mu - goal).square().sum() - (2 * p["log_std"]).exp().sum()

    exact = rl.flat(grad(expected_reward)(params))
    rel = (estimate - exact).norm() / exact.norm()
    assert rel < 0.03, f"REINFORCE estimate off by {rel:.3f} (relative)"


def test_policy_gradient_unbiased_on_navigation_vs_pathwise():
    """On the real environment (H=4): REINFORCE agrees with the pathwise (reparameterised) gradient of the
    same expected return, computed by autograd through the clipped dynamics with fixed noise."""
    torch.manual_seed(1)
    env = rl.PointNavigation(horizon=4)
    policy = rl.GaussianMLPPolicy(hidden=8, init_std=0.05).double()
    params = {k: v.detach() for k, v in policy.params().items()}
    goals = torch.tensor([[0.25, -0.3]], dtype=F64)
    n = 40_000
    traj = rl.rollout(policy, params, goals, n, env, generator=torch.Generator().manual_seed(3))
    reinforce = rl.flat(rl.policy_gradient(policy, params, traj, gamma=1.0, normalise=False))

    noise = torch.randn(1, n, 4, 2, generator=torch.Generator().manual_seed(4), dtype=F64)

    def mean_return(p):  # the same surrogate scale: return / H, averaged over trajectories
        pos = torch.zeros(1, n, 2, dtype=F64)
        total = 0.0
        for t in range(4):
            pos, r = env.step(pos, policy.mean(p, pos) + p["log_std"].exp() * noise[:, :, t], goals)
            total = total + r
        return total.mean() / 4

    pathwise = rl.flat(grad(mean_return)(params))
    rel = (reinforce - pathwise).norm() / pathwise.norm()
    assert rel < 0.1, f"REINFORCE vs pathwise gradient: relative difference {rel:.3f}"


# ---------------------------------------------------------------------------------------------- MAML-RL
def _fixed_batches(first_order=False):
    env = rl.PointNavigation(horizon=5)
    torch.manual_seed(0)
    policy = rl.GaussianMLPPolicy(hidden=8).double()
    goals = env.sample_goals(3, torch.Generator().manual_seed(0), dtype=F64)
    g = torch.Generator().manual_seed(1)
    theta = policy.params()
    pre = rl.rollout(policy, theta, goals, 6, env, generator=g)
    phi = rl.adapt(policy, theta, pre, 0.3, create_graph=False)
    post = rl.rollout(policy, phi, goals, 6, env, per_task=True, generator=g)
    return policy, theta, pre, post


@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_has_maml_structure(first_order):
    """For fixed pre/post batches the meta-gradient is mean_t (I - a H_pre,t) g_post,t(phi_t) (second order)
    or mean_t g_post,t(phi_t) (first order), with H_pre,t the Hessian of task t's pre-update surrogate."""
    policy, theta, pre, post = _fixed_batches()
    alpha = 0.3
    names = list(theta)
    policy.zero_grad(set_to_none=True)
    rl.meta_loss(policy, theta, pre, post, alpha, first_order=first_order).backward()
    got = torch.cat([theta[k].grad.reshape(-1) for k in names])

    base = {k: v.detach() for k, v in theta.items()}
    adv_pre = rl.advantages(pre.rewards)
    adv_post = rl.advantages(post.rewards)
    expected = torch.zeros_like(got)
    for t in range(3):

        def l_pre(p, t=t):
            return rl.pg_surrogate(policy, p, pre.obs[t], pre.actions[t], adv_pre[t])

        def l_post(p, t=t):
            return rl.pg_surrogate(policy, p, post.obs[t], post.actions[t], adv_post[t])

        g_pre = grad(l_pre)(base)
        phi = {k: base[k] - alpha * g_pre[k] for k in names}
        v = grad(l_post)(phi)
        if not first_order:
            hv = jvp(grad(l_pre), (base,), (v,))[1]
            v = {k: v[k] - alpha * hv[k] for k in names}
        expected += torch.cat([v[k].reshape(-1) for k in names]) / 3
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)


def test_meta_loss_with_zero_step_is_plain_policy_gradient():
    policy, theta, pre, _ = _fixed_batches()
    policy.zero_grad(set_to_none=True)
    rl.meta_loss(policy, theta, pre, pre, 1e-300).backward()  # alpha -> 0, post = pre: joint policy gradient
    got = torch.cat([p.grad.reshape(-1) for p in theta.values()])
    adv = rl.advantages(pre.rewards)
    base = {k: v.detach() for k, v in theta.items()}
    per_task = vmap(grad(lambda p, o, a, d: rl.pg_surrogate(policy, p, o, a, d)), in_dims=(None, 0, 0, 0))(
        base, pre.obs, pre.actions, adv
    )
    torch.testing.assert_close(got, torch.cat([v.mean(0).reshape(-1) for v in per_task.values()]))


def test_maml_rl_improves_post_adaptation_return_tiny_budget():
    """Tiny budget, fixed seed: after meta-training, one policy-gradient step on a new goal raises the return."""
    torch.manual_seed(0)
    policy = rl.GaussianMLPPolicy(hidden=32)
    config = rl.MetaRLConfig(num_tasks=8, num_traj=10, horizon=15, inner_lr=0.05, outer_lr=0.01)
    history = rl.train_policy(policy, 25, config, seed=0, progress=False)
    assert len(history) == 25 and all(math.isfinite(h["loss"]) for h in history)
    goals = rl.PointNavigation().sample_goals(30, torch.Generator().manual_seed(123))
    result = rl.adaptation_returns(policy, goals, steps=1, inner_lr=0.05, num_traj=10, horizon=15, seed=5)
    pre, post = result["mean"]
    assert post > pre + 1.0, f"post-adaptation return {post:.2f} not above pre-adaptation {pre:.2f}"


@pytest.mark.parametrize("method", ["maml", "pretrain"])
def test_max_grad_norm_clips_the_outer_step(method):
    """With ``max_grad_norm`` the outer gradient's norm is at most that (chapter 06's full mode clips at 1: unclipped,
    Adam ran the policy's mean past the action bounds); without it the same step's gradient is larger."""
    norms = {}
    for clip in (None, 1e-3):
        torch.manual_seed(0)
        policy = rl.GaussianMLPPolicy(hidden=8)
        config = rl.MetaRLConfig(num_tasks=2, num_traj=4, horizon=5, outer_lr=1e-3, max_grad_norm=clip)
        optimizer = torch.optim.Adam(policy.parameters(), lr=config.outer_lr)
        step = rl.maml_rl_step if method == "maml" else rl.pretrain_step
        step(policy, optimizer, config, rl.PointNavigation(horizon=5), torch.Generator().manual_seed(1))
        norms[clip] = torch.cat([p.grad.reshape(-1) for p in policy.parameters()]).norm().item()
    assert norms[1e-3] == pytest.approx(1e-3, rel=1e-4) and norms[None] > 1e-2, norms


def test_chapter_config_is_the_papers_sizes_in_full_mode_with_the_clip(monkeypatch):
    monkeypatch.delenv("MLCOURSE_FAST", raising=False)
    config = rl.chapter_config()
    assert (config.num_tasks, config.num_traj, config.horizon, config.inner_lr) == (20, 20, 100, 0.1)
    assert config.max_grad_norm == 1.0
    monkeypatch.setenv("MLCOURSE_FAST", "1")
    assert rl.chapter_config().horizon < 100
