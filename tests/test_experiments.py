import math

import pytest
import torch

from mlcourse.algorithms import make_learner
from mlcourse.course import omniglot, result_files, sinusoid
from mlcourse.course.ch01 import scratch as ch01_scratch
from mlcourse.course.ch02 import paper as ch02_paper
from mlcourse.models import SinusoidMLP
from mlcourse.stats import mean_ci
from mlcourse.tables import format_table


def test_results_roundtrip_labels_device_and_date(tmp_path):
    path = result_files.save_result("demo", {"x": [1, 2]}, "cpu", directory=tmp_path, wall_time_s=3.21)
    assert path == tmp_path / "demo.json"
    data = result_files.load_result("demo", directory=tmp_path)
    assert data["x"] == [1, 2] and data["device"] == "cpu" and data["device_name"].startswith("CPU")
    assert data["date"] and data["torch"] == torch.__version__ and data["wall_time_s"] == 3.2
    assert data["threads"] == torch.get_num_threads() and data["allocator"] and data["fast_mode"] in (True, False)
    assert result_files.load_result("missing", directory=tmp_path) is None
    with pytest.raises(ValueError):
        result_files.result_path("../x")


def test_mean_ci_and_table():
    m, c = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and math.isclose(c, 1.96 * math.sqrt(2 / 3) / math.sqrt(3))
    table = format_table([["a", 1]], ["name", "value"])
    assert table.splitlines()[0].startswith("name") and "a" in table.splitlines()[2]


def test_pca_2d_recovers_the_dominant_direction():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(200, 1, generator=g)
    x = torch.cat([3 * t, 0.1 * torch.randn(200, 4, generator=g)], dim=1)
    points, ratio = ch02_paper.pca_2d(x)
    assert points.shape == (200, 2) and ratio[0] > 0.9
    assert torch.corrcoef(torch.stack([points[:, 0], t[:, 0].double()]))[0, 1].abs() > 0.99


def _sgd_path(model, x, y, lr, steps):
    """Plain SGD by hand (autograd, one task): the parameters after 0..steps steps."""
    from torch.func import functional_call

    p = {k: v.detach().clone() for k, v in model.named_parameters()}
    path = [p]
    for _ in range(steps):
        leaves = {k: v.clone().requires_grad_() for k, v in p.items()}
        loss = torch.nn.functional.mse_loss(functional_call(model, leaves, (x,)), y)
        grads = torch.autograd.grad(loss, list(leaves.values()))
        p = {k: (v - lr * g).detach() for (k, v), g in zip(leaves.items(), grads)}
        path.append(p)
    return path


def test_predictions_match_sgd_by_hand():
    from torch.func import functional_call

    torch.manual_seed(0)
    model = SinusoidMLP(hidden=8)
    x, y, grid = torch.randn(5, 1), torch.randn(5, 1), torch.linspace(-5, 5, 7).unsqueeze(-1)
    path = _sgd_path(model, x, y, 0.1, 2)
    preds = sinusoid.sinusoid_predictions(model, x, y, grid, 0.1, (0, 2))
    assert set(preds) == {0, 2} and preds[0].shape == (7,)
    for s in (0, 2):
        with torch.no_grad():
            assert torch.allclose(preds[s], functional_call(model, path[s], (grid,)).squeeze(-1), atol=1e-6)


def test_adaptation_curve_uses_the_learner_and_fixed_tasks():
    torch.manual_seed(0)
    learner = make_learner("maml", SinusoidMLP(hidden=8), inner_lr=0.01)
    curve = sinusoid.sinusoid_adaptation(learner, 5, 3, num_tasks=20, keep_per_task=True)
    assert curve["steps"] == [0, 1, 2, 3] and len(curve["per_task"][0]) == 20
    again = sinusoid.sinusoid_adaptation(learner, 5, 3, num_tasks=20, inner_lr=0.05)
    assert again["mean"][0] == curve["mean"][0]  # same tasks, no adaptation
    assert again["mean"][3] != curve["mean"][3]  # other step size
    assert learner.inner_lr == 0.01  # restored
    shots = ch02_paper.shots_curve(learner, (1, 5), num_tasks=10)
    assert shots["shots"] == [1, 5] and len(shots["mean"]) == 2


