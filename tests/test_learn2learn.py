"""learn2learn (built from source) imports and agrees with our learners: one MAML adapt step is
theta - lr * grad, and l2l's MAML / MetaSGD meta-gradients equal ours on the same model and tasks."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from test_algorithms_helpers import image_batch, meta_grad, rel

from mlcourse.algorithms import make_learner
from mlcourse.models import Conv4

l2l = pytest.importorskip("learn2learn")  # prints a gym deprecation warning on import: harmless

pytestmark = pytest.mark.usefixtures("one_thread")


def test_learn2learn_maml_adapt_step_is_sgd() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    maml = l2l.algorithms.MAML(model, lr=0.3)
    clone = maml.clone()
    loss = F.mse_loss(clone(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)
    clone.adapt(loss)
    for theta, g, phi in zip(model.parameters(), grads, clone.parameters()):
        assert torch.allclose(phi, theta - 0.3 * g, atol=1e-14)


def l2l_meta_grad(wrapper, model_params, batch, steps: int) -> torch.Tensor:
    wrapper.zero_grad(set_to_none=True)
    total = 0.0
    for t in range(batch.num_tasks):
        learner = wrapper.clone()
        for _ in range(steps):
            learner.adapt(F.cross_entropy(learner(batch.support_x[t]), batch.support_y[t]))
        total = total + F.cross_entropy(learner(batch.query_x[t]), batch.query_y[t])
    (total / batch.num_tasks).backward()
    return torch.cat([p.grad.flatten() for p in model_params])


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("name", ["maml", "fomaml", "metasgd"])
def test_meta_gradients_equal_learn2learn(name: str, steps: int) -> None:
    torch.manual_seed(0)
    model, batch = Conv4(hidden=4, image_size=12, n_out=3).double(), image_batch()
    ours = make_learner(name, model, inner_lr=0.1, inner_steps=steps)
    mine = meta_grad(ours, batch, True)
    reference_model = copy.deepcopy(model)
    if name == "metasgd":
        wrapper = l2l.algorithms.MetaSGD(reference_model, lr=0.1)
        params = list(reference_model.parameters()) + list(wrapper.lrs)
    else:
        wrapper = l2l.algorithms.MAML(reference_model, lr=0.1, first_order=name == "fomaml")
        params = list(reference_model.parameters())
    theirs = l2l_meta_grad(wrapper, params, batch, steps)
    assert rel(mine, theirs) < 1e-10, rel(mine, theirs)
