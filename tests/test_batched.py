"""The batched training step (every task in one call of the Conv-4, mlcourse.algorithms.batched) equals the per-task
reference loop in float64: the meta-loss, every meta-gradient and the metrics; and it says why where it cannot run."""

from __future__ import annotations

import pytest
import torch
from test_algorithms_helpers import image_batch, rel, sine_batch

from mlcourse.algorithms import make_learner
from mlcourse.algorithms.batched import BATCHED_ALGORITHMS, why_not_batched
from mlcourse.models import Conv4, SinusoidMLP

F64 = torch.float64

pytestmark = pytest.mark.usefixtures("one_thread")


def conv(size: int = 12, hidden: int = 4, seed: int = 0, **kw) -> Conv4:
    torch.manual_seed(seed)
    return Conv4(hidden=hidden, image_size=size, n_out=3, **kw).to(F64)


def run(name: str, batched: bool, batch, steps: int, size: int, **kw) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """The meta-loss, the flat meta-gradient and the metrics of one step of a fresh learner."""
    learner = make_learner(name, conv(size, **kw), inner_lr=0.3, inner_steps=steps, vectorise=False, batched=batched)
    out = learner(batch)
    out.loss.backward()
    grads = torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).flatten() for p in learner.parameters()])
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


def test_batched_step_without_normalisation_equals_the_loop() -> None:
    batch = image_batch(tasks=2, size=12)
    loss, grads, _ = run("maml", True, batch, 2, 12, norm="none")
    ref_loss, ref_grads, _ = run("maml", False, batch, 2, 12, norm="none")
    assert rel(grads, ref_grads) < 1e-10 and abs(float(loss - ref_loss)) < 1e-10


def test_a_batched_learner_evaluates_and_adapts_like_the_reference() -> None:
    """Only the training step is batched: evaluation and adapt/predict are the learner's usual map."""
    batch = image_batch(tasks=2, size=12)
    fast = make_learner("maml", conv(), inner_lr=0.3, batched=True)
    slow = make_learner("maml", conv(), inner_lr=0.3)
    assert fast.config_dict()["batched"] is True and slow.config_dict()["batched"] is False
    for key, value in fast.evaluate(batch).items():
        assert torch.allclose(value, slow.evaluate(batch)[key], rtol=0, atol=1e-12)


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


def test_a_batched_learner_refuses_another_protocol_and_regression() -> None:
    learner = make_learner("maml", conv(), batched=True)
    learner.use_norm_mode("support")
    with pytest.raises(ValueError, match="norm_mode='support'"):
        learner(image_batch(size=12))
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
    with pytest.raises(ValueError, match="batched=True is not available here: anil"):
        learner(algo="anil", batched=True)
