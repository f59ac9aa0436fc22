import math

import pytest
import torch

from mlcourse import experiments as ex
from mlcourse.algorithms import make_learner
from mlcourse.models import SinusoidMLP


def test_results_roundtrip_labels_device_and_date(tmp_path):
    path = ex.save_result("demo", {"x": [1, 2]}, "cpu", directory=tmp_path, wall_time_s=3.21)
    assert path == tmp_path / "demo.json"
    data = ex.load_result("demo", directory=tmp_path)
    assert data["x"] == [1, 2] and data["device_type"] == "cpu" and data["device"].startswith("CPU")
    assert data["date"] and data["torch_version"] == torch.__version__ and data["wall_time_s"] == 3.2
    assert ex.load_result("missing", directory=tmp_path) is None
    with pytest.raises(ValueError):
        ex.result_path("../x")


def test_mean_ci_and_table():
    m, c = ex.mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and math.isclose(c, 1.96 * math.sqrt(2 / 3) / math.sqrt(3))
    table = ex.format_table([["a", 1]], ["name", "value"])
    assert table.splitlines()[0].startswith("name") and "a" in table.splitlines()[2]


def test_pca_2d_recovers_the_dominant_direction():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(200, 1, generator=g)
    x = torch.cat([3 * t, 0.1 * torch.randn(200, 4, generator=g)], dim=1)
    points, ratio = ex.pca_2d(x)
    assert points.shape == (200, 2) and ratio[0] > 0.9
    assert torch.corrcoef(torch.stack([points[:, 0], t[:, 0].double()]))[0, 1].abs() > 0.99


def test_finetune_params_and_predictions_match_sgd_by_hand():
    torch.manual_seed(0)
    model = SinusoidMLP(hidden=8)
    x, y = torch.randn(5, 1), torch.randn(5, 1)
    path = ex.finetune_params(model, x, y, 0.1, 2)
    assert len(path) == 3
    loss = torch.nn.functional.mse_loss(model(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    for (name, _), g in zip(model.named_parameters(), grads):
        assert torch.allclose(path[1][name], dict(model.named_parameters())[name].detach() - 0.1 * g, atol=1e-6)
    preds = ex.sinusoid_predictions(model, x, y, torch.zeros(3, 1), 0.1, (0, 2))
    assert set(preds) == {0, 2} and preds[0].shape == (3,)


def test_adaptation_curve_uses_the_learner_and_fixed_tasks():
    torch.manual_seed(0)
    learner = make_learner("maml", SinusoidMLP(hidden=8), inner_lr=0.01)
    curve = ex.adaptation_curve(learner, 5, 3, num_tasks=20, keep_per_task=True)
    assert curve["steps"] == [0, 1, 2, 3] and len(curve["per_task"][0]) == 20
    again = ex.adaptation_curve(learner, 5, 3, num_tasks=20, inner_lr=0.05)
    assert again["mean"][0] == curve["mean"][0]          # same tasks, no adaptation
    assert again["mean"][3] != curve["mean"][3]          # other step size
    assert learner.inner_lr == 0.01                        # restored
    shots = ex.shots_curve(learner, (1, 5), num_tasks=10)
    assert shots["shots"] == [1, 5] and len(shots["mean"]) == 2


def test_small_paper_experiment_and_beats_criterion(tmp_path, monkeypatch):
    monkeypatch.setattr(ex, "RESULTS_DIR", tmp_path)
    res = ex.sinusoid_paper_experiment(30, meta_batch_size=4, num_tasks=20, progress=False, save_as="tiny")
    r = res.results
    assert set(r["comparison"]) == {"K=5", "K=10"}
    entry = r["comparison"]["K=5"]
    assert len(entry["maml"]["mean"]) == 11 and entry["pretrained_lr"] == 0.01
    assert r["comparison"]["K=10"]["pretrained_lr"] == 0.02
    assert isinstance(r["maml_beats_pretrained"]["K=5"], bool)
    assert "MAML (paper)" in ex.paper_table(r)
    assert ex.load_result("tiny")["setting"]["iterations"] == 30
    fake = {"K=5": {"difference": {"mean": [0.0, 1.0, 1, 1, 1, 1.0, 1, 1, 1, 1, 1.0], "ci95": [0.1] * 11}}}
    assert ex.maml_beats_pretrained(fake, 5) is True
    fake["K=5"]["difference"]["ci95"][5] = 0.95
    assert ex.maml_beats_pretrained(fake, 5) is False
