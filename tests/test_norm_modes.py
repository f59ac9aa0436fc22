"""Normalisation modes (issue 25): ``transductive`` (the statistics of whatever batch the network is given) and
``support`` (the support set's statistics for the support set and every later input), float64. In ``support``
mode the meta-gradient stays exact (vectorised == loop == finite differences), a prediction of one image does not
depend on the other images of its batch, and the queries are normalised with exactly the support set's moments."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_algorithms import conv, learner
from test_algorithms_helpers import fd_directional, image_batch, meta_grad, rel, sine_batch
from torch.func import functional_call

from mlcourse.algorithms import ALGORITHMS, make_learner
from mlcourse.algorithms.core import CONTEXT_KEY
from mlcourse.models import BatchNormPlain, Conv4, SinusoidMLP, TaskNormI, context_rows

F64 = torch.float64
pytestmark = pytest.mark.usefixtures("one_thread")


def _each_query_alone(lrn, state, x):
    return torch.cat([lrn.predict(state, x[:, j : j + 1]) for j in range(x.shape[1])], dim=1)


# --- the layer -------------------------------------------------------------------------------------------------
def test_context_rows_normalise_every_row_with_the_first_rows_moments() -> None:
    torch.manual_seed(0)
    norm, x = BatchNormPlain(3).double(), torch.randn(7, 3, 4, 4, dtype=F64)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    mean = x[:4].mean(dim=(0, 2, 3), keepdim=True)
    var = x[:4].var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + norm.eps) * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)
    model = torch.nn.Sequential(norm)
    with context_rows(model, 4):
        assert torch.allclose(model(x), expected, rtol=1e-12, atol=1e-12)
    assert norm.context_rows is None  # restored after the block
    assert torch.allclose(model(x[:4]), expected[:4], rtol=1e-12, atol=1e-12)  # the support set: its own moments
    assert not torch.allclose(model(x), expected)  # transductive: all seven rows' moments


def test_context_rows_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="rows=0"):
        with context_rows(conv(), 0):
            pass
    with pytest.raises(ValueError, match="torch_batchnorm"):
        with context_rows(conv(norm="torch_batchnorm"), 3):
            pass
    with pytest.raises(ValueError, match="norm_mode='instance'.*transductive, support, tasknorm"):
        learner("maml", 1, norm_mode="instance")
    with pytest.raises(ValueError, match="protocol='batch'.*transductive, support, single"):
        learner("maml", 1).evaluate(image_batch(), protocol="batch")


# --- meta-gradients in support mode ---------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("name", ALGORITHMS)
def test_support_mode_vectorised_meta_gradient_equals_loop(name: str, steps: int) -> None:
    lrn, batch = learner(name, steps, norm_mode="support"), image_batch()
    vec, loop = meta_grad(lrn, batch, True), meta_grad(lrn, batch, False)
    assert vec.norm() > 0
    assert rel(vec, loop) < 1e-10, (name, steps, rel(vec, loop))


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("name", ["maml", "metasgd", "anil", "protonet", "matchingnet", "protomaml", "article"])
def test_support_mode_meta_gradient_matches_finite_differences(name: str, steps: int) -> None:
    lrn = learner(name, steps, conv(attention=name in ("maml", "anil")), norm_mode="support")
    batch = image_batch()
    grads = meta_grad(lrn, batch, True)
    assert fd_directional(lambda: lrn(batch).loss, list(lrn.parameters()), grads) < 1e-6


@pytest.mark.parametrize("steps", [1, 2])
def test_support_mode_fomaml_is_query_gradient_at_phi_with_support_statistics(steps: int) -> None:
    """First-order MAML in support mode: the meta-gradient is dL_query/dphi at phi, with the queries normalised by
    the support set's moments (a hand-written reference: phi by plain SGD, then the query loss on [support; query])."""
    lrn, batch = learner("fomaml", steps, norm_mode="support"), image_batch()
    grads = meta_grad(lrn, batch, True)
    assert rel(grads, meta_grad(lrn, batch, False)) < 1e-10
    expected = [torch.zeros_like(p) for p in lrn.model.parameters()]
    for t in range(batch.num_tasks):
        sx, sy, qx, qy = batch.support_x[t], batch.support_y[t], batch.query_x[t], batch.query_y[t]
        phi = {k: v.detach().clone() for k, v in lrn.model.named_parameters()}
        for _ in range(steps):
            leaves = {k: v.requires_grad_() for k, v in phi.items()}
            g = torch.autograd.grad(
                F.cross_entropy(functional_call(lrn.model, leaves, (sx,)), sy), list(leaves.values())
            )
            phi = {k: (v - 0.1 * gk).detach() for (k, v), gk in zip(leaves.items(), g)}
        leaves = {k: v.requires_grad_() for k, v in phi.items()}
        with context_rows(lrn.model, sx.shape[0]):
            out = functional_call(lrn.model, leaves, (torch.cat([sx, qx]),))[sx.shape[0] :]
        g = torch.autograd.grad(F.cross_entropy(out, qy), list(leaves.values()))
        expected = [e + gk / batch.num_tasks for e, gk in zip(expected, g)]
    assert rel(grads, torch.cat([e.flatten() for e in expected])) < 1e-10


