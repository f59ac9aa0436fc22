"""Meta-reinforcement learning on 2-D point-robot navigation: MAML with policy gradients (chapter 06).

The task family is the MAML paper's "2D navigation" (Finn, Abbeel & Levine 2017, section 5.3):

* a point robot starts at the origin; its **state** (= observation) is its position ``(x, y)``;
* an **action** is a velocity, clipped to ``[-0.1, 0.1]`` per coordinate; ``position <- position + clip(a)``;
* a **task** is a goal position drawn uniformly from ``[-0.5, 0.5]^2``; the goal is *not* observed: the
  agent must infer it from rewards, which is why it needs to adapt;
* the **reward** after each step is ``-||position - goal||`` (minus the Euclidean distance; the paper's text
  says "negative squared distance", the brief of this course and MAML's released point environment use the
  distance); a fixed horizon ``H`` (100 in the paper; notebooks use fewer steps in fast mode) and no early
  termination (the paper stops within 0.01 of the goal; dropping that keeps every trajectory the same
  length, so everything is one tensor).

Everything is vectorised over tasks and trajectories: positions are ``[T, N, 2]`` (T tasks, N trajectories
each), a rollout is one Python loop over time steps.

Learning (all in plain torch, ``torch.func`` for per-task parameters):

* :class:`GaussianMLPPolicy`: mean = MLP(position), a learned state-independent log standard deviation.
* The **policy-gradient estimator** (REINFORCE / vanilla policy gradient, Williams 1992): the surrogate
  ``L(theta) = -mean_{n,t} log pi_theta(a_t|s_t) * A_t`` whose gradient is minus the estimated gradient of
  the expected return. ``A_t`` = discounted reward-to-go minus a **leave-one-out baseline** (the mean
  reward-to-go at the same time step over the task's *other* trajectories: it does not depend on the
  trajectory's own actions, so without normalisation the estimator is unbiased). By default the advantages
  are then normalised per task as MAML's implementation does: divided by their standard deviation over
  *all* the task's trajectories and steps, trajectory n included. That common variance-reduction practice
  makes the estimate no longer exactly unbiased (see :func:`advantages`).
* **MAML-RL** (:func:`meta_loss`, :func:`maml_rl_step`): for each task, roll out N trajectories with
  ``theta`` ("pre-update"), take one policy-gradient step ``phi_t = theta - alpha * grad L_pre,t(theta)``,
  roll out N trajectories with ``phi_t`` ("post-update") and minimise ``mean_t L_post,t(phi_t)`` with respect
  to ``theta``, **through the inner step**: second order by default (``torch.func.grad`` inside ``vmap``
  keeps the graph, so ``backward()`` multiplies by ``I - alpha * Hessian of L_pre``), first order with
  ``first_order=True`` (the inner gradient is treated as a constant). As in MAML's original implementation,
  the dependence of the *pre-update sampling distribution* on theta is ignored (the term that DiCE,
  Foerster et al. 2018, and ProMP, Rothfuss et al. 2019, add back).
* The **outer optimiser** is Adam on that policy-gradient meta-loss. The MAML paper used TRPO for the outer
  update; we use a plain policy-gradient/Adam outer step (simpler, enough for this small problem).
* Baselines: :func:`pretrain_step` trains one policy on all tasks jointly (the "pretrained" policy of the
  MAML paper's Fig. 5); a randomly initialised policy is the other baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from mlcourse.config import pick
from mlcourse.course.committed import load_or_train

Params = dict[str, Tensor]


# --------------------------------------------------------------------------------------------------
# environment


@dataclass
class PointNavigation:
    """The 2-D navigation task family (vectorised over tasks and trajectories; no state of its own)."""

    goal_low: float = -0.5
    goal_high: float = 0.5
    max_action: float = 0.1
    horizon: int = 100

    def __post_init__(self) -> None:
        if not self.goal_low < self.goal_high:
            raise ValueError(f"goal range ({self.goal_low}, {self.goal_high}) is empty; need goal_low < goal_high")
        if not self.max_action > 0:
            raise ValueError(f"max_action={self.max_action!r} must be > 0")
        if not (isinstance(self.horizon, int) and self.horizon >= 1):
            raise ValueError(f"horizon={self.horizon!r} must be an integer >= 1")

    def sample_goals(
        self, num_tasks: int, generator: Optional[torch.Generator] = None, dtype: torch.dtype = torch.float32
    ) -> Tensor:
        """``[num_tasks, 2]`` goals uniform in ``[goal_low, goal_high]^2`` (one task per goal)."""
        if num_tasks < 1:
            raise ValueError(f"num_tasks={num_tasks} must be >= 1")
        u = torch.rand(num_tasks, 2, generator=generator, dtype=dtype)
        return self.goal_low + (self.goal_high - self.goal_low) * u

    def reset(self, num_tasks: int, num_traj: int, dtype: torch.dtype = torch.float32) -> Tensor:
        """Start positions ``[T, N, 2]``: the origin."""
        return torch.zeros(num_tasks, num_traj, 2, dtype=dtype)

    def step(self, position: Tensor, action: Tensor, goals: Tensor) -> tuple[Tensor, Tensor]:
        """``position [T, N, 2]``, ``action [T, N, 2]``, ``goals [T, 2]`` -> (next position, reward ``[T, N]``).

        The action is clipped to ``[-max_action, max_action]`` per coordinate; reward = -distance to the goal
        after the move."""
        moved = position + action.clamp(-self.max_action, self.max_action)
        reward = -(moved - goals.unsqueeze(1)).norm(dim=-1)
        return moved, reward


@dataclass
class Trajectories:
    """A batch of rollouts: ``obs``/``actions`` ``[T, N, H, 2]``, ``rewards`` ``[T, N, H]`` (reward after each
    action); ``goals`` ``[T, 2]``. Actions are the *unclipped* samples (their log-probability is what the
    policy gradient needs); the environment clips them."""

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    goals: Tensor

    @property
    def returns(self) -> Tensor:
        """Undiscounted return of every trajectory ``[T, N]``."""
        return self.rewards.sum(-1)

    def positions(self, max_action: float = 0.1) -> Tensor:
        """The path of every trajectory including the final position: ``[T, N, H + 1, 2]``."""
        last = self.obs[:, :, -1] + self.actions[:, :, -1].clamp(-max_action, max_action)
        return torch.cat([self.obs, last.unsqueeze(2)], dim=2)


# --------------------------------------------------------------------------------------------------
# policy


class GaussianMLPPolicy(nn.Module):
    """``pi(a|s) = N(mean_theta(s), diag(exp(log_std))^2)``; mean = MLP ``2 -> hidden x layers -> 2`` (ReLU; the
    MAML paper used two hidden layers of 100), ``log_std`` a learned vector (state-independent).

    ``init_std`` defaults to 0.1, the action scale (rllab's default 1.0 saturates the [-0.1, 0.1] clip almost
    always). All methods take a parameter dict (``dict(policy.named_parameters())`` or an adapted copy), so
    they work per task under ``torch.func.vmap``."""

    def __init__(
        self, obs_dim: int = 2, act_dim: int = 2, hidden: int = 64, layers: int = 2, init_std: float = 0.1
    ) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        width = obs_dim
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        mods.append(nn.Linear(width, act_dim))
        self.net = nn.Sequential(*mods)
        with torch.no_grad():  # small initial means: the untrained policy is a random walk around the origin
            self.net[-1].weight.mul_(0.1)
            self.net[-1].bias.zero_()
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(init_std)))

    def params(self) -> Params:
        return dict(self.named_parameters())

    def mean(self, params: Params, obs: Tensor) -> Tensor:
        net = {k[4:]: v for k, v in params.items() if k.startswith("net.")}
        return functional_call(self.net, net, (obs,))

    def log_prob(self, params: Params, obs: Tensor, actions: Tensor) -> Tensor:
        """``log pi(a|s)`` summed over action dimensions, shape ``obs.shape[:-1]``."""
        log_std = params["log_std"]
        z = (actions - self.mean(params, obs)) * torch.exp(-log_std)
        return (-0.5 * z.square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    def forward(self, obs: Tensor) -> Tensor:
        return self.mean(self.params(), obs)


def detached(params: Params) -> Params:
    return {k: v.detach() for k, v in params.items()}


@torch.no_grad()
def rollout(
    policy: GaussianMLPPolicy,
    params: Params,
    goals: Tensor,
    num_traj: int,
    env: Optional[PointNavigation] = None,
    *,
    horizon: Optional[int] = None,
    per_task: bool = False,
    generator: Optional[torch.Generator] = None,
    deterministic: bool = False,
) -> Trajectories:
    """Roll out ``num_traj`` trajectories for every goal (task) in one vectorised loop over time.

    ``params``: one parameter dict shared by all tasks, or (``per_task=True``) a dict of ``[T, ...]`` tensors,
    one policy per task (the adapted ``phi_t``). ``deterministic=True`` follows the mean (for plots)."""
    env = env or PointNavigation()
    horizon = env.horizon if horizon is None else horizon
    params = detached(params)
    num_tasks = goals.shape[0]
    dtype = goals.dtype
    noise = torch.randn(num_tasks, num_traj, horizon, 2, generator=generator, dtype=dtype)
    if deterministic:
        noise.zero_()
    if per_task:
        mean_fn = vmap(policy.mean, in_dims=(0, 0))
        std = params["log_std"].exp().unsqueeze(1)  # [T, 1, 2]
    else:
        mean_fn = policy.mean
        std = params["log_std"].exp()
    pos = env.reset(num_tasks, num_traj, dtype=dtype)
    obs, acts, rews = [], [], []
    for t in range(horizon):
        action = mean_fn(params, pos) + std * noise[:, :, t]
        obs.append(pos)
        acts.append(action)
        pos, reward = env.step(pos, action, goals)
        rews.append(reward)
    return Trajectories(
        obs=torch.stack(obs, 2), actions=torch.stack(acts, 2), rewards=torch.stack(rews, 2), goals=goals
    )


# --------------------------------------------------------------------------------------------------
# the policy-gradient estimator


def reward_to_go(rewards: Tensor, gamma: float = 0.99) -> Tensor:
    """Discounted reward-to-go ``R_t = sum_{k >= t} gamma^(k-t) r_k`` along the last dimension."""
    out = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[..., 0])
    for t in range(rewards.shape[-1] - 1, -1, -1):
        running = rewards[..., t] + gamma * running
        out[..., t] = running
    return out


def leave_one_out_baseline(returns: Tensor) -> Tensor:
    """``b[..., n, t]`` = mean of ``returns[..., m, t]`` over the other trajectories ``m != n`` (dim -2).

    Independent of trajectory ``n``'s own actions, so subtracting it keeps the estimator unbiased."""
    n = returns.shape[-2]
    if n < 2:
        return torch.zeros_like(returns)
    return (returns.sum(-2, keepdim=True) - returns) / (n - 1)


