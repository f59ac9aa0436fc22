"""Chapter 04's exercises: the reference solutions pass their checkers, wrong answers fail, and
``None`` prints the reference result."""

from __future__ import annotations

import torch

from mlcourse.course import ch04_bilevel as B
from mlcourse.course.exercises import ch04


def test_two_step_meta_gradient_reference_passes(capsys) -> None:
    assert ch04.check_two_step_meta_gradient(ch04.two_step_meta_gradient)
    assert "not yet" not in capsys.readouterr().out


def test_two_step_meta_gradient_rejects_first_order_and_wrong_order(capsys) -> None:
    assert not ch04.check_two_step_meta_gradient(
        lambda task, theta, alpha: B.first_order_meta_gradient(task, theta, alpha, 2)
    )

    def hessians_at_theta(task, theta, alpha):  # both Hessians at theta: exact only for quadratics
        phi2 = B.inner_trajectory(task.support_loss, theta, alpha, 2)[-1]
        v = torch.func.grad(task.query_loss)(phi2)
        for _ in range(2):
            v = v - alpha * B.hvp(task.support_loss, theta, v)
        return v

    assert not ch04.check_two_step_meta_gradient(hessians_at_theta)
    assert "not yet" in capsys.readouterr().out


def test_two_step_meta_gradient_none_prints_reference(capsys) -> None:
    assert not ch04.check_two_step_meta_gradient(None)
    assert "Reference" in capsys.readouterr().out


def test_first_order_error_closed_form() -> None:
    assert ch04.check_first_order_error_quadratic(ch04.first_order_error_quadratic)
    assert not ch04.check_first_order_error_quadratic(lambda a, alpha, k: alpha * a * k)  # only the leading term
    assert not ch04.check_first_order_error_quadratic(None)
    assert abs(ch04.first_order_error_quadratic(2.0, 0.1, 1) - 0.25) < 1e-12  # 0.2 / 0.8


def test_joint_training_loss_reference_matches_the_article_learner() -> None:
    assert ch04.check_joint_training_loss(ch04.joint_training_loss)
    assert not ch04.check_joint_training_loss(None)

    def query_loss_instead(model, batch):
        return ch04.joint_training_loss(model, batch.replace(support_x=batch.query_x, support_y=batch.query_y))

    assert not ch04.check_joint_training_loss(query_loss_instead)