def test_support_mode_changes_the_query_loss_but_not_the_support_set() -> None:
    """Training in support mode leaves the inner loop (support set, its own moments) as it was; only the queries'
    normalisation changes, so the adapted parameters agree and the query losses differ."""
    batch = image_batch()
    trans, supp = learner("maml", 2), learner("maml", 2, norm_mode="support")
    supp.load_state_dict(trans.state_dict())
    a, b = trans.adapt(batch), supp.adapt(batch)
    assert set(b) == set(a) | {CONTEXT_KEY} and torch.equal(b[CONTEXT_KEY], batch.support_x)
    assert all(torch.allclose(a[k], b[k], rtol=1e-12, atol=1e-14) for k in a)
    assert not torch.allclose(trans(batch).loss, supp(batch).loss)


def test_support_mode_regression_is_unchanged() -> None:
    """The sinusoid MLP has no normalisation: both modes give the same meta-gradient."""
    torch.manual_seed(0)
    model, batch = SinusoidMLP(hidden=8).to(F64), sine_batch()
    trans = make_learner("maml", model, inner_lr=0.05, inner_steps=2)
    supp = make_learner("maml", model, inner_lr=0.05, inner_steps=2, norm_mode="support")
    assert rel(meta_grad(supp, batch, True), meta_grad(trans, batch, True)) < 1e-12


# --- prediction of one image ----------------------------------------------------------------------------------
@pytest.mark.parametrize("vectorise", [True, False])
@pytest.mark.parametrize("name", ALGORITHMS)
def test_support_mode_predicts_an_image_alone_as_in_a_batch(name: str, vectorise: bool) -> None:
    lrn, batch = learner(name, 2, norm_mode="support", vectorise=vectorise), image_batch(n_query=3)
    state = lrn.adapt(batch)
    together = lrn.predict(state, batch.query_x)
    assert torch.allclose(_each_query_alone(lrn, state, batch.query_x), together, rtol=1e-10, atol=1e-12)
    reversed_batch = lrn.predict(state, batch.query_x.flip(1)).flip(1)
    assert torch.allclose(reversed_batch, together, rtol=1e-10, atol=1e-12)
    # `single` is a batch of one normalised by itself, whatever the learner's mode (the same weights, trained
    # transductively, give the same numbers)
    single = lrn.evaluate(batch, protocol="single")
    alone = learner(name, 2, norm_mode="transductive", vectorise=vectorise).evaluate(batch, protocol="single")
    for key, value in alone.items():
        assert torch.allclose(single[key], value, rtol=1e-10, atol=1e-12), (name, key)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_transductive_mode_prediction_depends_on_the_batch(name: str) -> None:
    """The reason for the support mode: in transductive mode an image's output changes with its batch."""
    lrn, batch = learner(name, 2), image_batch(n_query=3)
    state = lrn.adapt(batch)
    together = lrn.predict(state, batch.query_x)
    assert (_each_query_alone(lrn, state, batch.query_x) - together).abs().max() > 1e-3, name