def test_small_paper_experiment_and_beats_criterion(tmp_path, monkeypatch):
    monkeypatch.setattr(result_files, "RESULTS_DIR", tmp_path)
    res = ch02_paper.sinusoid_paper_experiment(30, meta_batch_size=4, num_tasks=20, progress=False, save_as="tiny")
    r = res.results
    assert set(r["comparison"]) == {"K=5", "K=10"}
    entry = r["comparison"]["K=5"]
    assert len(entry["maml"]["mean"]) == 11 and entry["pretrained_lr"] == 0.01
    assert r["comparison"]["K=10"]["pretrained_lr"] == 0.02
    for k in (5, 10):  # the recorded verdict is the criterion applied to the recorded per-task statistics
        d = r["comparison"][f"K={k}"]["difference"]
        expected = all(d["win_share"][s] - d["win_ci95"][s] > 0.5 and d["median"][s] > 0.1 for s in (1, 5, 10))
        assert r["maml_beats_pretrained"][f"K={k}"] is expected
    table = ch02_paper.paper_table(r)
    assert "MAML (paper)" in table and "median" in table and "/20" in table  # diverged count out of 20 tasks
    variant = {**r, "setting": {**r["setting"], "seed": 2, "init": "reference"}}
    result_files.save_result("tiny_seed2_reference_init", variant, directory=tmp_path)
    result_files.save_result(
        "tiny_partial", {**r, "setting": {**r["setting"], "iterations": {"maml": 7}}}, directory=tmp_path
    )
    result_files.save_result("tinyother", r, directory=tmp_path)
    runs = ch02_paper.load_paper_runs("tiny", directory=tmp_path)
    assert list(runs) == ["seed 0, pytorch init, train K=10", "seed 2, reference init, train K=10"]
    rows = ch02_paper.variants_table(runs).splitlines()
    assert len(rows) == 4 and rows[2].startswith("seed 0,") and rows[3].startswith("seed 2,") and "/20" in rows[3]
    sharp = r["maml_step_sharpness"]["K=5"]
    assert len(sharp["values"]) == 20 and sharp["quantiles_10_50_90"] == sorted(sharp["quantiles_10_50_90"])
    along = sharp["along_steps"]
    assert along["steps"] == [0, 1, 2, 3] and along["num_tasks"] == 20
    assert along["num_diverged"] == entry["maml"]["diverged"][10] and len(along["not_diverged"]) == 4
    assert result_files.load_result("tiny")["setting"]["iterations"] == 30
    d = entry["difference"]
    assert all(0 <= w <= 1 for w in d["win_share"]) and len(d["median"]) == 11 and len(d["win_ci95"]) == 11
    fake = {
        "K=5": {"difference": {"win_share": [0.5] + [0.9] * 10, "win_ci95": [0.05] * 11, "median": [0.0] + [0.5] * 10}}
    }
    assert ch02_paper.maml_beats_pretrained(fake, 5) is True
    fake["K=5"]["difference"]["win_ci95"][5] = 0.45  # the share could be 0.45: not significant
    assert ch02_paper.maml_beats_pretrained(fake, 5) is False
    fake["K=5"]["difference"]["win_ci95"][5] = 0.05
    fake["K=5"]["difference"]["median"][10] = 0.05  # MAML wins, but by too little
    assert ch02_paper.maml_beats_pretrained(fake, 5) is False


def test_compare_sinusoid_win_share_and_median_ignore_blown_up_tasks():
    """One task on which MAML blows up (inf) makes the mean difference -inf but leaves the per-task share
    and the median, which decide maml_beats_pretrained, unchanged."""

    class Fixed(torch.nn.Module):  # a "learner" whose per-task MSE is given
        def __init__(self, values):
            super().__init__()
            self.values, self.inner_lr = torch.tensor(values), 0.01

        def adaptation_curve(self, batch, max_steps, inner_lr=None):  # before adapting 3.0, then the given MSEs
            columns = [torch.full_like(self.values, 3.0)] + [self.values] * max_steps
            return {"query_loss": torch.stack(columns, dim=1)}

    maml = Fixed([0.2] * 19 + [float("inf")])
    pretrained = Fixed([2.0] * 20)
    out = ch02_paper.compare_sinusoid(maml, pretrained, shots=(5,), max_steps=2, num_tasks=20)
    d = out["K=5"]["difference"]
    assert d["mean"][1] == -math.inf and d["win_share"][1] == 0.95 and math.isclose(d["median"][1], 1.8, rel_tol=1e-6)
    assert (
        out["K=5"]["maml"]["diverged"][1] == 1
        and out["K=5"]["maml"]["diverged_tasks"] == [19]
        and math.isclose(out["K=5"]["maml"]["mean_not_diverged"][1], 0.2, rel_tol=1e-6)
    )
    assert ch02_paper.maml_beats_pretrained(out, 5, steps=(1, 2)) is True


