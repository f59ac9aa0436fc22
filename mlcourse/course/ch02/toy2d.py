"""MAML on 2-D binary classification: tasks, a tiny MLP, meta-training and the decision boundary (ch02).

A task is a boundary in the plane that splits the square ``[-extent, extent]^2`` into class 0 and class 1:

* ``"linear"``: a half-plane ``<w, x> > b`` with a random direction ``w`` (any angle, so either side can be
  class 1) and offset ``|b| <= 0.3 * extent``;
* ``"circle"``: a disc of radius ``U[0.45, 0.75] * extent`` centred within ``0.3 * extent`` of the origin;
  a coin decides whether the inside is class 1 or class 0;
* ``"mixed"``: each task is linear or circular with probability 1/2.

Tasks come as the course's ``TaskBatch`` (``support_x [T, 2K, 2]``, labels class-major, ``classes [T, 2]``), so
``make_learner("maml", ...)`` meta-trains on them unchanged. ``task_params [T, 4]`` holds
``(kind, a, b, c)``: kind 0 = linear with ``w = (cos a, sin a)``, offset ``b``; kind 1 = circle with centre
``(a, b)`` and signed radius ``c`` (negative: the inside is class 0). ``plots.maml_decision_boundaries`` draws
what :func:`decision_grid` computes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor, nn
from torch.func import functional_call

from mlcourse.algorithms import make_learner
from mlcourse.algorithms.core import Learner
from mlcourse.config import seed_everything, torch_threads
from mlcourse.data.tasks import TaskBatch
from mlcourse.train import Trainer

KINDS = ("linear", "circle", "mixed")


class ToyMLP(nn.Module):
    """2 -> hidden -> hidden -> 2 with ReLU, split into ``body`` and ``head`` like every model of the course."""

    def __init__(self, hidden: int = 40) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden={hidden} must be >= 1")
        self.body = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, 2)
        self.feature_dim = hidden

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def true_labels(points: Tensor, params: Tensor) -> Tensor:
    """Class (0/1, int64) of ``points [..., 2]`` under one task's ``params [4]`` (see the module docstring)."""
    kind, a, b, c = (float(v) for v in params)
    if kind == 0:
        return (points[..., 0] * math.cos(a) + points[..., 1] * math.sin(a) > b).long()
    inside = (points[..., 0] - a).square() + (points[..., 1] - b).square() < c * c
    return (inside if c > 0 else ~inside).long()


def _task_params(kind: str, extent: float, generator: torch.Generator) -> Tensor:
    u = torch.rand(4, generator=generator).tolist()
    if kind == "mixed":
        kind = "linear" if u[3] < 0.5 else "circle"
        u[3] = torch.rand(1, generator=generator).item()
    if kind == "linear":
        return torch.tensor([0.0, 2 * math.pi * u[0], 0.3 * extent * (2 * u[1] - 1), 0.0])
    radius = extent * (0.45 + 0.3 * u[2]) * (1.0 if u[3] < 0.5 else -1.0)
    return torch.tensor([1.0, 0.3 * extent * (2 * u[0] - 1), 0.3 * extent * (2 * u[1] - 1), radius])


