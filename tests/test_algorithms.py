"""Meta-gradients of every learner (float64): vectorised (torch.func) == per-task loop == finite differences
(or, for FOMAML and Reptile, == an explicit re-implementation of their definition with torch.optim.SGD)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from test_algorithms_helpers import fd_directional, image_batch, meta_grad, rel, sine_batch

from mlcourse.algorithms import ALGORITHMS, MetaOutput, make_learner
from mlcourse.models import Conv4, SinusoidMLP

F64 = torch.float64

pytestmark = pytest.mark.usefixtures("one_thread")


def conv(seed: int = 0, attention: bool = False, **kw) -> Conv4:
    torch.manual_seed(seed)
    return Conv4(hidden=4, image_size=12, n_out=3, attention=attention, **kw).to(F64)


def learner(name: str, steps: int, model=None, **kw):
    extra = {"num_classes": 6} if name == "pretrain" else {}
    return make_learner(name, model if model is not None else conv(), inner_lr=0.1, inner_steps=steps, **extra, **kw)


# --- vectorised == loop, and == finite differences -----------------------------------------------------------
@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("name", ALGORITHMS)
def test_vectorised_meta_gradient_equals_loop(name: str, steps: int) -> None:
    lrn, batch = learner(name, steps), image_batch()
    vec, loop = meta_grad(lrn, batch, True), meta_grad(lrn, batch, False)
    assert vec.norm() > 0
    assert rel(vec, loop) < 1e-10, (name, steps, rel(vec, loop))


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize(
    "name", ["maml", "metasgd", "anil", "article", "protonet", "matchingnet", "pretrain", "protomaml"]
)
def test_meta_gradient_matches_finite_differences(name: str, steps: int) -> None:
    """These algorithms' loss is a function of the meta-parameters: its gradient must match FD."""
    lrn, batch = learner(name, steps, conv(attention=name in ("maml", "anil"))), image_batch()
    grads = meta_grad(lrn, batch, True)
    assert fd_directional(lambda: lrn(batch).loss, list(lrn.parameters()), grads) < 1e-6


@pytest.mark.parametrize("steps", [0, 1, 3])
def test_maml_regression_matches_loop_and_finite_differences(steps: int) -> None:
    torch.manual_seed(0)
    lrn, batch = make_learner("maml", SinusoidMLP(hidden=8).to(F64), inner_lr=0.05, inner_steps=steps), sine_batch()
    vec = meta_grad(lrn, batch, True)
    assert rel(vec, meta_grad(lrn, batch, False)) < 1e-10
    assert fd_directional(lambda: lrn(batch).loss, list(lrn.parameters()), vec) < 1e-6