def leave_one_out_scale(returns: Tensor) -> Tensor:
    """``s[..., n]``: the spread of the *other* trajectories' reward-to-go ``returns[..., m, t]`` (``m != n``,
    dim -2) around their own per-step mean (the leave-one-out baseline), pooled over the steps (dim -1):
    ``sqrt(sum_{m != n, t} (R_m,t - b_n,t)^2 / ((N - 2) H))``. It does not depend on trajectory ``n``, so
    ``(R_n - b_n) / s_n`` keeps the policy gradient's direction unbiased (its expectation is the true
    gradient times ``E[1 / s]``), unlike MAML's per-task standard deviation (:func:`advantages`). It is 0
    when the other trajectories coincide. Needs ``N >= 3`` (with 2, one other trajectory has no spread):
    returns ones otherwise."""
    n, h = returns.shape[-2], returns.shape[-1]
    if n < 3:
        return torch.ones_like(returns[..., 0])
    r = returns - returns.mean(-2, keepdim=True)  # shift per step (no effect on the spread; avoids cancellation)
    b = leave_one_out_baseline(r)
    # sum_{m != n} (r_m - b_n)^2 = sum_{m != n} r_m^2 - (N - 1) b_n^2   (b_n is the mean of those r_m)
    sq = (r.square().sum(-2, keepdim=True) - r.square()) - (n - 1) * b.square()
    return (sq.clamp_min(0).sum(-1) / ((n - 2) * h)).sqrt()