@pytest.mark.parametrize("name", ["maml", "anil", "protonet", "matchingnet", "pretrain"])
def test_support_mode_outputs_use_the_support_moments_at_every_layer(name: str) -> None:
    """An independent reference: record each layer's moments while the support set alone goes through the network
    (plain, transductive), then run the queries alone with those moments frozen into every normalisation layer."""
    lrn, batch = learner(name, 2, norm_mode="support"), image_batch()
    state = lrn.adapt(batch)
    outputs = lrn.predict(state, batch.query_x)
    layers = [m for m in lrn.model.modules() if isinstance(m, BatchNormPlain)]
    for t in range(batch.num_tasks):
        one = {k: v[t] for k, v in state.items()}
        moments = []
        hooks = [m.register_forward_pre_hook(lambda _m, args: moments.append(_moments(args[0]))) for m in layers]
        with torch.no_grad():
            _reference_output(lrn, name, one, batch.support_x[t], support=True)
        for h in hooks:
            h.remove()
        assert len(moments) == len(layers)
        hooks = [m.register_forward_hook(_frozen_output(mv)) for m, mv in zip(layers, moments)]
        with torch.no_grad():
            reference = _reference_output(lrn, name, one, batch.query_x[t])
        for h in hooks:
            h.remove()
        assert torch.allclose(outputs[t], reference, rtol=1e-10, atol=1e-12), (name, t)


def _moments(x):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    return mean, (x - mean).square().mean(dim=(0, 2, 3), keepdim=True)


def _frozen_output(moments):
    mean, var = moments

    def hook(module, args, _out):
        x = args[0]
        scale = torch.rsqrt(var + module.eps) * module.weight.view(1, -1, 1, 1)
        return (x - mean) * scale + module.bias.view(1, -1, 1, 1)

    return hook


def _reference_output(lrn, name, state, x, support=False):
    """The learner's prediction rule written out for the rows ``x`` alone, with plain calls of the network (the
    layers' moments frozen by hooks); ``support=True`` only runs the network (to record the support set's moments)."""
    meta = {k: v.detach() for k, v in lrn.model.named_parameters()}
    if name == "maml":
        return functional_call(lrn.model, {k: v for k, v in state.items() if k != CONTEXT_KEY}, (x,))
    fx = functional_call(lrn.model.body, {k[5:]: v for k, v in meta.items() if k.startswith("body.")}, (x,))
    if support:
        return fx
    if name == "anil":
        return fx @ state["head.weight"].T + state["head.bias"]
    if name == "pretrain":
        return fx @ state["probe.weight"].T + state["probe.bias"]
    if name == "protonet":
        return -(fx.unsqueeze(1) - state["prototypes"].unsqueeze(0)).square().sum(-1)
    sim = lrn.log_scale.exp() * F.normalize(fx, dim=-1) @ state["support"].T
    probs = sim.softmax(-1) @ state["labels"]
    return probs.log()


# --- evaluation protocols -------------------------------------------------------------------------------------
def test_protocols_switch_the_mode_for_one_evaluation_only() -> None:
    batch = image_batch(n_query=3)
    trans, supp = learner("protonet", 1), learner("protonet", 1, norm_mode="support")
    supp.load_state_dict(trans.state_dict())
    for lrn in (trans, supp):
        for mode in ("transductive", "support"):
            with torch.no_grad():
                reference = {"transductive": trans, "support": supp}[mode].evaluate(batch)
            got = lrn.evaluate(batch, protocol=mode)
            assert all(torch.allclose(got[k], reference[k], rtol=1e-12) for k in got), (lrn.norm_mode, mode)
    assert trans.norm_mode == "transductive" and supp.norm_mode == "support"
    alone = trans.evaluate(batch, protocol="single")  # transductive: each query normalised by itself
    state = trans.adapt(batch)
    out = _each_query_alone(trans, state, batch.query_x)
    loss = F.cross_entropy(out.flatten(0, 1), batch.query_y.flatten(), reduction="none").view(batch.query_y.shape)
    assert torch.allclose(alone["query_loss"], loss.mean(1), rtol=1e-12)
    assert not torch.allclose(alone["query_loss"], trans.evaluate(batch)["query_loss"])


