"""Chapter 08's exercises: the references pass, wrong answers fail, ``None`` prints the reference result."""

from __future__ import annotations

import math

import torch

from mlcourse.course.exercises import ch08


def test_predict_maml_memory(capsys):
    torch.set_num_threads(1)
    assert ch08.check_predict_maml_memory(ch08.predict_maml_memory)
    assert not ch08.check_predict_maml_memory(lambda m1, m2, k: m1 * k)  # proportional: ignores the constant part
    assert not ch08.check_predict_maml_memory(None)
    assert "Measured (exact)" in capsys.readouterr().out


def test_loglog_slope():
    assert ch08.check_loglog_slope(ch08.loglog_slope)
    assert not ch08.check_loglog_slope(
        lambda xs, ys: math.log(ys[-1] / ys[0]) / math.log(xs[-1] / xs[0])
    )  # endpoints only
    assert not ch08.check_loglog_slope(None)


def test_conv4_forward_flops():
    assert ch08.check_conv4_forward_flops(ch08.conv4_forward_flops)
    assert not ch08.check_conv4_forward_flops(lambda h, s, c, n: ch08.conv4_forward_flops(h, s, c, n) // 2)  # MACs
    assert not ch08.check_conv4_forward_flops(None)
    assert ch08.conv4_forward_flops(64, 32, 3, 5) == 28_314_112
