import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from mlcourse.course.ch02 import widgets as ch02_widgets
from mlcourse.course.ch03 import widgets as ch03_widgets
from mlcourse.models import SinusoidMLP


def test_adaptation_widget_draws_once_and_redraws_on_slider_change():
    torch.manual_seed(0)
    w = ch02_widgets.adaptation_widget({"a": SinusoidMLP(hidden=8), "b": SinusoidMLP(hidden=8)}, display=False)
    assert w.output.draws == 1 and len(w.figure.axes) == 2
    slider = w.controls.children[0]
    slider.value = 3
    assert w.output.draws == 2 and w.values["k_shot"] == 3
    with pytest.raises(ValueError):
        ch02_widgets.adaptation_widget({"a": SinusoidMLP()}, k_shot=100, display=False)


def test_beta_widget_trains_each_beta_and_adds_curves():
    w = ch02_widgets.beta_widget(betas=(1e-3,), iterations=4, meta_batch_size=2, display=False, progress=False)
    assert w.output.draws == 1 and list(w.state["histories"]) == ["β=1.0e-03, 4 it."]
    beta_slider, iter_slider, add, clear = w.controls.children
    iter_slider.value = 10
    beta_slider.value = 1e-2
    add.click()
    assert len(w.state["histories"]) == 2 and w.output.draws == 2
    clear.click()
    assert len(w.state["histories"]) == 1


@pytest.mark.parametrize("algo", ["maml", "metasgd", "reptile"])
def test_algorithm_widget_runs_with_defaults(algo):
    w = ch03_widgets.algorithm_widget(
        algo=algo, iterations=3, meta_batch_size=2, num_tasks=5, display=False, progress=False
    )
    assert w.output.draws == 1 and len(w.figure.axes) == 3
    assert w.state["run"].algo == algo and w.state["run"].settings["iterations"] == 3


def _legend_below_axes(ax) -> bool:
    ax.figure.canvas.draw()
    return ax.get_legend().get_window_extent().y1 <= ax.get_window_extent().y0 + 1e-6


def test_titles_use_three_significant_digits_for_log_slider_values():
    """A log slider at 10^-1.7 gives alpha = 0.0199526...: titles must read 0.02 (3 significant digits)."""
    import matplotlib.pyplot as plt

    from mlcourse.course import plots
    from mlcourse.course.ch04 import bilevel

    assert plots.fmt(0.0199526) == "0.02" and plots.fmt(0.00125893) == "0.00126" and plots.fmt(0.01) == "0.01"
    torch.manual_seed(0)
    fig = ch02_widgets.adaptation_figure({"pretrained": SinusoidMLP(hidden=8)}, inner_lr=0.0199526, steps=1)
    title = fig.axes[0].get_title()
    assert "α=0.02" in title and "0.0199526" not in title and "0.01995" not in title
    plt.close(fig)
    w = ch03_widgets.algorithm_widget(
        inner_lr=0.0199526,
        outer_lr=0.00125893,
        iterations=2,
        meta_batch_size=2,
        num_tasks=3,
        display=False,
        progress=False,
    )
    suptitle = w.figure._suptitle.get_text()
    assert "α=0.02," in suptitle and "β=0.00126," in suptitle and "0.0199526" not in suptitle
    assert "α=0.02" in w.figure.axes[1].get_legend().get_texts()[0].get_text()
    fig = bilevel.draw_adaptation({"a": SinusoidMLP(hidden=8)}, alpha=0.0199526, num_tasks=4, max_steps=1)
    assert "=0.02," in fig.axes[0].get_title() and "0.0199526" not in fig.axes[0].get_title()
    assert _legend_below_axes(fig.axes[1])
    plt.close(fig)


def test_adaptation_figure_draws_the_mean_function_and_keeps_the_legend_off_the_data():
    """Chapter 02: the best single function for all tasks, -(2/pi) E[A] cos x = -1.62 cos x, is drawn next to
    the models (the pretrained network learns it); every panel's legend sits below its axes."""
    import math

    import matplotlib.pyplot as plt
    import numpy as np

    torch.manual_seed(0)
    fig = ch02_widgets.adaptation_figure({"MAML": SinusoidMLP(hidden=8), "pretrained": SinusoidMLP(hidden=8)}, steps=1)
    for ax in fig.axes:
        mean = [line for line in ax.lines if line.get_label() == "mean of all tasks: -1.62 cos x"]
        assert len(mean) == 1
        x, y = mean[0].get_xdata(), mean[0].get_ydata()
        np.testing.assert_allclose(y, -(2 / math.pi) * 2.55 * np.cos(x), atol=1e-5)
        assert _legend_below_axes(ax)
    plt.close(fig)
    fig = ch02_widgets.adaptation_figure({"m": SinusoidMLP(hidden=8)}, steps=1, show_mean=False)
    assert not [line for line in fig.axes[0].lines if line.get_label().startswith("mean of all tasks")]
    plt.close(fig)