def advantages(rewards: Tensor, gamma: float = 0.99, normalise: bool = True) -> Tensor:
    """Reward-to-go minus the leave-one-out baseline; ``normalise`` rescales per task as MAML's implementation
    does: minus the mean, divided by the standard deviation, both over that task's trajectories and steps.

    What the normalisation does to the estimator ``mean_n,t grad log pi(a_t^n|s_t^n) A_t^n``:

    * the re-centring changes nothing: leave-one-out advantages already sum to zero over the trajectories at
      every step (``sum_n (R_n - mean_{m != n} R_m) = 0``);
    * the division by the task's standard deviation is what matters. Without it (``normalise=False``) the
      estimate is unbiased: the baseline does not depend on trajectory ``n``. The standard deviation *does*
      depend on trajectory ``n`` (it grows with ``|A^n|``), so a trajectory's weight depends on its own
      return and the estimate is **no longer exactly unbiased**: the common variance-reduction practice,
      with a bias that shrinks as the task has more trajectories and steps. ``tests/test_rl.py`` measures
      it on a one-step problem with 8 trajectories per task (the ratio of two gradient components comes out
      at 0.72 of the true one). Dividing by :func:`leave_one_out_scale` instead would keep the direction
      unbiased, but that scale is 0 whenever the other trajectories coincide (velocities clipped the same
      way), which makes MAML-RL training unstable here, so the course keeps MAML's normalisation."""
    ret = reward_to_go(rewards, gamma)
    adv = ret - leave_one_out_baseline(ret)
    if normalise:
        dims = (-2, -1)
        adv = (adv - adv.mean(dims, keepdim=True)) / (adv.std(dims, keepdim=True) + 1e-8)
    return adv