def _sgd_copy(model, x, y, lr: float, steps: int, classification: bool = True):
    """The definition, written the obvious way: a copy of the model trained with torch.optim.SGD."""
    phi = copy.deepcopy(model)
    opt = torch.optim.SGD(phi.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        out = phi(x)
        (F.cross_entropy(out, y) if classification else F.mse_loss(out, y)).backward()
        opt.step()
    return phi


@pytest.mark.parametrize("steps", [1, 3])
def test_fomaml_is_query_gradient_at_adapted_parameters(steps: int) -> None:
    """FOMAML's meta-gradient := mean_t dL_query/dphi at phi_t (phi_t from plain SGD on the support set)."""
    model, batch = conv(), image_batch()
    lrn = learner("fomaml", steps, model)
    vec = meta_grad(lrn, batch, True)
    assert rel(vec, meta_grad(lrn, batch, False)) < 1e-10
    expected = torch.zeros_like(vec)
    for t in range(batch.num_tasks):
        phi = _sgd_copy(model, batch.support_x[t], batch.support_y[t], 0.1, steps)
        params = list(phi.parameters())
        g = torch.cat(
            [x.flatten() for x in torch.autograd.grad(F.cross_entropy(phi(batch.query_x[t]), batch.query_y[t]), params)]
        )
        expected += g / batch.num_tasks
        # ... and that per-task gradient is a true gradient of L_query as a function of phi (FD in phi):
        fd = fd_directional(lambda: F.cross_entropy(phi(batch.query_x[t]), batch.query_y[t]), params, g, seed=t)
        assert fd < 1e-6
    assert rel(vec, expected) < 1e-10
    # it is NOT the MAML gradient (the second-order terms matter here)
    assert rel(vec, meta_grad(learner("maml", steps, model), batch, True)) > 1e-3


@pytest.mark.parametrize("include_query", [False, True])
@pytest.mark.parametrize("steps", [1, 3])
def test_reptile_gradient_is_mean_of_theta_minus_phi(steps: int, include_query: bool) -> None:
    model, batch = conv(), image_batch()
    lrn = learner("reptile", steps, model, include_query=include_query)
    vec = meta_grad(lrn, batch, True)
    assert rel(vec, meta_grad(lrn, batch, False)) < 1e-10
    theta = torch.cat([p.detach().flatten() for p in model.parameters()])
    expected = torch.zeros_like(theta)
    for t in range(batch.num_tasks):
        x, y = batch.support_x[t], batch.support_y[t]
        if include_query:
            x, y = torch.cat([x, batch.query_x[t]]), torch.cat([y, batch.query_y[t]])
        phi = _sgd_copy(model, x, y, 0.1, steps)
        expected += (theta - torch.cat([p.detach().flatten() for p in phi.parameters()])) / batch.num_tasks
        if steps == 1:  # theta - phi_1 = lr * grad L_support(theta): check that against finite differences
            params = list(model.parameters())
            g = torch.cat([p.flatten() for p in torch.autograd.grad(F.cross_entropy(model(x), y), params)])
            assert rel(theta - torch.cat([p.detach().flatten() for p in phi.parameters()]), 0.1 * g) < 1e-12
            assert fd_directional(lambda: F.cross_entropy(model(x), y), params, g, seed=t) < 1e-6
    assert rel(vec, expected) < 1e-10


def test_article_rule_is_mean_support_gradient_at_theta() -> None:
    model, batch = conv(), image_batch()
    vec = meta_grad(learner("article", 3, model), batch, True)
    params = list(model.parameters())
    losses = [F.cross_entropy(model(batch.support_x[t]), batch.support_y[t]) for t in range(batch.num_tasks)]
    expected = torch.cat([g.flatten() for g in torch.autograd.grad(torch.stack(losses).mean(), params)])
    assert rel(vec, expected) < 1e-12


def test_maml_with_zero_steps_is_query_loss_at_theta() -> None:
    model, batch = conv(), image_batch()
    out = learner("maml", 0, model)(batch)
    expected = torch.stack([F.cross_entropy(model(batch.query_x[t]), batch.query_y[t]) for t in range(batch.num_tasks)])
    assert torch.allclose(out.metrics["query_loss"], expected, rtol=1e-12)
    assert torch.allclose(out.loss, expected.mean(), rtol=1e-12)


def test_protonet_and_matchingnet_match_their_formulas() -> None:
    model, batch = conv(), image_batch(k_shot=2)
    for t in range(batch.num_tasks):
        fs, fq = model.features(batch.support_x[t]), model.features(batch.query_x[t])
        protos = torch.stack([fs[batch.support_y[t] == c].mean(0) for c in range(3)])
        proto_loss = F.cross_entropy(-(torch.cdist(fq, protos) ** 2), batch.query_y[t])
        attention = torch.softmax(10.0 * F.cosine_similarity(fq[:, None], fs[None], dim=-1), dim=-1)  # tau = 10
        probs = attention @ F.one_hot(batch.support_y[t], 3).to(F64)
        match_loss = F.nll_loss(probs.log(), batch.query_y[t])
        assert torch.allclose(learner("protonet", 1, model)(batch).metrics["query_loss"][t], proto_loss, rtol=1e-10)
        assert torch.allclose(learner("matchingnet", 1, model)(batch).metrics["query_loss"][t], match_loss, rtol=1e-10)


def test_matchingnet_temperature_is_learned_and_lifts_the_cap() -> None:
    """With tau = 1 the attention over cosines in [-1, 1] caps p(correct) in 5-way 1-shot even for the best
    embedding there is (a regular simplex, cos = -1/4 between classes): e / (e + 4 e^(-1/4)) ~ 0.47, below the
    loose bound e / (e + 4/e) ~ 0.65; the temperature (10 at the start, then learned) removes the cap."""
    import math

    from mlcourse.algorithms.metric_based import MatchingNet

    features = torch.eye(5, dtype=F64) - 0.2  # a regular simplex: each query equals its class's support item
    sy = torch.arange(5)
    for tau, limit in ((1.0, math.e / (math.e + 4 * math.exp(-0.25))), (10.0, None)):
        lrn = MatchingNet(conv(), scale=tau)
        meta = {"model": {}, "temperature": {"log_scale": lrn.log_scale}}
        lrn_features = lambda model, params, x: x  # noqa: E731
        import mlcourse.algorithms.metric_based as mb

        original, mb.features = mb.features, lrn_features
        try:
            state = lrn.task_adapt(
                meta,
                features,
                sy,
                steps=0,
                inner_lr=None,
                create_graph=False,
                grad_fn=None,
                classification=True,
                n_way=5,
            )
            p = lrn.task_predict(meta, state, features).exp().diagonal()
        finally:
            mb.features = original
        if limit is not None:
            assert torch.allclose(p, torch.full_like(p, limit), rtol=1e-12) and limit < 0.47
        else:
            assert bool((p > 0.99).all())
    lrn = learner("matchingnet", 1)
    assert any(name == "log_scale" for name, _ in lrn.named_parameters())
    lrn(image_batch()).loss.backward()
    assert lrn.log_scale.grad is not None and float(lrn.log_scale.grad.abs()) > 0


def test_pretrain_uses_global_labels_and_fine_tunes_a_zero_head() -> None:
    model, batch = conv(), image_batch()
    lrn = learner("pretrain", 2, model)
    out = lrn(batch)
    x = torch.cat([batch.support_x[0], batch.query_x[0]])
    y = batch.classes[0][torch.cat([batch.support_y[0], batch.query_y[0]])]
    loss0 = F.cross_entropy(lrn.global_head(model.features(x)), y)
    assert torch.allclose(
        out.loss,
        torch.stack(
            [
                loss0,
                F.cross_entropy(
                    lrn.global_head(model.features(torch.cat([batch.support_x[1], batch.query_x[1]]))),
                    batch.classes[1][torch.cat([batch.support_y[1], batch.query_y[1]])],
                ),
            ]
        ).mean(),
    )
    # evaluation: a zero N-way head on frozen features, inner_steps SGD steps on the support set
    fs, fq = model.features(batch.support_x[0]).detach(), model.features(batch.query_x[0]).detach()
    head = torch.nn.Linear(fs.shape[1], 3).to(F64)
    torch.nn.init.zeros_(head.weight), torch.nn.init.zeros_(head.bias)
    opt = torch.optim.SGD(head.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad(), F.cross_entropy(head(fs), batch.support_y[0]).backward(), opt.step()
    metrics = lrn.evaluate(batch)
    assert torch.allclose(metrics["query_loss"][0], F.cross_entropy(head(fq), batch.query_y[0]), rtol=1e-10)
    with pytest.raises(ValueError, match="num_classes"):
        make_learner("pretrain", conv())(batch)


def test_pretrain_regression_is_joint_training_and_evaluation_fine_tunes() -> None:
    torch.manual_seed(0)
    model, batch = SinusoidMLP(hidden=8).to(F64), sine_batch()
    lrn = make_learner("pretrain", model, inner_lr=0.05, inner_steps=2)
    vec = meta_grad(lrn, batch, True)
    assert rel(vec, meta_grad(lrn, batch, False)) < 1e-10
    assert fd_directional(lambda: lrn(batch).loss, list(lrn.parameters()), vec) < 1e-6
    maml_eval = make_learner("maml", model, inner_lr=0.05, inner_steps=2).evaluate(batch)
    assert torch.allclose(lrn.evaluate(batch)["query_loss"], maml_eval["query_loss"], rtol=1e-12)


# --- evaluate, metrics, interface ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALGORITHMS)
def test_evaluate_under_no_grad_and_matches_loop(name: str) -> None:
    lrn, batch = learner(name, 2), image_batch()
    with torch.no_grad():
        vec = lrn.evaluate(batch, inner_steps=3)
    lrn.vectorise = False
    loop = lrn.evaluate(batch, inner_steps=3)
    assert set(vec) >= {"query_loss", "query_accuracy"} and vec["query_loss"].shape == (batch.num_tasks,)
    assert not vec["query_loss"].requires_grad and all(p.grad is None for p in lrn.parameters())
    for k in vec:
        assert torch.allclose(vec[k], loop[k], rtol=1e-10, atol=1e-12), k


def test_evaluate_adapts() -> None:
    lrn, batch = learner("maml", 1), image_batch()
    zero, five = lrn.evaluate(batch, inner_steps=0), lrn.evaluate(batch, inner_steps=5)
    assert not torch.allclose(zero["query_loss"], five["query_loss"])


@pytest.mark.parametrize("name", ALGORITHMS)
def test_outputs_and_config(name: str) -> None:
    lrn, batch = learner(name, 1), image_batch()
    out = lrn(batch)
    assert isinstance(out, MetaOutput) and out.loss.ndim == 0 and out.loss.requires_grad
    assert out.metrics["query_loss"].shape == (2,) and out.metrics["query_accuracy"].shape == (2,)
    assert not any(v.requires_grad for v in out.metrics.values())
    cfg = lrn.config_dict()
    assert cfg["algorithm"] == lrn.algorithm_name == name and cfg["inner_steps"] == 1
    rebuilt = make_learner(cfg.pop("algorithm"), conv(), **cfg)
    rebuilt.load_state_dict(lrn.state_dict())


def test_metasgd_learning_rates_are_meta_parameters() -> None:
    lrn = learner("metasgd", 1)
    n_model = sum(p.numel() for p in lrn.model.parameters())
    assert sum(p.numel() for p in lrn.lrs.parameters()) == n_model
    assert all(torch.all(p == 0.1) for p in lrn.lrs.parameters())
    assert any(k.startswith("lrs.") for k in lrn.state_dict())
    meta_grad(lrn, image_batch(), True)
    assert all(p.grad is not None and p.grad.norm() > 0 for p in lrn.lrs.parameters() if p.numel() > 4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"inner_steps": -1}, r"inner_steps=-1.*>= 0"),
        ({"inner_lr": 0.0}, r"inner_lr=0.0.*> 0"),
        ({"inner_lr": -0.5}, r"inner_lr=-0.5.*> 0"),
    ],
)
def test_bad_hyper_parameters_raise(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        make_learner("maml", conv(), **kwargs)


def test_bad_names_and_evaluate_steps_raise() -> None:
    with pytest.raises(ValueError, match="allowed: maml"):
        make_learner("mamll", conv())
    with pytest.raises(ValueError, match="inner_steps=-2"):
        learner("maml", 1).evaluate(image_batch(), inner_steps=-2)


def test_float32_vectorised_and_loop_agree_within_1e_4() -> None:
    """In float32 the two paths sum in different orders; 1e-4 relative is the stated tolerance."""
    torch.manual_seed(0)
    lrn = make_learner("maml", Conv4(hidden=4, image_size=12, n_out=3), inner_lr=0.1, inner_steps=3)
    batch = image_batch(dtype=torch.float32)
    assert rel(meta_grad(lrn, batch, True), meta_grad(lrn, batch, False)) < 1e-4


def test_protomaml_starts_from_the_prototypes_and_adapts_every_parameter() -> None:
    """Before any inner step Proto-MAML's logits are the ProtoNet's up to a per-query constant (same predictions);
    its inner loop moves the body too; the model's own head gets no meta-gradient."""
    batch = image_batch()
    model = conv()
    protomaml = learner("protomaml", 2, model=model)
    protonet = make_learner("protonet", model)
    for t in range(batch.num_tasks):
        one = batch.task(t)
        a = protomaml.predict(protomaml.adapt(one, steps=0), one.query_x)[0]
        b = protonet.predict(protonet.adapt(one), one.query_x)[0]
        shift = a - b  # = ||f(q)||^2 for every class
        assert torch.allclose(shift, shift[:, :1].expand_as(shift), rtol=1e-10, atol=1e-10)
    state = protomaml.adapt(batch, steps=2)
    theta = dict(model.named_parameters())
    assert not torch.allclose(state["body.0.conv.weight"][0], theta["body.0.conv.weight"])
    grads = dict(
        zip(
            [n for n, _ in protomaml.named_parameters()],
            torch.autograd.grad(protomaml(batch).loss, list(protomaml.parameters()), allow_unused=True),
        )
    )
    assert grads["model.head.weight"] is None and grads["model.body.0.conv.weight"].abs().sum() > 0


def test_reptile_inner_batches_cycle_through_the_support_set_with_classes_interleaved():
    lrn = learner("reptile", 3, inner_batch=4)
    n_way, k = 2, 3  # support labels 0 0 0 1 1 1
    batches = [b.tolist() for b in lrn.inner_batches(n_way * k, n_way)]
    assert batches == [[0, 3, 1, 4], [2, 5, 0, 3], [1, 4, 2, 5]]  # each step: both classes, next examples
    assert lrn.extra_config()["inner_batch"] == 4
    assert learner("reptile", 3).inner_batches(6, 2) is None
    with pytest.raises(ValueError, match="inner_batch=0 is not allowed"):
        learner("reptile", 3, inner_batch=0)


@pytest.mark.parametrize("steps", [2, 3])
def test_reptile_with_inner_batches_moves_towards_the_mini_batch_solutions(steps: int) -> None:
    """theta - phi with inner mini-batches (support 0 0 0 0 1 1 1 1 2 2 2 2, batch 3: [0, 4, 8], [1, 5, 9], ...):
    vmap == loop == the hand-written mini-batch SGD, in float64."""
    model, batch = conv(), image_batch(k_shot=4)
    lrn = learner("reptile", steps, model, inner_batch=3)
    vec = meta_grad(lrn, batch, True)
    assert rel(vec, meta_grad(lrn, batch, False)) < 1e-10
    theta = torch.cat([p.detach().flatten() for p in model.parameters()])
    expected = torch.zeros_like(theta)
    for t in range(batch.num_tasks):
        phi = copy.deepcopy(model)
        for s in range(steps):
            idx = [s, 4 + s, 8 + s]
            phi = _sgd_copy(phi, batch.support_x[t][idx], batch.support_y[t][idx], 0.1, 1)
        expected += (theta - torch.cat([p.detach().flatten() for p in phi.parameters()])) / batch.num_tasks
    assert rel(vec, expected) < 1e-10
    full = meta_grad(learner("reptile", steps, model), batch, True)  # every step on all 12: another direction
    assert rel(full, expected) > 1e-3