def test_run_dir_is_for_full_mode_only(monkeypatch):
    from mlcourse.config import REPO_ROOT

    monkeypatch.setenv("MLCOURSE_FAST", "1")
    assert omniglot.run_dir("ch03", "omniglot-maml") is None
    monkeypatch.setenv("MLCOURSE_FAST", "0")
    assert omniglot.run_dir("ch03", "omniglot-maml") == REPO_ROOT / "runs" / "ch03" / "omniglot-maml"
    for bad in (("ch03", "a/b"), ("", "x"), ("ch03", "..")):
        with pytest.raises(ValueError, match="plain folder names"):
            omniglot.run_dir(*bad)


def test_adaptation_curve_counts_diverged_tasks_and_medians():
    """A step size far beyond 2 / curvature blows every task up (query MSE > 10x its value before adapting:
    counted as diverged); a tiny one diverges none. Medians are per-step medians of the per-task MSE."""
    torch.manual_seed(0)
    learner = make_learner("maml", SinusoidMLP(hidden=8), inner_lr=0.01)
    tasks = sinusoid.sinusoid_tasks(30, 5, 50)
    calm = sinusoid.sinusoid_adaptation(learner, 5, 3, tasks=tasks, inner_lr=1e-4, keep_per_task=True)
    assert calm["diverged"] == [0, 0, 0, 0]
    assert calm["median"][2] == float(torch.tensor(calm["per_task"][2], dtype=torch.float64).median())
    wild = sinusoid.sinusoid_adaptation(learner, 5, 3, tasks=tasks, inner_lr=50.0)
    assert wild["diverged"][0] == 0 and wild["diverged"][3] == 30


@pytest.mark.slow  # an exact Hessian of the sinusoid network
def test_step_sharpness_matches_the_exact_hessian():
    """Power iteration on Hessian-vector products = the largest-magnitude eigenvalue of the exact support-loss
    Hessian (float64), times the step size, for every task."""
    from torch.func import functional_call, hessian

    torch.manual_seed(1)
    model = SinusoidMLP(hidden=6)
    tasks = sinusoid.sinusoid_tasks(4, 5, 10)
    got = ch02_paper.step_sharpness(model, tasks, 0.5, iterations=400)
    net = SinusoidMLP(hidden=6).double()
    net.load_state_dict(model.state_dict())
    shapes = {n: p.shape for n, p in net.named_parameters()}
    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])

    def unflat(v):
        out, i = {}, 0
        for n, shape in shapes.items():
            out[n] = v[i : i + shape.numel()].view(shape)
            i += shape.numel()
        return out

    for t in range(4):
        x, y = tasks.support_x[t].double(), tasks.support_y[t].double()
        h = hessian(lambda v: ((functional_call(net, unflat(v), (x,)) - y) ** 2).mean())(flat)
        eig = torch.linalg.eigvalsh(h)
        top = eig[eig.abs().argmax()]
        assert math.isclose(float(got[t]), 0.5 * float(top), rel_tol=1e-6), (t, float(got[t]), 0.5 * float(top))
    with pytest.raises(ValueError, match="inner_lr=0"):
        ch02_paper.step_sharpness(model, tasks, 0)
    # after one fine-tuning step: the Hessian at phi = theta - alpha * grad, task by task
    after = ch02_paper.step_sharpness(model, tasks, 0.5, after_steps=1, iterations=400)
    for t in range(4):
        x, y = tasks.support_x[t].double(), tasks.support_y[t].double()
        loss = lambda v: ((functional_call(net, unflat(v), (x,)) - y) ** 2).mean()  # noqa: E731
        phi = flat - 0.5 * torch.func.grad(loss)(flat)
        eig = torch.linalg.eigvalsh(hessian(loss)(phi))
        assert math.isclose(float(after[t]), 0.5 * float(eig[eig.abs().argmax()]), rel_tol=1e-6)
    with pytest.raises(ValueError, match="after_steps=-1"):
        ch02_paper.step_sharpness(model, tasks, 0.5, after_steps=-1)
    # along the path: step 0 may reuse values already computed; the result is the same
    mask = torch.tensor([True, False, False, True])
    fresh = ch02_paper.sharpness_along_steps(model, tasks, 0.5, mask, steps=1, iterations=400)
    reused = ch02_paper.sharpness_along_steps(
        model,
        tasks,
        0.5,
        mask,
        steps=1,
        iterations=400,
        at_start=ch02_paper.step_sharpness(model, tasks, 0.5, iterations=400),
    )
    assert reused == fresh and math.isclose(fresh["not_diverged"][1], float(after[1:3].median()), rel_tol=1e-9)


def test_mse_cells_name_blown_up_means():
    assert sinusoid.mse_cell(0.5678, 0.0123) == "0.57 ± 0.01" and sinusoid.mse_cell(0.5) == "0.50"
    for bad in (float("inf"), float("nan"), 5e3):
        assert sinusoid.mse_cell(bad, 1.0) == "diverged"