def pg_surrogate(policy: GaussianMLPPolicy, params: Params, obs: Tensor, actions: Tensor, adv: Tensor) -> Tensor:
    """``-mean(log pi(a|s) * A)`` over every leading dimension: its gradient is minus the policy-gradient
    estimate (so gradient *descent* on it is ascent on the expected return). One task: ``obs [N, H, 2]``."""
    return -(policy.log_prob(params, obs, actions) * adv).mean()


def policy_gradient(
    policy: GaussianMLPPolicy, params: Params, traj: Trajectories, *, gamma: float = 0.99, normalise: bool = False
) -> Params:
    """The REINFORCE estimate of ``grad_theta E[return]`` (scaled by ``1 / H``: the surrogate averages over
    time steps) from trajectories sampled with ``params`` (all tasks pooled)."""
    adv = advantages(traj.rewards, gamma, normalise)
    leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
    loss = pg_surrogate(policy, leaves, traj.obs, traj.actions, adv)
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return {k: -g for k, g in zip(leaves, grads)}


# --------------------------------------------------------------------------------------------------
# MAML with policy gradients


def _task_surrogate(policy: GaussianMLPPolicy):
    return lambda p, obs, act, adv: pg_surrogate(policy, p, obs, act, adv)


def adapt(
    policy: GaussianMLPPolicy,
    params: Params,
    traj: Trajectories,
    inner_lr: float,
    *,
    per_task: bool = False,
    create_graph: bool = True,
    gamma: float = 0.99,
    normalise: bool = True,
) -> Params:
    """One policy-gradient step per task: ``phi_t = theta - inner_lr * grad L_t(theta)`` on ``traj`` (sampled
    with ``params``). Returns per-task parameters ``{name: [T, ...]}``.

    ``create_graph=True`` keeps the graph to ``params`` (``torch.func.grad`` inside ``vmap``), so a loss of
    ``phi`` differentiates through the step (second-order MAML); ``False`` detaches the inner gradient
    (first-order MAML)."""
    adv = advantages(traj.rewards, gamma, normalise)
    g = torch.func.grad(_task_surrogate(policy))
    grads = vmap(g, in_dims=(0 if per_task else None, 0, 0, 0))(params, traj.obs, traj.actions, adv)
    if not create_graph:
        grads = detached(grads)
    if per_task:
        return {k: params[k] - inner_lr * grads[k] for k in params}
    return {k: params[k].unsqueeze(0) - inner_lr * grads[k] for k in params}


def meta_loss(
    policy: GaussianMLPPolicy,
    params: Params,
    pre: Trajectories,
    post: Trajectories,
    inner_lr: float,
    *,
    first_order: bool = False,
    gamma: float = 0.99,
    normalise: bool = True,
) -> Tensor:
    """MAML-RL meta-loss for FIXED pre-update and post-update batches:
    ``mean_t L_post,t(theta - inner_lr * grad L_pre,t(theta))``.

    Its gradient is ``mean_t (I - inner_lr * H_pre,t) grad L_post,t(phi_t)`` (second order) or
    ``mean_t grad L_post,t(phi_t)`` (``first_order=True``); ``post`` must have been sampled with ``phi_t``."""
    phi = adapt(policy, params, pre, inner_lr, create_graph=not first_order, gamma=gamma, normalise=normalise)
    adv = advantages(post.rewards, gamma, normalise)
    losses = vmap(_task_surrogate(policy))(phi, post.obs, post.actions, adv)
    return losses.mean()


