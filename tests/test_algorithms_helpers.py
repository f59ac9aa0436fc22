"""Shared helpers (no tests here; the shared fixtures live in conftest.py) for test_algorithms*.py and others: tiny float64 task batches, flat
meta-gradients, finite differences. Named test_algorithms_* so it stays within the algorithm tests' files."""

from __future__ import annotations

import torch
from torch import Tensor

from mlcourse.data.tasks import TaskBatch


def image_batch(
    tasks: int = 2,
    n_way: int = 3,
    k_shot: int = 2,
    n_query: int = 2,
    size: int = 12,
    seed: int = 0,
    num_classes: int = 6,
    dtype: torch.dtype = torch.float64,
) -> TaskBatch:
    g = torch.Generator().manual_seed(seed)
    sy = torch.arange(n_way).repeat_interleave(k_shot).repeat(tasks, 1)
    qy = torch.arange(n_way).repeat_interleave(n_query).repeat(tasks, 1)
    classes = torch.stack([torch.randperm(num_classes, generator=g)[:n_way] for _ in range(tasks)])
    return TaskBatch(
        torch.rand(tasks, n_way * k_shot, 1, size, size, generator=g, dtype=dtype),
        sy,
        torch.rand(tasks, n_way * n_query, 1, size, size, generator=g, dtype=dtype),
        qy,
        classes,
    )


def sine_batch(tasks: int = 3, k: int = 5, q: int = 6, seed: int = 0, dtype: torch.dtype = torch.float64) -> TaskBatch:
    g = torch.Generator().manual_seed(seed)
    amp, phase = (
        torch.rand(tasks, 1, 1, generator=g, dtype=dtype) * 4 + 1,
        torch.rand(tasks, 1, 1, generator=g, dtype=dtype) * 3,
    )
    sx, qx = (
        torch.rand(tasks, k, 1, generator=g, dtype=dtype) * 10 - 5,
        torch.rand(tasks, q, 1, generator=g, dtype=dtype) * 10 - 5,
    )
    return TaskBatch(sx, amp * torch.sin(sx + phase), qx, amp * torch.sin(qx + phase))


def meta_grad(learner: torch.nn.Module, batch: TaskBatch, vectorise: bool) -> Tensor:
    """Flat meta-gradient of ``learner(batch).loss`` over ``learner.parameters()`` (unused -> 0)."""
    learner.vectorise = vectorise
    learner.zero_grad(set_to_none=True)
    learner(batch).loss.backward()
    return torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).flatten() for p in learner.parameters()])


def rel(a: Tensor, b: Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def quotient_error(at, analytic: float, eps: float) -> float:
    return abs((at(eps) - at(-eps)) / (2 * eps) - analytic) / max(abs(analytic), 1e-12)


def fd_directional(fn, params: list[Tensor], grads: Tensor, seed: int = 0, directions: int = 2) -> float:
    """Worst relative error of ``<grad, v>`` against central differences of ``fn()`` along random ``v``.

    The losses are piecewise smooth (ReLU, max-pool; MAML's inner gradient even jumps at a kink), so a
    difference quotient that happens to straddle a kink is meaningless: per direction we take the best of
    two step sizes (1e-6, 1e-7, float64). A wrong gradient fails at both.
    """
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for _ in range(directions):
        v = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]
        analytic = float(grads @ torch.cat([d.flatten() for d in v]))

        def at(eps: float) -> float:
            with torch.no_grad():
                for p, d in zip(params, v):
                    p.add_(eps * d)
                value = float(fn())
                for p, d in zip(params, v):
                    p.sub_(eps * d)
            return value

        error = quotient_error(at, analytic, 1e-6)
        if error >= 1e-6:  # straddled a kink? try the smaller step
            error = min(error, quotient_error(at, analytic, 1e-7))
        worst = max(worst, error)
    return worst


def test_inner_optimisers_update_rules_in_float64():
    """InnerSGD: p - lr * grad with one rate or one per tensor; Proximal: the same optimiser on
    L(p) + lam/2 ||p - anchor||^2 (compared with the gradient written out by hand)."""
    from mlcourse.algorithms.execution import grad_autograd
    from mlcourse.algorithms.inner import InnerSGD, Proximal

    torch.manual_seed(0)
    target = torch.randn(3, dtype=torch.float64)
    params = {"a": torch.randn(3, dtype=torch.float64), "b": torch.randn(2, dtype=torch.float64)}
    loss = lambda p: ((p["a"] - target) ** 2).sum() + (p["b"] ** 4).sum()  # noqa: E731
    grad = lambda p: {"a": 2 * (p["a"] - target), "b": 4 * p["b"] ** 3}  # noqa: E731
    plain = InnerSGD(0.1).run(loss, params, 1, create_graph=False, grad_fn=grad_autograd)
    assert all(torch.allclose(plain[k], params[k] - 0.1 * grad(params)[k], rtol=0, atol=1e-14) for k in params)
    rates = {"a": torch.tensor(0.2, dtype=torch.float64), "b": torch.tensor(0.05, dtype=torch.float64)}
    per_tensor = InnerSGD(rates).run(loss, params, 1, create_graph=False, grad_fn=grad_autograd)
    assert all(torch.allclose(per_tensor[k], params[k] - rates[k] * grad(params)[k], atol=1e-14) for k in params)
    anchor = {k: torch.zeros_like(v) for k, v in params.items()}
    prox = Proximal(InnerSGD(0.1), 3.0, anchor).run(loss, params, 1, create_graph=False, grad_fn=grad_autograd)
    expected = {k: params[k] - 0.1 * (grad(params)[k] + 3.0 * (params[k] - anchor[k])) for k in params}
    assert all(torch.allclose(prox[k], expected[k], atol=1e-14) for k in params)


def test_task_map_loop_only_ignores_vectorise_and_compile():
    from mlcourse.algorithms import make_learner
    from mlcourse.models import Conv4

    learner = make_learner("checkpointed", Conv4(n_out=3, hidden=4, image_size=8), vectorise=True, compile=True)
    assert not learner.vectorise and not learner.use_compile
    learner.vectorise = learner.use_compile = True
    assert not learner.vectorise and not learner.use_compile
    maml = make_learner("maml", Conv4(n_out=3, hidden=4, image_size=8), vectorise=True)
    maml.vectorise = False
    assert not maml.task_map.vectorise and maml.compile_seconds == 0.0 and maml.compile_notice is None
