"""The public adaptation API (float64): ``learner.adapt(support, params=None, *, steps, inner_lr, differentiable)`` and
``learner.predict(state, x, params=None, *, differentiable)``. ``evaluate`` is built on them; each algorithm adapts
what it should and nothing else; with ``differentiable=True`` they back-propagate exactly the meta-gradient of
``learner(batch).loss``; ``params`` replaces the learner's meta-parameters without touching them; a support set alone
is enough."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_algorithms import learner
from test_algorithms_helpers import image_batch, meta_grad, rel, sine_batch
from torch.func import functional_call

from mlcourse.algorithms import ALGORITHMS, MAML, REGISTRY, make_learner
from mlcourse.algorithms.core import Learner, subdict, task_metrics
from mlcourse.models import SinusoidMLP

F64 = torch.float64
pytestmark = pytest.mark.usefixtures("one_thread")


def _metrics(lrn, batch, steps):
    out = lrn.predict(lrn.adapt(batch, steps=steps), batch.query_x)
    n = out.shape[-1]
    loss = F.cross_entropy(out.reshape(-1, n), batch.query_y.reshape(-1), reduction="none").reshape(batch.query_y.shape)
    return loss.mean(-1), (out.argmax(-1) == batch.query_y).to(F64).mean(-1)


@pytest.mark.parametrize("vectorise", [True, False])
@pytest.mark.parametrize("name", ALGORITHMS)
def test_evaluate_is_predict_after_adapt(name: str, vectorise: bool) -> None:
    lrn, batch = learner(name, 2, vectorise=vectorise), image_batch()
    for steps in (0, 2):
        loss, accuracy = _metrics(lrn, batch, steps)
        reference = lrn.evaluate(batch, inner_steps=steps)
        assert torch.allclose(loss, reference["query_loss"], rtol=1e-12, atol=1e-12), (name, steps)
        assert torch.equal(accuracy, reference["query_accuracy"]), (name, steps)


@pytest.mark.parametrize("name", ["maml", "metasgd", "anil", "protonet", "matchingnet", "pretrain", "protomaml"])
def test_vectorised_adapt_equals_the_loop(name: str) -> None:
    batch = image_batch()
    fast, slow = learner(name, 3, vectorise=True), learner(name, 3, vectorise=False)
    slow.load_state_dict(fast.state_dict())
    a, b = fast.adapt(batch), slow.adapt(batch)
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], rtol=1e-10, atol=1e-12) for k in a)


def test_anil_adapts_the_head_only() -> None:
    """ANIL's inner loop moves the head; the body stays theta's, also through the base class's method."""
    anil, batch = learner("anil", 3), image_batch()
    for state in (anil.adapt(batch), MAML.adapt(anil, batch)):
        assert set(state) == {"head.weight", "head.bias"}
        theta = dict(anil.model.named_parameters())
        assert not torch.allclose(state["head.weight"][0], theta["head.weight"])
        x = batch.query_x[1]
        body_theta = {**{k: v.detach() for k, v in theta.items()}, **{k: v[1] for k, v in state.items()}}
        expected = functional_call(anil.model, body_theta, (x,))
        assert torch.allclose(anil.predict(state, batch.query_x)[1], expected, rtol=1e-12)
    maml = learner("maml", 3, model=anil.model)
    assert any(k.startswith("body.") for k in maml.adapt(batch))  # MAML moves every parameter