def sample_tasks(
    num_tasks: int,
    k_shot: int = 5,
    n_query: int = 25,
    *,
    kind: str = "mixed",
    extent: float = 2.0,
    generator: Optional[torch.Generator] = None,
) -> TaskBatch:
    """``num_tasks`` 2-way tasks: ``k_shot`` support and ``n_query`` query points per class, uniform in the square
    (drawn until each class has enough points), labels class-major as in every ``TaskBatch``."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not known; allowed: {', '.join(KINDS)}")
    if num_tasks < 1 or k_shot < 1 or n_query < 1:
        raise ValueError(f"num_tasks, k_shot and n_query must be >= 1, got {num_tasks}, {k_shot}, {n_query}")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    need = k_shot + n_query
    sx, sy, qx, qy, params = [], [], [], [], []
    for _ in range(num_tasks):
        p = _task_params(kind, extent, generator)
        pools: list[list[Tensor]] = [[], []]
        while min(sum(len(t) for t in pool) for pool in pools) < need:
            pts = extent * (2 * torch.rand(8 * need, 2, generator=generator) - 1)
            lab = true_labels(pts, p)
            for cls in (0, 1):
                pools[cls].append(pts[lab == cls])
        chosen = [torch.cat(pool)[:need] for pool in pools]
        sx.append(torch.cat([c[:k_shot] for c in chosen]))
        qx.append(torch.cat([c[k_shot:] for c in chosen]))
        params.append(p)
    sy = torch.arange(2).repeat_interleave(k_shot).expand(num_tasks, -1)
    qy = torch.arange(2).repeat_interleave(n_query).expand(num_tasks, -1)
    return TaskBatch(
        torch.stack(sx),
        sy.clone(),
        torch.stack(qx),
        qy.clone(),
        classes=torch.arange(2).expand(num_tasks, -1).clone(),
        task_params=torch.stack(params),
    )


@dataclass
class ToyRun:
    """What :func:`meta_train` returns: the learner, its training curve ``(iterations, query losses)`` and the
    settings (``kind``, ``k_shot``, ``extent``) that :func:`sample_tasks` needs to draw new tasks like them."""

    learner: Learner
    history: tuple[list[int], list[float]]
    settings: dict = field(default_factory=dict)
    wall_time_s: float = 0.0


def meta_train(
    iterations: int,
    *,
    kind: str = "mixed",
    k_shot: int = 5,
    n_query: int = 15,
    meta_batch_size: int = 16,
    inner_lr: float = 0.3,
    inner_steps: int = 2,
    outer_lr: float = 3e-3,
    hidden: int = 40,
    extent: float = 2.0,
    seed: int = 0,
) -> ToyRun:
    """Meta-train ``make_learner("maml", ToyMLP(hidden))`` (second order, ``inner_steps`` steps of ``inner_lr``)
    with Adam(``outer_lr``) on fresh random tasks each iteration, on the CPU with one thread (these tensors are
    tiny: more threads only add overhead, and much more on a busy machine; the setting is restored after).
    About 5 ms per iteration."""
    if iterations < 0:
        raise ValueError(f"iterations={iterations} must be >= 0")
    with torch_threads(1):
        return _meta_train(
            iterations,
            kind=kind,
            k_shot=k_shot,
            n_query=n_query,
            meta_batch_size=meta_batch_size,
            inner_lr=inner_lr,
            inner_steps=inner_steps,
            outer_lr=outer_lr,
            hidden=hidden,
            extent=extent,
            seed=seed,
        )


def _meta_train(
    iterations: int,
    *,
    kind: str,
    k_shot: int,
    n_query: int,
    meta_batch_size: int,
    inner_lr: float,
    inner_steps: int,
    outer_lr: float,
    hidden: int,
    extent: float,
    seed: int,
) -> ToyRun:
    seed_everything(seed)
    generator = torch.Generator().manual_seed(seed)
    learner = make_learner("maml", ToyMLP(hidden), inner_lr=inner_lr, inner_steps=inner_steps)
    start = time.perf_counter()
    losses = Trainer(learner, outer_lr=outer_lr).run(
        lambda: sample_tasks(meta_batch_size, k_shot, n_query, kind=kind, extent=extent, generator=generator),
        iterations,
    )
    steps = list(range(1, iterations + 1))
    settings = dict(
        kind=kind,
        k_shot=k_shot,
        extent=extent,
        inner_lr=inner_lr,
        inner_steps=inner_steps,
        iterations=iterations,
        meta_batch_size=meta_batch_size,
        seed=seed,
    )
    return ToyRun(learner, (steps, losses), settings, time.perf_counter() - start)


def adapted_params(learner: Learner, task: TaskBatch, steps: int) -> dict[str, Tensor]:
    """phi: the learner's ``steps`` inner SGD steps (its own ``adapt``) on the support set of ``task`` (one task)."""
    return {k: v[0] for k, v in learner.adapt(task, steps=steps).items()}


def query_accuracy(learner: Learner, task: TaskBatch, steps: Sequence[int] = (0, 1, 5)) -> dict[int, float]:
    """Query accuracy of one task after each number of inner steps (0 = theta itself)."""
    return {s: float(learner.evaluate(task, inner_steps=s)["query_accuracy"][0]) for s in steps}


@dataclass
class DecisionGrid:
    """:func:`decision_grid`'s numbers: ``xs``/``ys`` ``[R]`` grid axes; ``probs[s]`` ``[R, R]`` p(class 1) after
    ``s`` inner steps; ``accuracy[s]`` on the query points; ``truth`` ``[R, R]`` the task's true classes."""

    xs: Tensor
    ys: Tensor
    probs: dict[int, Tensor]
    accuracy: dict[int, float]
    truth: Tensor


def decision_grid(
    learner: Learner, task: TaskBatch, steps: Sequence[int] = (0, 1, 5), *, extent: float = 2.0, resolution: int = 120
) -> DecisionGrid:
    """p(class 1) on a ``resolution x resolution`` grid over the square, at theta (0 steps) and at phi after each
    number of inner steps on the task's support set; plus the query accuracy at each."""
    if task.num_tasks != 1:
        raise ValueError(f"decision_grid needs one task (batch.task(i)), got {task.num_tasks}")
    xs = torch.linspace(-extent, extent, resolution)
    gx, gy = torch.meshgrid(xs, xs, indexing="xy")
    grid = torch.stack([gx, gy], dim=-1).reshape(-1, 2)
    probs = {}
    with torch.no_grad():
        for s in steps:
            phi = adapted_params(learner, task, s)
            probs[s] = functional_call(learner.model, phi, (grid,)).softmax(-1)[:, 1].reshape(resolution, resolution)
    truth = true_labels(torch.stack([gx, gy], dim=-1), task.task_params[0]) if task.task_params is not None else None
    return DecisionGrid(xs, xs.clone(), probs, query_accuracy(learner, task, steps), truth)


__all__ = [
    "KINDS",
    "ToyMLP",
    "ToyRun",
    "DecisionGrid",
    "sample_tasks",
    "true_labels",
    "meta_train",
    "adapted_params",
    "query_accuracy",
    "decision_grid",
]
