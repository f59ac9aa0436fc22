import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from mlcourse import widgets
from mlcourse.models import SinusoidMLP


def test_adaptation_widget_draws_once_and_redraws_on_slider_change():
    torch.manual_seed(0)
    w = widgets.adaptation_widget({"a": SinusoidMLP(hidden=8), "b": SinusoidMLP(hidden=8)}, display=False)
    assert w.output.draws == 1 and len(w.figure.axes) == 2
    slider = w.controls.children[0]
    slider.value = 3
    assert w.output.draws == 2 and w.values["k_shot"] == 3
    with pytest.raises(ValueError):
        widgets.adaptation_widget({"a": SinusoidMLP()}, k_shot=100, display=False)


def test_beta_widget_trains_each_beta_and_adds_curves():
    w = widgets.beta_widget(betas=(1e-3,), iterations=4, meta_batch_size=2, display=False, progress=False)
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
    w = widgets.algorithm_widget(algo=algo, iterations=3, meta_batch_size=2, num_tasks=5, display=False, progress=False)
    assert w.output.draws == 1 and len(w.figure.axes) == 3
    assert w.state["run"].algo == algo and w.state["run"].settings["iterations"] == 3