def test_predict_in_support_mode_needs_the_support_images() -> None:
    trans, supp = learner("maml", 1), learner("maml", 1, norm_mode="support")
    batch = image_batch()
    with pytest.raises(ValueError, match="norm_mode='support' needs an adapted state that carries"):
        supp.predict(trans.adapt(batch), batch.query_x)
    with pytest.raises(ValueError, match="adapted in a non-transductive mode, but the learner's norm_mode is 'trans"):
        trans.predict(supp.adapt(batch), batch.query_x)


def test_norm_mode_is_in_the_learner_config() -> None:
    lrn = learner("metasgd", 1, norm_mode="support")
    config = lrn.config_dict()
    assert config["norm_mode"] == "support"
    rebuilt = make_learner(config.pop("algorithm"), Conv4(hidden=4, image_size=12, n_out=3).to(F64), **config)
    assert rebuilt.norm_mode == "support"
    assert learner("maml", 1).config_dict()["norm_mode"] == "transductive"  # the default


# --- TaskNorm-I -----------------------------------------------------------------------------------------------
def test_tasknorm_blends_the_context_moments_with_each_rows_own() -> None:
    torch.manual_seed(0)
    norm, x = TaskNormI(3).double(), torch.randn(7, 3, 4, 4, dtype=F64)
    with torch.no_grad():
        norm.scale.fill_(0.3)
        norm.offset.fill_(-0.5)
        norm.weight.uniform_(0.5, 2.0)
    alpha = torch.sigmoid(torch.tensor(0.3 * 4 - 0.5, dtype=F64))
    m_c, v_c = x[:4].mean(dim=(0, 2, 3), keepdim=True), x[:4].var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    m_i, v_i = x.mean(dim=(2, 3), keepdim=True), x.var(dim=(2, 3), unbiased=False, keepdim=True)
    mean = alpha * m_c + (1 - alpha) * m_i
    var = alpha * (v_c + (m_c - mean) ** 2) + (1 - alpha) * (v_i + (m_i - mean) ** 2)
    expected = (x - mean) / torch.sqrt(var + norm.eps) * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)
    model = torch.nn.Sequential(norm)
    with context_rows(model, 4):
        out = model(x)
    assert torch.allclose(out, expected, rtol=1e-12, atol=1e-12)
    with context_rows(model, 4):  # each row depends on itself and the context only
        assert torch.allclose(torch.cat([model(torch.cat([x[:4], x[j : j + 1]]))[4:] for j in range(7)]), out)


def tasknorm_learner(name: str, steps: int, **kw):
    torch.manual_seed(0)
    model = conv(norm="tasknorm")
    with torch.no_grad():  # away from the initial a = 1/2, so that a wrong use of scale or offset shows
        for m in model.modules():
            if isinstance(m, TaskNormI):
                m.scale.uniform_(-0.3, 0.3)
                m.offset.uniform_(-0.5, 0.5)
    return learner(name, steps, model, norm_mode="tasknorm", **kw)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_tasknorm_vectorised_meta_gradient_equals_loop(name: str) -> None:
    lrn, batch = tasknorm_learner(name, 2), image_batch()
    vec, loop = meta_grad(lrn, batch, True), meta_grad(lrn, batch, False)
    assert vec.norm() > 0
    assert rel(vec, loop) < 1e-10, (name, rel(vec, loop))