def test_inner_lr_override_and_meta_sgd_rates() -> None:
    """``inner_lr=None`` is the learner's own rule (Meta-SGD: its learned rates); a float replaces it."""
    batch = image_batch()
    maml = learner("maml", 1)
    x, y = batch.support_x[0], batch.support_y[0]
    theta = dict(maml.model.named_parameters())
    grads = torch.autograd.grad(F.cross_entropy(functional_call(maml.model, theta, (x,)), y), list(theta.values()))
    for lr in (None, 0.05):
        phi = maml.adapt(batch, steps=1, inner_lr=lr)
        step = 0.1 if lr is None else lr
        for (k, p), g in zip(theta.items(), grads):
            assert torch.allclose(phi[k][0], p - step * g, rtol=1e-10, atol=1e-12), (k, lr)
    metasgd = learner("metasgd", 1, model=maml.model)
    with torch.no_grad():
        for rate in metasgd.lrs.values():
            rate.mul_(3.0)
    learned, plain = metasgd.adapt(batch, steps=1), metasgd.adapt(batch, steps=1, inner_lr=0.1)
    for (k, p), g in zip(theta.items(), grads):
        assert torch.allclose(learned[k][0], p - 0.3 * g, rtol=1e-10, atol=1e-12)
        assert torch.allclose(plain[k][0], p - 0.1 * g, rtol=1e-10, atol=1e-12)


def test_metric_learners_adapt_without_gradients() -> None:
    batch = image_batch()
    protos = learner("protonet", 1).adapt(batch)["prototypes"]
    assert protos.shape[:2] == (batch.num_tasks, batch.n_way)
    support = learner("matchingnet", 1).adapt(batch)
    norms = support["support"].norm(dim=-1)  # unit length (an all-zero ReLU embedding stays zero)
    assert bool((((norms - 1).abs() < 1e-12) | (norms == 0)).all()) and bool((norms > 0).any())
    probe = learner("pretrain", 4).adapt(batch)
    assert set(probe) == {"probe.weight", "probe.bias"} and probe["probe.weight"].shape[1] == batch.n_way


def test_adapt_and_predict_say_what_is_wrong() -> None:
    lrn, batch = learner("maml", 1), image_batch()
    with pytest.raises(ValueError, match="inner_steps=-1"):
        lrn.adapt(batch, steps=-1)
    with pytest.raises(ValueError, match="inner_lr=0"):
        lrn.adapt(batch, inner_lr=0)
    with pytest.raises(ValueError, match=r"x has 1 task\(s\) but the state was adapted to 2"):
        lrn.predict(lrn.adapt(batch), batch.query_x[:1])


def test_adapt_builds_no_meta_gradient() -> None:
    lrn, batch = learner("maml", 2), image_batch()
    state = lrn.adapt(batch)
    assert all(not v.requires_grad for v in state.values())
    assert not lrn.predict(state, batch.query_x).requires_grad
    subdict(state, "head.")  # the state is a plain {name: tensor} dict


def test_reptile_logs_its_query_loss_not_its_surrogate() -> None:
    from mlcourse.train import logged_loss

    batch = image_batch()
    for name in ("reptile", "maml"):
        lrn = learner(name, 2)
        out = lrn(batch)
        query = float(out.metrics["query_loss"].float().mean())
        logged = logged_loss(lrn, out, float(out.loss.detach()))
        if name == "reptile":
            assert logged == query and abs(float(out.loss.detach()) - query) > 1e-3  # the surrogate is another number
        else:
            assert logged == float(out.loss.detach()) and abs(logged - query) < 1e-6  # MAML: the query loss itself


@pytest.mark.parametrize("name", ALGORITHMS)
def test_adaptation_curve_columns_are_evaluate_after_s_steps(name: str) -> None:
    lrn, batch = learner(name, 1), image_batch()
    curve = lrn.adaptation_curve(batch, 3)
    assert curve["query_loss"].shape == (batch.num_tasks, 4)
    for s in range(4):
        reference = lrn.evaluate(batch, inner_steps=s)
        for key, values in reference.items():
            assert torch.allclose(curve[key][:, s], values, rtol=1e-10, atol=1e-12), (name, s, key)
    if name in ("maml", "metasgd", "anil"):
        assert not torch.allclose(curve["query_loss"][:, 0], curve["query_loss"][:, 3])  # adaptation moves it
    lr_curve = lrn.adaptation_curve(batch, 2, inner_lr=0.05)
    assert torch.allclose(lr_curve["query_loss"][:, 0], curve["query_loss"][:, 0])