@dataclass
class MetaRLConfig:
    """Sizes of MAML-RL training. Paper (2D navigation): 20 tasks x 20 trajectories, H=100, alpha=0.1, TRPO outer."""

    num_tasks: int = 20
    num_traj: int = 20
    horizon: int = 100
    inner_lr: float = 0.1
    outer_lr: float = 3e-3
    gamma: float = 0.99
    first_order: bool = False
    normalise: bool = True
    max_grad_norm: Optional[float] = None  # clip the outer gradient's norm (a crude trust region); None: no clipping


def chapter_config() -> MetaRLConfig:
    """Chapter 06's MAML-RL sizes (the paper's in full mode, small in fast mode); its committed policies match them.

    The outer gradient's norm is clipped at 1: without it (Adam, 3e-3) MAML-RL's return collapsed after ~100
    iterations in full mode, the policy's mean running past the action bounds where the reward no longer tells
    it which way to go (the paper's TRPO outer step is a trust region for the same reason)."""
    return MetaRLConfig(
        num_tasks=pick(8, 20),
        num_traj=pick(10, 20),
        horizon=pick(15, 100),
        inner_lr=0.1,
        outer_lr=pick(1e-2, 3e-3),
        max_grad_norm=1.0,
    )


def _outer_step(policy: GaussianMLPPolicy, optimizer: torch.optim.Optimizer, config: MetaRLConfig) -> None:
    if config.max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
    optimizer.step()


def maml_rl_step(
    policy: GaussianMLPPolicy,
    optimizer: torch.optim.Optimizer,
    config: MetaRLConfig,
    env: Optional[PointNavigation] = None,
    generator: Optional[torch.Generator] = None,
) -> dict[str, float]:
    """One meta-iteration: sample goals, pre-update rollouts, adapt, post-update rollouts, outer Adam step.

    Returns the mean undiscounted return before (``pre_return``) and after (``post_return``) adaptation."""
    env = env or PointNavigation(horizon=config.horizon)
    goals = env.sample_goals(config.num_tasks, generator)
    theta = policy.params()
    pre = rollout(policy, theta, goals, config.num_traj, env, horizon=config.horizon, generator=generator)
    phi = adapt(policy, theta, pre, config.inner_lr, create_graph=False, gamma=config.gamma, normalise=config.normalise)
    post = rollout(policy, phi, goals, config.num_traj, env, horizon=config.horizon, per_task=True, generator=generator)
    optimizer.zero_grad(set_to_none=True)
    loss = meta_loss(
        policy,
        theta,
        pre,
        post,
        config.inner_lr,
        first_order=config.first_order,
        gamma=config.gamma,
        normalise=config.normalise,
    )
    loss.backward()
    _outer_step(policy, optimizer, config)
    return {
        "loss": float(loss.detach()),
        "pre_return": float(pre.returns.mean()),
        "post_return": float(post.returns.mean()),
    }


def pretrain_step(
    policy: GaussianMLPPolicy,
    optimizer: torch.optim.Optimizer,
    config: MetaRLConfig,
    env: Optional[PointNavigation] = None,
    generator: Optional[torch.Generator] = None,
) -> dict[str, float]:
    """Joint ("pretrained") policy gradient: one policy for all goals, no adaptation in the objective."""
    env = env or PointNavigation(horizon=config.horizon)
    goals = env.sample_goals(config.num_tasks, generator)
    theta = policy.params()
    traj = rollout(policy, theta, goals, config.num_traj, env, horizon=config.horizon, generator=generator)
    adv = advantages(traj.rewards, config.gamma, config.normalise)
    optimizer.zero_grad(set_to_none=True)
    loss = pg_surrogate(policy, theta, traj.obs, traj.actions, adv)
    loss.backward()
    _outer_step(policy, optimizer, config)
    return {"loss": float(loss.detach()), "pre_return": float(traj.returns.mean()), "post_return": float("nan")}


def policy_settings(
    policy: GaussianMLPPolicy,
    iterations: int,
    config: Optional[MetaRLConfig] = None,
    *,
    method: str = "maml",
    seed: int = 0,
) -> dict[str, Any]:
    """The settings :func:`train_policy` matches committed weights on (same arguments)."""
    from dataclasses import asdict

    return dict(asdict(config or MetaRLConfig()), method=method, iterations=iterations, seed=seed, policy=repr(policy))


