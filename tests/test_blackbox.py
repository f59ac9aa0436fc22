"""The black-box (model-based) learner of chapter 08's trends: exact meta-gradient (float64: vmap = loop = finite
differences), attention to the support set only, invariance to the order of the support points, and learning."""

from __future__ import annotations

import pytest
import torch
from test_algorithms_helpers import fd_directional, meta_grad, rel, sine_batch

from mlcourse.algorithms import BlackBox
from mlcourse.data import SinusoidTasks
from mlcourse.models import InContextRegressor
from mlcourse.train import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")
F64 = torch.float64


def blackbox(seed: int = 0, width: int = 16) -> BlackBox:
    torch.manual_seed(seed)
    return BlackBox(InContextRegressor(width=width, layers=2, heads=2).to(F64))


def test_meta_gradient_vectorised_equals_loop_and_finite_differences() -> None:
    lrn, batch = blackbox(), sine_batch()
    vec, loop = meta_grad(lrn, batch, True), meta_grad(lrn, batch, False)
    assert vec.norm() > 0 and rel(vec, loop) < 1e-10
    assert fd_directional(lambda: lrn(batch).loss, list(lrn.parameters()), vec) < 1e-6


def test_queries_see_the_support_set_only_in_any_order() -> None:
    lrn, batch = blackbox(), sine_batch(tasks=1, k=5, q=6)
    state = lrn.adapt(batch)
    assert set(state) == {"support_x", "support_y"}
    full = lrn.predict(state, batch.query_x)[0]
    alone = lrn.predict(state, batch.query_x[:, 2:3])[0]  # one query without the others
    assert torch.allclose(full[2:3], alone, rtol=1e-12, atol=1e-12)
    order = torch.randperm(5, generator=torch.Generator().manual_seed(1))
    shuffled = {k: v[:, order] for k, v in state.items()}
    assert torch.allclose(lrn.predict(shuffled, batch.query_x)[0], full, rtol=1e-10, atol=1e-12)
    moved = {**state, "support_y": state["support_y"] + 1.0}
    assert not torch.allclose(lrn.predict(moved, batch.query_x)[0], full)


def test_it_refuses_classification_and_learns_sinusoids_in_context() -> None:
    from test_algorithms_helpers import image_batch

    with pytest.raises(ValueError, match="regression"):
        blackbox().evaluate(image_batch())
    torch.manual_seed(0)
    lrn = BlackBox(InContextRegressor(width=32, layers=2, heads=2))
    g = torch.Generator().manual_seed(0)
    test = SinusoidTasks().sample(50, 10, 20, generator=torch.Generator().manual_seed(9))
    before = float(lrn.evaluate(test)["query_loss"].mean())
    Trainer(lrn, outer_lr=3e-3).run(lambda: SinusoidTasks().sample(16, 10, 10, generator=g), 300)
    after = float(lrn.evaluate(test)["query_loss"].mean())
    zero = float(test.query_y.square().mean())  # predicting y = 0 everywhere
    assert after < 0.5 * before and after < 0.5 * zero, (before, after, zero)


def test_blackbox_vs_maml_writes_a_labelled_results_file(tmp_path):
    from mlcourse.course import result_files, sinusoid
    from mlcourse.course.ch08 import blackbox as ch08_blackbox

    run = ch08_blackbox.blackbox_vs_maml(3, num_tasks=6, width=16, heads=2, meta_batch_size=4, progress=False)
    assert run["settings"]["iterations"] == 3 and len(run["test"]["K=5"]["per_task"]) == 6
    path = ch08_blackbox.save_blackbox_vs_maml(run, "cpu", directory=tmp_path)
    saved = result_files.load_result(ch08_blackbox.BLACKBOX_VS_MAML, directory=tmp_path)
    assert path.exists() and saved["device_name"].startswith("CPU") and saved["wall_time_s"] >= 0 and saved["date"]
    maml = {
        "comparison": {
            f"K={k}": {"maml": {"mean": [0.0] * 11, "ci95": [0.0] * 11, "median": [0.0] * 11}} for k in (5, 10)
        }
    }
    table = ch08_blackbox.blackbox_table(saved, maml)
    assert (
        "MAML, 10 steps" in table
        and sinusoid.mse_cell(saved["test"]["K=5"]["mean"], saved["test"]["K=5"]["ci95"]) in table
    )