def test_task_embedding_is_the_parameter_change_of_plain_sgd():
    """sinusoid_task_embedding (vmap over tasks) = phi_t - theta of plain SGD by hand (autograd, one task at a time)."""
    torch.manual_seed(0)
    model = SinusoidMLP(hidden=8)
    tasks = sinusoid.sinusoid_tasks(3, 5, 1)
    emb = ch02_paper.sinusoid_task_embedding(model, tasks, inner_lr=0.05, steps=2)
    assert emb.shape == (3, sum(p.numel() for p in model.parameters()))
    for t in range(3):
        path = _sgd_path(model, tasks.support_x[t], tasks.support_y[t], 0.05, 2)
        expected = torch.cat([(path[2][k] - path[0][k]).reshape(-1) for k in path[0]])
        assert torch.allclose(emb[t], expected, atol=1e-6)


def _pattern_sampler(n_way: int = 3, seed: int = 0):
    """A tiny 12 x 12 image dataset (random class templates + noise) and a seeded sampler over it."""
    from mlcourse.data import EpisodeSampler
    from mlcourse.data.images import ImageClassDataset

    g = torch.Generator().manual_seed(seed)
    templates = torch.rand(6, 1, 1, 12, 12, generator=g)
    images = ((templates + 0.2 * torch.rand(6, 8, 1, 12, 12, generator=g)).clamp(0, 1) * 255).to(torch.uint8)
    data = ImageClassDataset(images, [f"c{i}" for i in range(6)], name="patterns")
    return EpisodeSampler(data, n_way, 2, 2, seed=seed)


SCRATCH_TINY = dict(steps=3, lr=0.1, hidden=8, image_size=12, batch_size=2)


def test_scratch_baseline_is_maml_adaptation_from_the_seeded_init():
    """Chapter 01's from-scratch learner (one compiled-or-eager SGD step, task after task) gives exactly what
    the MAML learner's evaluate gives from the same seeded random init on the same tasks."""
    from mlcourse.config import seed_everything
    from mlcourse.models import Conv4

    result = ch01_scratch.scratch_baseline(_pattern_sampler(), 4, **SCRATCH_TINY)
    seed_everything(0)
    learner = make_learner("maml", Conv4(1, 3, hidden=8, image_size=12), inner_lr=0.1, inner_steps=3)
    sampler = _pattern_sampler()
    expected = [a for _ in range(2) for a in learner.evaluate(sampler.sample(2))["query_accuracy"].tolist()]
    assert result["per_task"] == pytest.approx(expected, abs=1e-6)
    assert result["mean"] == pytest.approx(sum(expected) / 4) and result["compile_seconds"] == 0.0


def test_scratch_baseline_resumes_after_its_finished_batches(tmp_path):
    """An interrupted run keeps the batches it finished (partial.json) and resumes after them on the same
    tasks; a partial file written with other settings is ignored."""
    import json

    partial = tmp_path / "partial.json"
    full = ch01_scratch.scratch_baseline(_pattern_sampler(), 4, partial_path=partial, **SCRATCH_TINY)
    saved = json.loads(partial.read_text())
    assert saved["per_task"] == full["per_task"] and saved["settings"]["num_tasks"] == 4
    # as if stopped after the first batch, whose (marked) accuracies must be kept, not recomputed
    saved["per_task"] = [0.125, 0.375]
    partial.write_text(json.dumps(saved))
    resumed = ch01_scratch.scratch_baseline(_pattern_sampler(), 4, partial_path=partial, **SCRATCH_TINY)
    assert resumed["per_task"] == [0.125, 0.375] + full["per_task"][2:]
    assert resumed["wall_time_s"] >= saved["wall_time_s"]
    other = ch01_scratch.scratch_baseline(_pattern_sampler(), 4, partial_path=partial, **{**SCRATCH_TINY, "steps": 2})
    assert other["per_task"][:2] != [0.125, 0.375]


def test_scratch_baseline_without_a_compiler_says_so_and_runs_eagerly(monkeypatch, capsys):
    from mlcourse.algorithms import execution

    monkeypatch.setattr(execution, "compiler_available", lambda device=None: (False, "no C++ compiler (test)"))
    eager = ch01_scratch.scratch_baseline(_pattern_sampler(), 2, **SCRATCH_TINY)
    fallback = ch01_scratch.scratch_baseline(_pattern_sampler(), 2, compile=True, **SCRATCH_TINY)
    assert fallback["per_task"] == eager["per_task"] and fallback["compile_seconds"] == 0.0
    err = capsys.readouterr().err
    assert "torch.compile is not available here (no C++ compiler (test)); running eagerly" in err
    assert "Traceback" not in err