def train_policy(
    policy: GaussianMLPPolicy,
    iterations: int,
    config: Optional[MetaRLConfig] = None,
    *,
    method: str = "maml",
    seed: int = 0,
    progress: bool = True,
    committed: Optional[str] = None,
) -> list[dict[str, float]]:
    """Train ``policy`` with ``method`` = ``"maml"`` (MAML-RL) or ``"pretrain"`` (joint policy gradient) for
    ``iterations`` steps of Adam; returns the per-iteration history (returns before/after adaptation).
    ``committed="ch06/rl-maml"``: full mode loads those committed weights instead when the settings match."""
    if committed:
        return load_or_train(
            committed,
            policy,
            policy_settings(policy, iterations, config, method=method, seed=seed),
            lambda: train_policy(policy, iterations, config, method=method, seed=seed, progress=progress),
        ).history
    from tqdm.auto import tqdm

    if method not in ("maml", "pretrain"):
        raise ValueError(f"method={method!r} is not known; allowed: maml, pretrain")
    config = config or MetaRLConfig()
    env = PointNavigation(horizon=config.horizon)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.outer_lr)
    step_fn = maml_rl_step if method == "maml" else pretrain_step
    history = []
    bar = tqdm(range(iterations), desc=f"{method} 2-D navigation", disable=not progress, leave=False)
    for _ in bar:
        record = step_fn(policy, optimizer, config, env, generator)
        history.append(record)
        bar.set_postfix(pre=f"{record['pre_return']:.1f}", post=f"{record['post_return']:.1f}", refresh=False)
    return history


@torch.no_grad()
def _no_grad_adapt(policy, params, traj, inner_lr, per_task, gamma, normalise):
    with torch.enable_grad():
        return detached(
            adapt(
                policy, params, traj, inner_lr, per_task=per_task, create_graph=False, gamma=gamma, normalise=normalise
            )
        )


def adaptation_returns(
    policy: GaussianMLPPolicy,
    goals: Tensor,
    *,
    steps: int = 1,
    inner_lr: float = 0.1,
    num_traj: int = 20,
    horizon: int = 100,
    gamma: float = 0.99,
    normalise: bool = True,
    seed: int = 0,
    keep_trajectories: bool = False,
) -> dict[str, Any]:
    """Average return on ``goals`` after 0..``steps`` policy-gradient steps (each step uses fresh rollouts of
    the current policy, as in the MAML paper's evaluation). Returns ``{"returns": [steps + 1][T]`` per-task
    mean returns, ``"mean"``, ``"ci95"`` per step and, with ``keep_trajectories``, the rollouts.``}"""
    env = PointNavigation(horizon=horizon)
    generator = torch.Generator().manual_seed(seed)
    params: Params = detached(policy.params())
    per_task = False
    per_step, trajs = [], []
    for s in range(steps + 1):
        traj = rollout(policy, params, goals, num_traj, env, horizon=horizon, per_task=per_task, generator=generator)
        per_step.append(traj.returns.mean(1))
        if keep_trajectories:
            trajs.append(traj)
        if s < steps:
            params = _no_grad_adapt(policy, params, traj, inner_lr, per_task, gamma, normalise)
            per_task = True
    returns = torch.stack(per_step).double()
    n = returns.shape[1]
    out: dict[str, Any] = {
        "returns": returns,
        "mean": returns.mean(1).tolist(),
        "ci95": (1.96 * returns.std(1, unbiased=False) / math.sqrt(n)).tolist(),
    }
    if keep_trajectories:
        out["trajectories"] = trajs
    return out


def flat(params: Params) -> Tensor:
    return torch.cat([v.reshape(-1) for v in params.values()])


__all__ = [
    "PointNavigation",
    "Trajectories",
    "GaussianMLPPolicy",
    "rollout",
    "reward_to_go",
    "leave_one_out_baseline",
    "leave_one_out_scale",
    "advantages",
    "pg_surrogate",
    "policy_gradient",
    "adapt",
    "meta_loss",
    "MetaRLConfig",
    "maml_rl_step",
    "pretrain_step",
    "train_policy",
    "adaptation_returns",
    "flat",
    "detached",
]