# Reptile, the article's rule and the pretrained baseline meta-train with their own rule, not through a query loss
TRAINED_BY_ADAPT_THEN_PREDICT = [n for n in ALGORITHMS if REGISTRY[n].task_train is Learner.task_train]


def _flat_grads(lrn: Learner) -> torch.Tensor:
    return torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).flatten() for p in lrn.parameters()])


@pytest.mark.parametrize("norm_mode", ["transductive", "support"])
@pytest.mark.parametrize("name", TRAINED_BY_ADAPT_THEN_PREDICT)
def test_differentiable_adapt_and_predict_give_the_meta_gradient(name: str, norm_mode: str) -> None:
    lrn, batch = learner(name, 2, norm_mode=norm_mode), image_batch()
    reference = meta_grad(lrn, batch, True)
    lrn.zero_grad(set_to_none=True)
    state = lrn.adapt(batch, differentiable=True)
    outputs = lrn.predict(state, batch.query_x, differentiable=True)
    loss = torch.stack([task_metrics(o, y, True)[0] for o, y in zip(outputs, batch.query_y)]).mean()
    loss.backward()
    assert reference.norm() > 0 and rel(_flat_grads(lrn), reference) < 1e-10, (name, norm_mode)


@pytest.mark.parametrize("name", ["maml", "metasgd", "anil", "protonet"])
def test_params_replace_the_meta_parameters_without_touching_them(name: str) -> None:
    lrn, moved, batch = learner(name, 2), learner(name, 2), image_batch()
    g = torch.Generator().manual_seed(1)
    other = {
        k: v.detach() + 0.05 * torch.randn(v.shape, generator=g, dtype=v.dtype) for k, v in lrn.model.named_parameters()
    }
    with torch.no_grad():
        for k, p in moved.model.named_parameters():
            p.copy_(other[k])
    before = {k: v.clone() for k, v in lrn.state_dict().items()}
    state, expected = lrn.adapt(batch, other), moved.adapt(batch)
    assert all(torch.allclose(state[k], expected[k], rtol=1e-12, atol=1e-12) for k in expected)
    x = batch.query_x
    assert torch.allclose(lrn.predict(state, x, other), moved.predict(expected, x), rtol=1e-12, atol=1e-12)
    assert all(torch.equal(v, before[k]) for k, v in lrn.state_dict().items())  # the learner's own are unchanged
    grouped = lrn.adapt(batch, {**lrn.meta_parameters(), "model": other})
    assert all(torch.equal(grouped[k], state[k]) for k in state)


def test_a_support_set_alone_is_enough_and_bad_params_are_named() -> None:
    batch = sine_batch()
    lrn = make_learner("maml", SinusoidMLP().double(), inner_lr=0.01, inner_steps=3)
    from_pair = lrn.adapt((batch.support_x, batch.support_y))
    from_batch = lrn.adapt(batch)
    assert all(torch.equal(from_pair[k], from_batch[k]) for k in from_batch)
    assert all(not v.requires_grad for v in from_pair.values())  # not differentiable: no graph kept
    with pytest.raises(ValueError, match=r"params names \['nonsense'\]"):
        lrn.adapt(batch, {"nonsense": torch.zeros(1)})


def test_partial_params_keep_the_learner_s_other_tensors_and_a_positional_step_count_is_named() -> None:
    lrn, batch = learner("maml", 2), image_batch()
    head = {k: v.detach() + 1 for k, v in lrn.model.named_parameters() if k.startswith("head.")}
    for given in (head, {"model": head}):  # one {name: tensor}, or grouped
        merged = lrn.meta_parameters(given)["model"]
        assert set(merged) == {k for k, _ in lrn.model.named_parameters()}
        assert all(torch.equal(merged[k], head[k]) for k in head)
    with pytest.raises(TypeError, match=r"keyword arguments: adapt\(support, steps=5\)"):
        lrn.adapt(batch, 5)
