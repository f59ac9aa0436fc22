import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from mlcourse.course import plots
from mlcourse.course.ch00 import figures as ch00_figures
from mlcourse.course.ch02 import plots as ch02_plots
from mlcourse.course.ch03 import plots as ch03_plots


def test_accuracy_bars_and_close():
    fig = plots.accuracy_bars({"a": (0.5, 0.05), "b": (0.9, 0.02)}, chance=0.2, title="t")
    ax = fig.axes[0]
    assert len(ax.patches) == 2 and [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    plots.close(fig)
    with pytest.raises(ValueError):
        plots.accuracy_bars({})


def test_curves_fits_and_embedding_draw():
    x = torch.linspace(-5, 5, 50)
    figs = [
        plots.sinusoid_tasks(x, [torch.sin(x), 2 * torch.sin(x)], [(1.0, 0.0), (2.0, 0.0)]),
        plots.sinusoid_fit(x, torch.sin(x), x[:5], torch.sin(x[:5]), {"pred": torch.zeros(50)}),
        plots.adaptation_curves({"m": [3, 2, 1]}, errors={"m": [0.1, 0.1, 0.1]}, logy=True),
        plots.learning_curves({"m": ([1, 2, 3, 4, 5, 6], [5, 4, 3, 2, 1, 1])}, smooth=2),
        ch02_plots.task_embedding(torch.randn(10, 2), torch.rand(10), colour_label="A"),
        plots.task_images(
            torch.rand(10, 1, 8, 8),
            torch.arange(5).repeat_interleave(2),
            query_x=torch.rand(5, 1, 8, 8),
            query_y=torch.arange(5),
        ),
    ]
    assert len(figs[2].axes[0].lines) == 1
    assert len(figs[5].axes) == 5 * 4  # 5 classes x (2 support + 2 query columns)
    for f in figs:
        plots.close(f)
    with pytest.raises(ValueError):
        ch02_plots.task_embedding(torch.randn(10, 3), torch.rand(10))


def test_sharpness_histogram_labels_median_and_share_above_two():
    fig = ch02_plots.sharpness_histogram({"K=5": [0.5, 1.5, 2.5, 3.0], "K=10": torch.tensor([1.0, 1.2, 1.4])})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["K=5: median 2.00, 50% > 2", "K=10: median 1.20, 0% > 2"]
    assert [line.get_xdata()[0] for line in fig.axes[0].lines] == [1.0, 2.0]
    plots.close(fig)
    with pytest.raises(ValueError):
        ch02_plots.sharpness_histogram({})


# --- pictures and maps (chapters 00, 02, 03) -------------------------------------------------------------

from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from mlcourse.algorithms import make_learner  # noqa: E402
from mlcourse.course.ch02 import toy2d  # noqa: E402
from mlcourse.data import TaskBatch  # noqa: E402
from mlcourse.models import Conv4  # noqa: E402


def _patches(fig, kind):
    return [p for p in fig.axes[0].patches if isinstance(p, kind)]


def _texts(fig):
    return "\n".join(t.get_text() for t in fig.axes[0].texts)


def test_field_map_has_three_families_one_box_per_algorithm_and_chapters():
    fig = ch00_figures.field_map()
    algorithms = [a for _, _, algos in ch00_figures.FIELD_MAP for a in algos]
    assert [f for f, _, _ in ch00_figures.FIELD_MAP] == [
        "metric-based",
        "optimisation-based",
        "model-based / black-box",
    ]
    assert len(_patches(fig, FancyBboxPatch)) == 1 + 3 + len(algorithms)  # root, families, algorithms
    assert len(_patches(fig, FancyArrowPatch)) == 3  # root -> each family
    text = _texts(fig)
    for name, reference, where in algorithms:
        assert name in text and reference in text and where in text
    families = {f: [a[0] for a in algos] for f, _, algos in ch00_figures.FIELD_MAP}
    assert {"Prototypical Networks", "Matching Networks"} == set(families["metric-based"])
    assert {
        "MAML",
        "first-order MAML",
        "Reptile",
        "Meta-SGD",
        "ANIL",
        "Proto-MAML",
        "iMAML (implicit gradients)",
    } == set(families["optimisation-based"])
    black_box = [a for a in algorithms if a[0] in families["model-based / black-box"]]
    run_here = [name for name, _, where in black_box if "not run in this course" not in where]
    assert run_here == ["in-context sequence models"]  # chapter 08's black-box learner; the others are named only
    assert all(
        (" 08 " if name.startswith("iMAML") else " 03 ") in f"{where} "
        for _, _, algos in ch00_figures.FIELD_MAP[:2]
        for name, _, where in algos
        if "not run in this course" not in where
    )  # all that are run, run in ch. 03, except iMAML: chapter 08 measures it
    plots.close(fig)


@pytest.mark.parametrize("first_order", [False, True])
def test_inner_outer_loop_diagram_boxes_and_arrows(first_order):
    fig = ch02_plots.inner_outer_loop_diagram(first_order=first_order)
    assert len(_patches(fig, FancyBboxPatch)) == 8  # theta, 2 tasks x (inner SGD, phi_i, query loss), outer update
    arrows = _patches(fig, FancyArrowPatch)
    assert len(arrows) == 9  # theta -> inner (2), inner -> phi (2), phi -> loss (2), loss -> outer (2), meta-gradient
    assert [a.get_linestyle() for a in arrows].count("--") == 1  # the meta-gradient back to theta
    text = _texts(fig)
    assert "support set $S_{1}$" in text and "query loss on $Q_{B}$" in text and "meta-gradient back to" in text
    assert ("Hessian dropped" in text) is first_order
    plots.close(fig)


def test_toy2d_tasks_are_class_major_and_labelled_by_their_boundary():
    batch = toy2d.sample_tasks(6, 4, 7, kind="mixed", generator=torch.Generator().manual_seed(3))
    assert batch.support_x.shape == (6, 8, 2) and batch.query_x.shape == (6, 14, 2) and batch.n_way == 2
    assert batch.support_y[0].tolist() == [0] * 4 + [1] * 4 and batch.query_y[0].tolist() == [0] * 7 + [1] * 7
    assert set(batch.task_params[:, 0].tolist()) <= {0.0, 1.0}
    for t in range(6):
        assert torch.equal(toy2d.true_labels(batch.support_x[t], batch.task_params[t]), batch.support_y[t])
        assert torch.equal(toy2d.true_labels(batch.query_x[t], batch.task_params[t]), batch.query_y[t])
    assert (batch.support_x.abs() <= 2.0).all()
    with pytest.raises(ValueError):
        toy2d.sample_tasks(1, kind="spiral")


def test_maml_decision_boundary_moves_after_adaptation():
    run = toy2d.meta_train(200, seed=0)
    assert run.learner.algorithm_name == "maml" and len(run.history[1]) == 200
    new_tasks = toy2d.sample_tasks(100, 5, 25, generator=torch.Generator().manual_seed(11))
    before = float(run.learner.evaluate(new_tasks, inner_steps=0)["query_accuracy"].mean())
    after = {s: float(run.learner.evaluate(new_tasks, inner_steps=s)["query_accuracy"].mean()) for s in (1, 5)}
    assert before < 0.65 and after[1] > before + 0.2 and after[5] > before + 0.2, (before, after)
    task = toy2d.sample_tasks(1, 5, 50, generator=torch.Generator().manual_seed(1))
    grid = toy2d.decision_grid(run.learner, task, (0, 1, 5), resolution=40)
    assert grid.probs[0].shape == (40, 40) and not torch.allclose(grid.probs[0], grid.probs[5])
    assert grid.accuracy[1] > grid.accuracy[0] + 0.1 and grid.accuracy[5] > grid.accuracy[0] + 0.1, grid.accuracy
    fig = ch02_plots.maml_decision_boundaries(grid, task)
    assert len(fig.axes) == 3
    for ax, s in zip(fig.axes, (0, 1, 5)):
        support = [c for c in ax.collections if c.get_label() == "support points"]
        assert len(support) == 1 and len(support[0].get_offsets()) == 10
        assert f"{100 * grid.accuracy[s]:.0f}%" in ax.get_title()
    plots.close(fig)


def _image_batch(n_way=5, k_shot=2, n_query=3, tasks=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TaskBatch(
        torch.rand(tasks, n_way * k_shot, 1, 28, 28, generator=g),
        torch.arange(n_way).repeat_interleave(k_shot).expand(tasks, -1).clone(),
        torch.rand(tasks, n_way * n_query, 1, 28, 28, generator=g),
        torch.arange(n_way).repeat_interleave(n_query).expand(tasks, -1).clone(),
    )


def test_prototype_embedding_marks_one_prototype_per_class():
    torch.manual_seed(0)
    learner = make_learner("protonet", Conv4(hidden=8))
    batch = _image_batch()
    data = ch03_plots.prototype_projection(learner, batch, task=1)
    assert data["support"].shape == (10, 2) and data["query"].shape == (15, 2) and data["prototypes"].shape == (5, 2)
    # the picture's "nearest prototype" is the ProtoNet's own decision, in either normalisation mode
    assert data["accuracy"] == pytest.approx(float(learner.evaluate(batch.task(1))["query_accuracy"][0]))
    with learner.normalising("support"):
        one = batch.task(1)
        own = learner.predict(learner.adapt(one), one.query_x)[0].argmax(-1)
        assert torch.equal(ch03_plots.prototype_projection(learner, batch, task=1)["predicted"], own)
    fig = ch03_plots.prototype_embedding(learner, batch, task=1)
    counts = {c.get_label().split(" ")[0]: len(c.get_offsets()) for c in fig.axes[0].collections}
    assert counts == {"query": 15, "prototypes": 5, "support": 10}
    assert [t.get_text() for t in fig.axes[0].texts] == [f"class {c}" for c in range(5)]
    plots.close(fig)
    with pytest.raises(ValueError):
        ch03_plots.prototype_projection(learner, batch, task=2)


def test_attention_map_rows_sum_to_one_and_match_the_matching_net():
    torch.manual_seed(0)
    learner = make_learner("matchingnet", Conv4(hidden=8))
    batch = _image_batch(n_way=4, k_shot=3, n_query=2)
    data = ch03_plots.matching_attention(learner, batch)
    assert data["attention"].shape == (8, 12) and data["probs"].shape == (8, 4)
    assert torch.allclose(data["attention"].sum(-1), torch.ones(8), atol=1e-5)
    one = batch.task(0)
    assert torch.allclose(data["probs"], learner.predict(learner.adapt(one), one.query_x)[0].exp(), atol=1e-5)
    fig = ch03_plots.attention_map(learner, batch)
    attention, probs = fig.axes[0].images[0].get_array(), fig.axes[1].images[0].get_array()
    assert attention.shape == (8, 12) and probs.shape == (8, 4)
    assert abs(attention.sum(1) - 1).max() < 1e-5 and abs(probs.sum(1) - 1).max() < 1e-5
    plots.close(fig)
    with pytest.raises(TypeError):
        ch03_plots.matching_attention(make_learner("protonet", Conv4(hidden=8)), batch)
