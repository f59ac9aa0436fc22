"""Chapter 04's compute functions (``mlcourse.course.ch04_bilevel``): the meta-gradient formulas against autograd
and central finite differences in float64, the first-order error, the article's rule = joint training,
Reptile's Taylor expansion, and the two widgets (Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from mlcourse.course.ch04 import bilevel as B
from mlcourse.data.sinusoid import SinusoidTasks
from mlcourse.models import SinusoidMLP


@pytest.fixture(scope="module")
def sinusoid_problem():
    torch.manual_seed(0)
    model = SinusoidMLP(hidden=16, layers=2).double()
    batch = SinusoidTasks().sample(3, 10, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    theta, _ = B.flatten_parameters(model)
    return model, batch, B.regression_tasks(model, batch), theta


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_toy_formula_matches_autograd_and_finite_differences(steps: int) -> None:
    theta = torch.tensor(B.TOY_THETA0, dtype=torch.float64)
    for task in B.toy_tasks():
        auto = B.meta_gradient_autograd(task, theta, 0.3, steps)
        formula = B.meta_gradient_formula(task, theta, 0.3, steps)
        fd = B.finite_difference_gradient(lambda t: B.meta_objective(task, t, 0.3, steps), theta)
        assert B.relative_error(formula, auto) < 1e-12
        assert B.relative_error(fd, auto) < 1e-7


def test_toy_quadratic_closed_form() -> None:
    # For L = 1/2 (t - c)^T A (t - c) the meta-gradient is (I - alpha A)^K A (phi_K - c_val).
    theta = torch.tensor(B.TOY_THETA0, dtype=torch.float64)
    task = B.toy_tasks()[0]
    hess = torch.func.hessian(task.support_loss)(theta)
    alpha, steps = 0.2, 3
    phi = B.inner_trajectory(task.support_loss, theta, alpha, steps)[-1]
    expected = torch.linalg.matrix_power(torch.eye(2, dtype=torch.float64) - alpha * hess, steps) @ torch.func.grad(
        task.query_loss
    )(phi)
    assert B.relative_error(B.meta_gradient_formula(task, theta, alpha, steps), expected) < 1e-12


@pytest.mark.parametrize("steps", [1, 3])
def test_network_formula_matches_autograd_and_directional_fd(sinusoid_problem, steps: int) -> None:
    _, _, tasks, theta = sinusoid_problem
    directions = torch.randn(4, theta.numel(), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for task in tasks[:2]:
        auto = B.meta_gradient_autograd(task, theta, 0.01, steps)
        formula = B.meta_gradient_formula(task, theta, 0.01, steps)
        fd = B.finite_difference_gradient(
            lambda t: B.meta_objective(task, t, 0.01, steps), theta, directions=directions
        )
        assert B.relative_error(formula, auto) < 1e-10
        assert B.relative_error(fd, directions @ auto) < 1e-6


def test_hvp_matches_dense_hessian(sinusoid_problem) -> None:
    _, _, tasks, theta = sinusoid_problem
    v = torch.randn(theta.numel(), dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    dense = torch.func.hessian(tasks[0].support_loss)(theta)
    assert B.relative_error(B.hvp(tasks[0].support_loss, theta, v), dense @ v) < 1e-10


def test_zero_inner_steps_is_the_plain_query_gradient(sinusoid_problem) -> None:
    _, _, tasks, theta = sinusoid_problem
    g = torch.func.grad(tasks[0].query_loss)(theta)
    assert B.relative_error(B.meta_gradient_formula(tasks[0], theta, 0.5, 0), g) < 1e-14
    assert B.relative_error(B.first_order_meta_gradient(tasks[0], theta, 0.5, 0), g) < 1e-14


def test_first_order_error_grows_with_alpha(sinusoid_problem) -> None:
    _, _, tasks, theta = sinusoid_problem
    alphas = [1e-4, 1e-3, 1e-2, 3e-2]
    errors = B.first_order_relative_error(tasks, theta, alphas)
    assert torch.all(errors[1:] > errors[:-1]), errors
    assert errors[0] < 1e-2
    # to first order in alpha the error is linear: ten times alpha, about ten times the error
    assert 5 < float(errors[1] / errors[0]) < 20
    toy = B.first_order_relative_error(B.toy_tasks(), torch.tensor(B.TOY_THETA0, dtype=torch.float64), [0.01, 0.1, 0.2])
    assert torch.all(toy[1:] > toy[:-1])


def test_article_rule_is_joint_training_and_not_maml(sinusoid_problem) -> None:
    _, _, tasks, theta = sinusoid_problem
    losses = [t.query_loss for t in tasks]
    article = B.article_update_direction(losses, theta, alpha=0.01)
    assert B.relative_error(article, B.joint_training_gradient(losses, theta)) < 1e-12
    # independent of alpha: the adapted theta_i never enter it
    assert torch.equal(article, B.article_update_direction(losses, theta, alpha=0.5))
    maml = B.mean_over_tasks(B.meta_gradient_formula, tasks, theta, 0.01, 1)
    assert B.relative_error(article, maml) > 0.01  # small alpha: MAML = joint training + O(alpha)


def test_reptile_taylor_expansion_is_third_order(sinusoid_problem) -> None:
    _, _, tasks, theta = sinusoid_problem
    a, b = tasks[0].support_loss, tasks[1].support_loss
    joint = 2 * B.joint_training_gradient([a, b], theta)
    align = B.gradient_alignment_gradient(a, b, theta)
    errors, first_order = [], []
    for alpha in (2e-3, 1e-3, 5e-4):
        two_orders = 0.5 * (B.reptile_displacement([a, b], theta, alpha) + B.reptile_displacement([b, a], theta, alpha))
        errors.append(float((two_orders - (-alpha * joint + alpha**2 / 2 * align)).norm()))
        first_order.append(float((two_orders + alpha * joint).norm()))
        one = B.reptile_displacement([a, b], theta, alpha)
        assert B.relative_error(one, B.reptile_taylor_two_steps(a, b, theta, alpha)) < 1e-3
    assert 6 < errors[0] / errors[1] < 10 and 6 < errors[1] / errors[2] < 10  # O(alpha^3)
    assert 3 < first_order[0] / first_order[1] < 5  # the alignment term is O(alpha^2)


def test_adaptation_curve_matches_a_loop(sinusoid_problem) -> None:
    model, batch, tasks, theta = sinusoid_problem
    curve = B.mean_adaptation_loss(model, batch, alpha=0.01, max_steps=3)
    expected = []
    for steps in range(4):
        phis = [B.inner_trajectory(t.support_loss, theta, 0.01, steps)[-1] for t in tasks]
        expected.append(torch.stack([t.query_loss(p) for t, p in zip(tasks, phis)]).mean())
    assert torch.allclose(curve, torch.stack(expected), rtol=1e-10, atol=0)
    assert curve.shape == (4,)


def test_outer_trajectory_rules() -> None:
    tasks, theta = B.toy_tasks(), torch.tensor(B.TOY_THETA0, dtype=torch.float64)
    for rule in ("maml", "fomaml", "article"):
        pts = B.outer_trajectory(tasks, theta, 0.2, 0.3, 1, 5, rule)
        assert pts.shape == (6, 2) and torch.isfinite(pts).all()
    with pytest.raises(ValueError, match="allowed"):
        B.outer_trajectory(tasks, theta, 0.2, 0.3, 1, 5, "sgd")


def test_widgets_build_and_draw_with_defaults() -> None:
    import ipywidgets
    import matplotlib.pyplot as plt

    fig = B.draw_toy_landscape()
    assert len(fig.axes) == 2
    plt.close(fig)
    controls = B.toy_landscape_widget()
    assert isinstance(controls, ipywidgets.VBox)
    controls.children[0].children[0].value = 0.2

    torch.manual_seed(0)
    models = {"a": SinusoidMLP(), "b": SinusoidMLP()}
    fig = B.draw_adaptation(models, num_tasks=8, max_steps=2)
    assert len(fig.axes) == 2
    plt.close(fig)
    controls = B.adaptation_widget(models, max_steps=2, num_tasks=8)
    assert isinstance(controls, ipywidgets.HBox)
    controls.children[0].value = 0.02  # a slider change redraws (headless: no display)


def test_package_learners_match_the_formulas(sinusoid_problem) -> None:
    from mlcourse.algorithms import make_learner

    model, batch, tasks, theta = sinusoid_problem
    for steps in (1, 2):
        model.zero_grad(set_to_none=True)
        make_learner("maml", model, inner_lr=0.01, inner_steps=steps)(batch).loss.backward()
        got = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        assert B.relative_error(got, B.mean_over_tasks(B.meta_gradient_formula, tasks, theta, 0.01, steps)) < 1e-10
    model.zero_grad(set_to_none=True)
    make_learner("article", model, inner_lr=0.01)(batch).loss.backward()
    got = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    assert B.relative_error(got, B.joint_training_gradient([t.support_loss for t in tasks], theta)) < 1e-10
    model.zero_grad(set_to_none=True)


def test_meta_train_runs_and_restores_threads() -> None:
    from mlcourse.algorithms import make_learner

    threads = torch.get_num_threads()
    torch.manual_seed(0)
    learner = make_learner("maml", SinusoidMLP(hidden=16), inner_lr=0.01)
    history = B.meta_train(
        learner, lambda g: SinusoidTasks().sample(8, 5, 5, generator=g), 40, outer_lr=3e-3, progress=False
    )
    assert len(history) == 40 and all(map(lambda v: v == v, history))
    assert sum(history[-10:]) < sum(history[:10])
    assert torch.get_num_threads() == threads
