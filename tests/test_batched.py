"""The batched training step (every task in one call of the Conv-4, mlcourse.algorithms.batched) equals the per-task
reference loop in float64: the meta-loss, every meta-gradient and the metrics; and it says why where it cannot run."""

from __future__ import annotations

import pytest
import torch
from test_algorithms_helpers import image_batch, meta_grad, rel, sine_batch

from mlcourse.algorithms import make_learner
from mlcourse.algorithms.batched import BATCHED_ALGORITHMS, why_not_batched
from mlcourse.models import Conv4, SinusoidMLP

F64 = torch.float64

pytestmark = pytest.mark.usefixtures("one_thread")


def conv(size: int = 12, hidden: int = 4, seed: int = 0, **kw) -> Conv4:
    torch.manual_seed(seed)
    return Conv4(hidden=hidden, image_size=size, n_out=3, **kw).to(F64)


def colour_batch(tasks: int, channels: int, size: int, n_way: int = 3, k_shot: int = 1, n_query: int = 2):
    """Random ``channels``-channel images (CIFAR-100's layout when 3) in the one task format."""
    batch = image_batch(tasks=tasks, n_way=n_way, k_shot=k_shot, n_query=n_query, size=size)
    g = torch.Generator().manual_seed(channels)
    sx, qx = (
        torch.rand(*x.shape[:2], channels, size, size, generator=g, dtype=F64) for x in (batch.support_x, batch.query_x)
    )
    return type(batch)(sx, batch.support_y, qx, batch.query_y)


