"""Chapter 06 (applications): the compute functions behind the notebook's five demos."""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch

from mlcourse.course.ch06 import applications as A
from mlcourse.course.ch06 import rl
from mlcourse.data import EpisodeSampler, ImageClassDataset, SinusoidTasks
from mlcourse.data.tasks import TaskBatch
from mlcourse.models import SinusoidMLP

matplotlib.use("Agg")


def _tiny_dataset(num_classes=8, per_class=6, size=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(num_classes, per_class, 1, size, size, generator=g) * 255).to(torch.uint8)
    return ImageClassDataset(images=images, class_names=[f"c{i}" for i in range(num_classes)], name="tiny")


# ---------------------------------------------------------------------------------------------- few-shot
def test_pixel_prototypes_classify_separable_tasks():
    g = torch.Generator().manual_seed(0)
    centres = torch.rand(4, 1, 6, 6, generator=g)
    sy = torch.arange(4).repeat_interleave(3)
    sx = centres[sy] + 0.01 * torch.randn(12, 1, 6, 6, generator=g)
    qy = torch.arange(4).repeat_interleave(2)
    qx = centres[qy] + 0.01 * torch.randn(8, 1, 6, 6, generator=g)
    assert torch.equal(A.pixel_prototype_predictions(sx, sy, qx, 4), qy)


def test_fewshot_accuracy_matches_learner_and_restores_vectorise():
    tasks = A.fixed_tasks(_tiny_dataset(), 4, n_way=3, k_shot=1, n_query=2)
    learner = A.untrained_learner(n_way=3, hidden=8)
    reference = learner.evaluate(tasks)["query_accuracy"].double()
    got = A.fewshot_accuracy(learner, tasks, chunk=3)  # the per-task loop on CPU, in chunks
    torch.testing.assert_close(got, reference)
    assert learner.vectorise is True
    pixels = A.fewshot_accuracy(None, tasks)
    assert pixels.shape == (4,) and ((pixels >= 0) & (pixels <= 1)).all()
    preds = A.learner_predictions(learner, tasks, 1)
    acc = (preds == tasks.query_y[1]).double().mean()
    torch.testing.assert_close(acc, reference[1])


def test_shift_images():
    x = torch.zeros(2, 3, 1, 28, 28)
    x[..., 4:24, 4:24] = 1.0
    torch.testing.assert_close(A.shift_images(x, "invert"), 1 - x)
    small = A.shift_images(x, "shrink")
    assert small.shape == x.shape
    assert small[..., :7, :].abs().max() == 0 and small[..., 21:, :].abs().max() == 0  # half size, centred
    assert 0.2 < small.sum() / x.sum() < 0.3  # a quarter of the area
    noisy = A.shift_images(x, "noise", seed=3)
    assert noisy.min() >= 0 and noisy.max() <= 1 and torch.equal(noisy, A.shift_images(x, "noise", seed=3))
    assert torch.equal(A.shift_images(x, "none"), x)
    with pytest.raises(ValueError, match="allowed"):
        A.shift_images(x, "sepia")


def test_cross_domain_table_reuses_known_results():
    tasks = A.fixed_tasks(_tiny_dataset(), 3, n_way=3, k_shot=1, n_query=2)
    table = A.cross_domain_table(
        {"pixels": None},
        {"plain": (tasks, "none"), "inverted": (tasks, "invert")},
        known={("pixels", "plain"): (0.5, 0.1)},
    )
    assert table["pixels"]["plain"] == (0.5, 0.1)
    m, c = table["pixels"]["inverted"]
    assert 0 <= m <= 1 and c >= 0
    A.cross_domain_figure(table)
    matplotlib.pyplot.close("all")


# ---------------------------------------------------------------------------------------------- drift
def test_drift_schedule_and_stream():
    sched = A.drift_schedule(40)
    assert sched.shape == (40, 2)
    assert (
        sched[:, 0].min() >= 0.1
        and sched[:, 0].max() <= 5.0
        and sched[:, 1].min() >= 0
        and sched[:, 1].max() <= math.pi
    )
    jumps = (sched[1:, 1] - sched[:-1, 1]).abs()
    assert (
        int(jumps.argmax()) == 19 and jumps.max() > 1.0 and jumps[jumps < 1.0].max() < 0.1
    )  # one abrupt change halfway
    stream = A.drift_stream(sched, k_shot=7, n_query=30, seed=1)
    assert stream.support_x.shape == (40, 7, 1) and stream.query_x.shape == (40, 30, 1)
    torch.testing.assert_close(stream.support_y, SinusoidTasks.function(stream.support_x, sched))


