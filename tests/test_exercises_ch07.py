"""Chapter 07's exercises: the references pass, wrong answers fail, ``None`` prints the reference result."""

from __future__ import annotations

import pytest
import torch

from mlcourse.bench import load_learn2learn
from mlcourse.course.exercises import ch07


def test_l2l_meta_loss_reference_passes_and_wrong_answers_fail(capsys):
    assert load_learn2learn() is not None, (
        "learn2learn is missing: scripts/install_learn2learn.sh installs it (make setup)"
    )
    assert ch07.check_l2l_meta_loss(ch07.l2l_meta_loss)
    # always second order: wrong for first_order=True
    assert not ch07.check_l2l_meta_loss(lambda m, b, lr, k, fo: ch07.l2l_meta_loss(m, b, lr, k, False))
    # one step too few
    assert not ch07.check_l2l_meta_loss(lambda m, b, lr, k, fo: ch07.l2l_meta_loss(m, b, lr, k - 1, fo))
    assert not ch07.check_l2l_meta_loss(None)
    assert "make_learner('maml')" in capsys.readouterr().out


def test_task_to_batch_reference_and_wrong_answers(capsys):
    assert ch07.check_task_to_batch(ch07.task_to_batch)

    def no_sort(data, labels, n, k):  # forgets to make the task class-major
        return ch07.task_to_batch(data, torch.arange(n).repeat_interleave(labels.numel() // n), n, k)

    assert not ch07.check_task_to_batch(no_sort)
    assert not ch07.check_task_to_batch(lambda *a: 1 / 0)
    assert not ch07.check_task_to_batch(None)
    out = capsys.readouterr().out
    assert "raised ZeroDivisionError" in out and "no answer yet" in out


def test_task_to_batch_refuses_unbalanced_tasks():
    with pytest.raises(ValueError, match="same number"):
        ch07.task_to_batch(torch.zeros(3, 1), torch.tensor([0, 0, 1]), 2, 1)