def run(
    name: str, batched: bool, batch, steps: int, size: int, learner_kw: dict | None = None, **kw
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """The meta-loss, the flat meta-gradient and the metrics of one step of a fresh learner."""
    model = conv(size, in_channels=batch.support_x.shape[2], **kw)
    learner = make_learner(
        name, model, inner_lr=0.3, inner_steps=steps, vectorise=False, batched=batched, **(learner_kw or {})
    )
    grads = meta_grad(learner, batch, vectorise=False)  # the batched step whatever vectorise says
    out = learner(batch)
    return out.loss.detach(), grads, out.metrics


@pytest.mark.parametrize("name", BATCHED_ALGORITHMS)
@pytest.mark.parametrize(
    ("steps", "size", "shots"),
    [(1, 12, 2), (3, 12, 1), (2, 32, 2), (1, 7, 3)],  # 32 px ends on a 2x2 map: the flattening order counts
)
def test_batched_step_equals_the_per_task_loop(name: str, steps: int, size: int, shots: int) -> None:
    batch = image_batch(tasks=3, k_shot=shots, n_query=3, size=size, seed=steps)
    loss, grads, metrics = run(name, True, batch, steps, size)
    ref_loss, ref_grads, ref_metrics = run(name, False, batch, steps, size)
    assert grads.norm() > 0
    assert abs(float(loss - ref_loss)) < 1e-10
    assert rel(grads, ref_grads) < 1e-10, (name, steps, size, rel(grads, ref_grads))
    assert sorted(metrics) == sorted(ref_metrics)
    for key, value in metrics.items():
        assert value.shape == ref_metrics[key].shape == (3,)
        assert torch.allclose(value, ref_metrics[key], rtol=0, atol=1e-10), key


@pytest.mark.parametrize(
    ("name", "batch", "size", "model_kw", "learner_kw"),
    [
        ("maml", lambda: image_batch(tasks=2, size=12), 12, {"norm": "none"}, {}),  # no normalisation layers
        ("metasgd", lambda: colour_batch(3, 3, 32), 32, {}, {}),  # three input channels (CIFAR-100's layout)
        ("protonet", lambda: colour_batch(1, 3, 12, n_way=4), 12, {}, {}),  # one task (ProtoNets' meta-batch of 1)
        ("maml", lambda: colour_batch(2, 1, 12, n_way=1, n_query=1), 12, {}, {}),  # one image per set: 1 value/channel
        ("matchingnet", lambda: image_batch(tasks=2, size=12), 12, {}, {"learn_scale": False}),
        ("metasgd", lambda: image_batch(tasks=2, size=12), 12, {}, {"first_order": True}),
    ],
)
def test_batched_step_equals_the_loop_in_other_settings(name, batch, size, model_kw, learner_kw) -> None:
    tasks = batch()
    loss, grads, metrics = run(name, True, tasks, 2, size, learner_kw, **model_kw)
    ref_loss, ref_grads, ref_metrics = run(name, False, tasks, 2, size, learner_kw, **model_kw)
    assert grads.norm() > 0
    assert rel(grads, ref_grads) < 1e-10 and abs(float(loss - ref_loss)) < 1e-10
    assert all(torch.allclose(metrics[k], ref_metrics[k], rtol=0, atol=1e-10) for k in ref_metrics)


def test_a_batched_learner_trains_like_the_reference_and_evaluates_through_its_task_map() -> None:
    """Three SGD steps batched and unbatched end at the same parameters (not Adam: it divides the conv biases'
    gradients, zero in exact arithmetic under batch norm, by their own rounding noise); only the training step is
    batched."""
    batch = image_batch(tasks=2, size=12)
    fast = make_learner("maml", conv(), inner_lr=0.3, batched=True)
    slow = make_learner("maml", conv(), inner_lr=0.3)
    assert fast.config_dict()["batched"] is True and slow.config_dict()["batched"] is False
    for learner in (fast, slow):
        optimiser = torch.optim.SGD(learner.parameters(), lr=0.1)
        for _ in range(3):
            optimiser.zero_grad()
            learner(batch).loss.backward()
            optimiser.step()
    for a, b in zip(fast.parameters(), slow.parameters()):
        assert torch.allclose(a, b, rtol=0, atol=1e-10)
    for key, value in fast.evaluate(batch).items():
        assert torch.allclose(value, slow.evaluate(batch)[key], rtol=0, atol=1e-10)
    state = fast.adapt(batch)
    assert torch.allclose(
        fast.predict(state, batch.query_x), slow.predict(slow.adapt(batch), batch.query_x), atol=1e-10
    )


@pytest.mark.parametrize(
    ("name", "model", "kw", "says"),
    [
        ("anil", lambda: conv(), {}, "anil has no batched training step"),
        ("reptile", lambda: conv(), {}, "batched: maml, fomaml, metasgd, protonet, matchingnet"),
        ("maml", lambda: conv(), {"norm_mode": "support"}, "norm_mode='support'"),
        ("maml", lambda: conv(norm="torch_batchnorm"), {}, "BatchNorm2d"),
        ("maml", lambda: conv(norm="tasknorm"), {}, "TaskNormI"),
        ("maml", lambda: conv(attention=True), {}, "ChannelSpatialAttention"),
        ("maml", lambda: SinusoidMLP(hidden=4).to(F64), {}, "body layer 0 is a Linear"),
    ],
)
def test_batched_says_why_it_cannot_run(name: str, model, kw: dict, says: str) -> None:
    with pytest.raises(ValueError, match="batched=True is not available here") as info:
        make_learner(name, model(), batched=True, **kw)
    assert says in str(info.value)


def test_a_batched_learner_in_another_protocol_uses_its_task_map_and_refuses_regression() -> None:
    """Switched to the support set's statistics (as ``load_trained`` does to predict), a batched learner takes the
    per-task step that protocol needs, and its configuration says so (it rebuilds)."""
    batch = image_batch(size=12)
    learner = make_learner("maml", conv(), inner_lr=0.3, batched=True)
    learner.use_norm_mode("support")
    reference = make_learner("maml", conv(), inner_lr=0.3, norm_mode="support")
    assert torch.allclose(learner(batch).loss, reference(batch).loss, rtol=0, atol=1e-12)
    config = learner.config_dict()
    assert config["batched"] is False and config["norm_mode"] == "support"
    make_learner(config.pop("algorithm"), conv(), **config)  # the round trip
    with learner.normalising("transductive"):
        assert learner.batched_now
    assert why_not_batched("maml", conv(), "transductive") == ""
    assert "not a Conv-4" in why_not_batched("maml", torch.nn.Linear(2, 2), "transductive")
    sine = make_learner("maml", conv(), batched=True)
    with pytest.raises(ValueError, match="classification tasks only"):
        sine(sine_batch())


def test_training_runs_batched_by_default_on_a_cpu_where_it_was_measured_faster() -> None:
    from mlcourse.train import TrainConfig
    from mlcourse.train.experiment import build_learner

    def learner(device: str = "cpu", **changes):
        config = TrainConfig.defaults("omniglot", fast=False, hidden=4, image_size=16, **changes)
        return build_learner(config, Conv4(hidden=4, image_size=16, attention=config.attention), torch.device(device))

    for algo in ("maml", "fomaml", "metasgd", "protonet", "matchingnet"):
        assert learner(algo=algo).batched, algo
    assert learner(algo="maml", first_order=True).batched
    assert not learner(algo="anil").batched and not learner(algo="reptile").batched
    assert not learner(algo="maml", iterations=200).batched  # short runs keep the default map
    assert not learner(algo="maml", attention=True).batched  # the attention block is not batched
    assert not learner(algo="maml", norm_mode="support").batched  # nor another normalisation protocol
    assert not learner(algo="maml", batched=False).batched
    assert learner(algo="maml", iterations=200, batched=True).batched
    assert TrainConfig.defaults("omniglot", fast=False, batched=False).batched_enabled("cpu") is False
    assert not TrainConfig.defaults("omniglot", fast=False).batched_enabled("cuda")  # not measured on a GPU
    assert not learner(algo="maml", compile=True).batched  # an explicit --compile: the compiled step, as asked
    assert learner(algo="maml", compile=True, batched=True).batched
    config = TrainConfig.defaults("omniglot", fast=False, batched=True)
    assert (
        TrainConfig.from_dict(config.to_dict()).batched is True
        and "batched" not in TrainConfig.defaults("omniglot").to_dict()
    )  # left out at its default, so the files written before it still compare equal
    with pytest.raises(ValueError, match="batched=True is not available here: anil"):
        learner(algo="anil", batched=True)