def test_online_errors_modes():
    torch.manual_seed(0)
    model = SinusoidMLP()
    stream = A.drift_stream(A.drift_schedule(6), k_shot=10, n_query=20)
    frozen = A.online_errors(model, stream, mode="frozen")
    with torch.no_grad():
        direct = torch.stack([((model(stream.query_x[t]) - stream.query_y[t]) ** 2).mean() for t in range(6)])
    torch.testing.assert_close(frozen, direct)
    torch.testing.assert_close(A.online_errors(model, stream, steps=0, mode="reset"), frozen)
    reset = A.online_errors(model, stream, inner_lr=0.01, steps=3, mode="reset", lag=1)
    cont = A.online_errors(model, stream, inner_lr=0.01, steps=3, mode="continual", lag=1)
    torch.testing.assert_close(reset[:2], cont[:2])  # window 0 unadapted, window 1 adapted once from theta: the same
    assert not torch.allclose(reset[2:], cont[2:])
    assert reset[0] == frozen[0]
    # lag 0: adapting on the window itself lowers its error (a few steps on 10 points of the same task)
    same = A.online_errors(model, stream, inner_lr=0.01, steps=5, mode="reset", lag=0)
    assert (same < frozen).float().mean() >= 0.8
    with pytest.raises(ValueError, match="allowed"):
        A.online_errors(model, stream, mode="sometimes")


def test_sgd_adapt_lowers_support_loss():
    torch.manual_seed(0)
    model = SinusoidMLP()
    batch = SinusoidTasks().sample(1, 10, 5, generator=torch.Generator().manual_seed(0))
    theta = dict(model.named_parameters())
    phi = A.sgd_adapt(model, theta, batch.support_x[0], batch.support_y[0], 0.01, 10)
    loss = lambda p: torch.nn.functional.mse_loss(
        torch.func.functional_call(model, p, (batch.support_x[0],)), batch.support_y[0]
    )  # noqa: E731
    assert loss(phi) < loss(theta)
    assert all(not v.requires_grad for v in phi.values())


def test_drift_widget_draws_once_with_named_sliders():
    torch.manual_seed(0)
    models = {"maml": SinusoidMLP(), "pretrained": SinusoidMLP()}
    widget = A.drift_widget(models, num_windows=6, steps=1, display=False)
    assert widget.output.draws == 1 and widget.figure is not None
    names = [c.description for c in widget.controls.children]
    assert names == ["α (inner lr)", "shots K", "inner steps"]
    widget.controls.children[1].value = 3  # moving a slider redraws
    assert widget.output.draws == 2
    matplotlib.pyplot.close("all")


# ---------------------------------------------------------------------------------------------- personalisation
def test_preference_users_and_ridge():
    users = A.PreferenceUsers(dim=4, latent=2, noise=0.0, seed=0)
    batch = users.sample(5, 6, 10, generator=torch.Generator().manual_seed(1))
    assert (
        batch.support_x.shape == (5, 6, 4) and batch.query_y.shape == (5, 10, 1) and batch.task_params.shape == (5, 3)
    )
    x = torch.cat([batch.support_x, batch.query_x], 1)
    torch.testing.assert_close(torch.cat([batch.support_y, batch.query_y], 1), users.ratings(x, batch.task_params))
    again = users.sample(5, 6, 10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again.query_y, batch.query_y)
    # ridge on an exactly linear user with plenty of ratings is nearly exact
    sx, qx = torch.randn(2, 50, 4), torch.randn(2, 20, 4)
    w = torch.tensor([[1.0, -2.0, 0.5, 0.0], [0.3, 0.3, 0.3, 0.3]])
    lin = TaskBatch(sx, sx @ w[:, :, None] + 1.0, qx, qx @ w[:, :, None] + 1.0)
    assert A.ridge_per_user(lin, l2=1e-6).max() < 1e-6


def test_personalisation_training_and_curve():
    users = A.PreferenceUsers()
    maml = A.train_personalisation("maml", 5, users=users, meta_batch_size=4, progress=False)
    glob = A.train_personalisation("pretrain", 5, users=users, meta_batch_size=4, progress=False)
    curves = A.personalisation_curve({"MAML": maml, "global": glob}, shots=(2, 5), num_users=10, steps=1, users=users)
    assert len(curves) == 5 and all(len(c["mean"]) == 2 and len(c["ci95"]) == 2 for c in curves.values())
    A.personalisation_figure(curves, (2, 5))
    matplotlib.pyplot.close("all")


# ---------------------------------------------------------------------------------------------- figures
def test_figures_draw():
    ds = _tiny_dataset()
    tasks = EpisodeSampler(ds, 3, 1, 2, seed=0).sample(2)
    fig = A.prediction_figure(
        tasks, {"pixels": A.pixel_prototype_predictions(tasks.support_x[0], tasks.support_y[0], tasks.query_x[0], 3)}
    )
    assert len(fig.axes) == 2 * 6
    A.rl_returns_figure({"a": {"mean": [-3.0, -2.0], "ci95": [0.1, 0.2]}})
    torch.manual_seed(0)
    policy = rl.GaussianMLPPolicy(hidden=8)
    out = rl.adaptation_returns(
        policy, torch.tensor([[0.2, 0.1]]), steps=1, num_traj=3, horizon=5, keep_trajectories=True
    )
    A.trajectory_figure({"random": [t.positions()[0] for t in out["trajectories"]]}, torch.tensor([0.2, 0.1]))
    matplotlib.pyplot.close("all")