@pytest.mark.parametrize("name", ["maml", "metasgd", "anil", "protonet", "matchingnet", "protomaml"])
def test_tasknorm_meta_gradient_matches_finite_differences(name: str) -> None:
    lrn, batch = tasknorm_learner(name, 2), image_batch()
    grads = meta_grad(lrn, batch, True)
    assert fd_directional(lambda: lrn(batch).loss, list(lrn.parameters()), grads) < 1e-6
    blend = [p.grad for n, p in lrn.named_parameters() if n.endswith((".scale", ".offset"))]
    assert len(blend) == 8 and all(g is not None and g.abs() > 0 for g in blend)  # the blend is meta-learned


@pytest.mark.parametrize("name", ALGORITHMS)
def test_tasknorm_predicts_an_image_alone_as_in_a_batch(name: str) -> None:
    lrn, batch = tasknorm_learner(name, 2), image_batch(n_query=3)
    state = lrn.adapt(batch)
    together = lrn.predict(state, batch.query_x)
    assert torch.allclose(_each_query_alone(lrn, state, batch.query_x), together, rtol=1e-10, atol=1e-12)


def test_tasknorm_needs_its_layers_and_image_data() -> None:
    from mlcourse.train import ConfigError, TrainConfig

    with pytest.raises(ValueError, match="norm_mode='tasknorm' needs a model with TaskNorm-I layers"):
        learner("maml", 1, norm_mode="tasknorm")
    with pytest.raises(ConfigError, match="norm_mode='tasknorm'.*transductive or support for sinusoid"):
        TrainConfig.defaults("sinusoid", norm_mode="tasknorm")
    assert TrainConfig.defaults("omniglot", norm_mode="tasknorm").norm_mode == "tasknorm"
    with pytest.raises(ConfigError, match="norm_mode='instance'.*transductive, support, tasknorm"):
        TrainConfig.defaults("omniglot", norm_mode="instance")


# --- the run's setting ----------------------------------------------------------------------------------------
def test_norm_mode_is_a_setting_of_the_run(tmp_path) -> None:
    """Recorded in the configuration when it is not the default (files made before the setting existed describe
    transductive runs and still compare equal); a change of mode is refused on resume and re-tested on reuse."""
    from mlcourse.checkpoint import CheckpointError, save_results
    from mlcourse.train import TrainConfig
    from mlcourse.train.loop import _check_resume_config, _reused_results

    base = TrainConfig.defaults("omniglot", fast=True, out_dir=str(tmp_path))
    supp = base.replace(norm_mode="support")
    assert "norm_mode" not in base.to_dict() and supp.to_dict()["norm_mode"] == "support"
    assert TrainConfig.from_dict(supp.to_dict()) == supp and TrainConfig.from_dict(base.to_dict()) == base
    with pytest.raises(CheckpointError, match="norm_mode='support' there but 'transductive' here"):
        _check_resume_config(supp.to_dict(), base, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="norm_mode='transductive' there but 'support' here"):
        _check_resume_config(base.to_dict(), supp, tmp_path / "checkpoint.pt")
    for made, asked in ((base, base), (supp, supp), (base, supp), (supp, base)):
        path = save_results(tmp_path / "results.json", {"config": made.to_dict(), "iterations": base.iterations})
        assert (_reused_results(path, asked, base.iterations) is not None) == (made == asked)


def test_build_experiment_gives_the_run_its_mode(synthetic_omniglot) -> None:
    from mlcourse.data.omniglot import import_omniglot
    from mlcourse.train import TrainConfig, build_experiment

    import_omniglot(synthetic_omniglot)
    for mode, layer in (("transductive", BatchNormPlain), ("support", BatchNormPlain), ("tasknorm", TaskNormI)):
        config = TrainConfig.defaults(
            "omniglot", fast=True, split_scheme="lake", n_way=3, hidden=4, image_size=16, norm_mode=mode
        )
        exp = build_experiment(config.replace(device="cpu"))
        assert exp.learner.norm_mode == mode and exp.learner.config_dict()["norm_mode"] == mode
        assert {type(m) for m in exp.model.modules() if isinstance(m, BatchNormPlain)} == {layer}
