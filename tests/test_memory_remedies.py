"""Issue 27's remedies for MAML's memory, float64: checkpointed MAML gives MAML's meta-gradient while it stores far
less of the inner loop's graph; truncated MAML interpolates between MAML (every step back-propagated) and
first-order MAML (none)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_algorithms import conv
from test_algorithms_helpers import image_batch, meta_grad, rel
from torch import nn
from torch.func import functional_call

from mlcourse.algorithms import make_learner
from mlcourse.bench import graph_saved_bytes

pytestmark = pytest.mark.usefixtures("one_thread")


def _learner(name: str, steps: int, **kw):
    return make_learner(name, conv(), inner_lr=0.1, inner_steps=steps, vectorise=False, **kw)


@pytest.mark.parametrize("steps", [1, 3, 10])
def test_checkpointed_maml_gives_maml_s_meta_gradient(steps: int) -> None:
    batch = image_batch()
    exact = meta_grad(_learner("maml", steps), batch, False)
    checkpointed = meta_grad(_learner("checkpointed", steps), batch, True)  # asked to vectorise: runs the loop
    assert exact.norm() > 0 and rel(checkpointed, exact) < 1e-12, (steps, rel(checkpointed, exact))


def test_checkpointed_maml_stores_a_fraction_of_the_inner_loop_s_graph() -> None:
    batch = image_batch()
    held = {}
    for name in ("maml", "checkpointed"):
        lrn = _learner(name, 10)
        held[name] = graph_saved_bytes(lambda lrn=lrn: lrn(batch).loss, list(lrn.parameters()))["held"]
    assert held["checkpointed"] < held["maml"] / 4, held


@pytest.mark.parametrize("vectorise", [True, False])
def test_truncated_maml_runs_from_first_order_to_second_order(vectorise: bool) -> None:
    batch, steps = image_batch(), 3
    maml = meta_grad(_learner("maml", steps), batch, vectorise)
    first_order = meta_grad(_learner("fomaml", steps), batch, vectorise)
    grads = {k: meta_grad(_learner("truncated", steps, backprop_steps=k), batch, vectorise) for k in range(steps + 2)}
    assert rel(grads[steps], maml) < 1e-12 and rel(grads[steps + 1], maml) < 1e-12  # more than K: all of them
    assert rel(grads[0], first_order) < 1e-12
    for k in (1, 2):  # in between: neither
        assert rel(grads[k], maml) > 1e-6 and rel(grads[k], first_order) > 1e-6, k
    with pytest.raises(ValueError, match="backprop_steps=-1 is not allowed"):
        _learner("truncated", steps, backprop_steps=-1)


def _dense_implicit_gradient(lrn, batch) -> torch.Tensor:
    """The exact implicit meta-gradient, mean over tasks of ``(I + H/lam)^-1 grad L_query(phi*)``, with the dense
    Hessian of the support loss at the adapted phi* (``torch.autograd.functional.hessian``) and a direct solve."""
    names = [k for k, _ in lrn.model.named_parameters()]
    shapes = [p.shape for _, p in lrn.model.named_parameters()]
    sizes = [s.numel() for s in shapes]
    state = lrn.adapt(batch)  # phi*, the inner problem solved by the learner's own steps

    def unflat(v):
        return dict(zip(names, (c.view(s) for c, s in zip(v.split(sizes), shapes))))

    total = 0
    for t in range(batch.num_tasks):
        phi = torch.cat([state[k][t].flatten() for k in names])
        sx, sy, qx, qy = batch.support_x[t], batch.support_y[t], batch.query_x[t], batch.query_y[t]
        support = lambda v: F.cross_entropy(functional_call(lrn.model, unflat(v), (sx,)), sy)  # noqa: E731
        query = lambda v: F.cross_entropy(functional_call(lrn.model, unflat(v), (qx,)), qy)  # noqa: E731
        hessian = torch.autograd.functional.hessian(support, phi)
        system = (1 + lrn.cg_damping) * torch.eye(len(phi), dtype=phi.dtype) + hessian / lrn.imaml_lambda
        total = total + torch.linalg.solve(system, torch.autograd.functional.jacobian(query, phi))
    return total / batch.num_tasks


def _smooth_imaml(steps: int, **kw):
    """iMAML on a small smooth network (tanh), where gradient descent reaches the proximal problem's optimum: a
    network with ReLU, max-pooling and batch statistics over six images has kinks that keep it from converging."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 6), nn.Tanh(), nn.Linear(6, 3)).to(torch.float64)
    return make_learner("imaml", model, inner_lr=0.1, inner_steps=steps, vectorise=False, **kw)


SMALL = {"size": 8}  # 8x8 images: a network of 411 parameters, whose dense Hessian is cheap


def test_imaml_inner_loop_reaches_the_proximal_optimum() -> None:
    """The adapted phi* is a stationary point of ``L_support + lam/2 ||phi - theta||^2`` (the premise of the
    implicit gradient)."""
    lrn, batch = _smooth_imaml(300), image_batch(tasks=1, **SMALL)
    state = lrn.adapt(batch)
    theta = dict(lrn.model.named_parameters())
    phi = {k: state[k][0].detach().requires_grad_() for k in theta}
    loss = F.cross_entropy(functional_call(lrn.model, phi, (batch.support_x[0],)), batch.support_y[0])
    loss = loss + 0.5 * lrn.imaml_lambda * sum((phi[k] - theta[k].detach()).square().sum() for k in phi)
    grads = torch.autograd.grad(loss, list(phi.values()))
    assert float(torch.cat([g.flatten() for g in grads]).norm()) < 1e-10


@pytest.mark.parametrize("vectorise", [True, False])
def test_imaml_meta_gradient_is_the_exact_implicit_gradient(vectorise: bool) -> None:
    batch = image_batch(**SMALL)
    exact = _dense_implicit_gradient(_smooth_imaml(300), batch)
    errors = {}
    for cg_steps in (1, 2, 5, 20, 60):
        lrn = _smooth_imaml(300, cg_steps=cg_steps)
        errors[cg_steps] = rel(meta_grad(lrn, batch, vectorise), exact)
    print("iMAML meta-gradient error against the dense implicit gradient, by CG steps:", errors)
    assert errors[60] < 1e-10, errors
    assert errors[1] > errors[5] > errors[20], errors  # more CG steps, a more exact solve
    damped = _smooth_imaml(300, cg_steps=60, cg_damping=0.5)  # the damped system ((1 + delta) I + H/lam) g = v
    assert rel(meta_grad(damped, batch, vectorise), _dense_implicit_gradient(damped, batch)) < 1e-10
    assert rel(meta_grad(damped, batch, vectorise), exact) > 1e-3  # and that is another vector


def test_imaml_refuses_a_differentiable_adaptation_and_bad_settings() -> None:
    lrn, batch = _learner("imaml", 2), image_batch()
    with pytest.raises(ValueError, match="imaml adapts without a graph"):
        lrn.adapt(batch, differentiable=True)
    with pytest.raises(ValueError, match="imaml_lambda=0 is not allowed"):
        _learner("imaml", 2, imaml_lambda=0)
    with pytest.raises(ValueError, match="cg_steps=0 is not allowed"):
        _learner("imaml", 2, cg_steps=0)
    with pytest.raises(ValueError, match="cg_damping=-1 is not allowed"):
        _learner("imaml", 2, cg_damping=-1)
