"""Chapter 05's compute functions (``mlcourse.course.ch05``): the CIFAR-100 / Omniglot fallback, the grid on a tiny
fake CIFAR-100 in the real pickle format, the results table, results-file loading, stratification, the
article-code demonstration and the α/β/K widget. Kept small (a few seconds on 2 busy cores)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch

from mlcourse.checkpoint import save_results
from mlcourse.cli import main
from mlcourse.course.ch05 import article_code as ch05_article_code
from mlcourse.course.ch05 import data as ch05_data
from mlcourse.course.ch05 import grid as ch05_grid
from mlcourse.course.ch05 import results as ch05_results
from mlcourse.course.ch05 import widgets as ch05_widgets
from mlcourse.data import ImageClassDataset, import_cifar100
from mlcourse.train import load_trained

ROOT = Path(__file__).resolve().parents[1]

TINY = dict(
    iterations=2,
    meta_batch_size=2,
    n_query=1,
    test_tasks=4,
    eval_batch_size=4,
    hidden=4,
    inner_steps=1,
    test_inner_steps=1,
    val_tasks=0,
)


@pytest.fixture
def fake_cifar(data_root, cifar100_tarball):
    """The tiny fake CIFAR-100 (100 classes x 6 images, the real pickle format) imported into the data dir."""
    import_cifar100(cifar100_tarball)
    return data_root


# ------------------------------------------------------------------------------------------ fallback
def test_without_cifar_falls_back_to_omniglot_and_says_why(data_root):
    ok, why = ch05_data.cifar100_available()
    assert not ok and ch05_data.DOWNLOAD_COMMAND in why
    choice = ch05_data.choose_dataset("article")
    assert choice.data == "omniglot" and choice.split_scheme == "vinyals" and choice.fallback
    assert "not on this machine" in choice.reason and ch05_data.DOWNLOAD_COMMAND in choice.reason
    assert "Omniglot" in choice.describe()


def test_with_cifar_present_uses_it(fake_cifar):
    for scheme in ("article", "cifar-fs", "fc100"):
        choice = ch05_data.choose_dataset(scheme)
        assert (choice.data, choice.split_scheme, choice.fallback) == ("cifar100", scheme, False)
        assert "found" in choice.reason
    splits = ch05_data.load_splits(ch05_data.choose_dataset("article"), validation=True)
    assert {k: v.num_classes for k, v in splits.items()} == {"train": 64, "val": 16, "test": 20}
    assert splits["train"].images.shape[1:] == (6, 3, 32, 32)
    trainval = ch05_data.load_splits(ch05_data.choose_dataset("article"), train_split="trainval", validation=False)
    assert set(trainval) == {"train", "test"} and trainval["train"].num_classes == 80


def test_corrupt_cifar_falls_back(data_root):
    folder = data_root / "cifar100" / "cifar-100-python"
    folder.mkdir(parents=True)
    for name in ("train", "test", "meta"):
        (folder / name).write_bytes(b"not a pickle")
    ok, why = ch05_data.cifar100_available()
    assert not ok and "cannot be read" in why
    assert ch05_data.choose_dataset().data == "omniglot"


def test_choose_dataset_rejects_unknown_values(data_root):
    with pytest.raises(ValueError, match="split_scheme"):
        ch05_data.choose_dataset("imagenet")
    with pytest.raises(ValueError, match="prefer"):
        ch05_data.choose_dataset(prefer="mnist")
    assert ch05_data.choose_dataset(prefer="omniglot").data == "omniglot"


# ------------------------------------------------------------------------------------- stratification
def test_distinct_superclasses_and_exact_probability():
    superclass = torch.tensor([0, 0, 1, 1, 1, 2])
    # brute force over all 3-class subsets
    subsets = list(itertools.combinations(range(6), 3))
    distinct = sum(len({int(superclass[c]) for c in s}) == 3 for s in subsets)
    assert math.isclose(ch05_data.uniform_distinct_probability(superclass, 3), distinct / len(subsets))
    classes = torch.tensor([[0, 2, 5], [0, 1, 5], [3, 1, 5]])
    assert ch05_data.distinct_superclasses(classes, superclass).tolist() == [True, False, True]


def test_stratification_report():
    superclass = torch.arange(10).repeat_interleave(4)
    data = ImageClassDataset(
        images=torch.zeros(40, 2, 1, 2, 2, dtype=torch.uint8),
        class_names=[str(i) for i in range(40)],
        superclass=superclass,
        name="toy",
    )
    report = ch05_data.stratification_report(data, n_way=5, num_tasks=400)
    assert report["stratified"] == 1.0
    assert abs(report["uniform"] - report["exact_uniform"]) < 0.1 and report["exact_uniform"] < 0.9


# ------------------------------------------------------------------------------------------- the grid
def test_grid_on_fake_cifar_writes_results_and_loads_them(fake_cifar, tmp_path):
    choice = ch05_data.choose_dataset("cifar-fs")
    datasets = ch05_data.load_splits(choice, validation=False)
    grid = ch05_grid.run_grid(
        choice,
        datasets,
        variants=("ProtoNet", "MAML + attention"),
        fast=True,
        progress=False,
        device="cpu",
        out_dir=tmp_path / "runs",
        **TINY,
    )
    assert [r.method for r in grid.rows] == ["ProtoNet", "MAML + attention"]
    for row in grid.rows:
        assert row.data == "CIFAR-FS" and row.num_tasks == 4 and row.iterations == 2 and 0 <= row.mean <= 1
        assert row.device.startswith("CPU") and row.source == "this notebook (fast mode)"
    # the attention variant really has the gate; training tasks stratified, test tasks uniform
    exp = grid.experiments["MAML + attention"]
    assert any("spatial" in n for n, _ in exp.model.named_parameters())
    assert exp.samplers["train"].stratified and not exp.samplers["test"].stratified
    table = grid.table()
    assert "MAML + attention" in table and "CIFAR-FS" in table and "±" in table

    # the results files carry the variant; fast runs are skipped unless asked for
    rows, problems = ch05_results.load_project_results([tmp_path / "runs"], include_fast=True)
    assert problems == [] and sorted(r.method for r in rows) == ["MAML + attention", "ProtoNet"]
    assert all(r.device.startswith("CPU") and r.wall_time_s is not None for r in rows)
    assert ch05_results.load_project_results([tmp_path / "runs"])[0] == []

    # the attention run's saved configuration says so, and it reloads and evaluates like any run (issue 24, item 7)
    reloaded, checkpoint = load_trained(tmp_path / "runs" / "maml-attention", device="cpu")
    assert checkpoint["config"]["attention"] is True
    assert any("spatial" in n for n, _ in reloaded.model.named_parameters())
    accuracy = reloaded.learner.evaluate(reloaded.samplers["test"].sample(2))["query_accuracy"]
    assert accuracy.shape == (2,) and bool(((0 <= accuracy) & (accuracy <= 1)).all())


def test_committed_attention_weights_reload_with_the_gate():
    path = ROOT / "results" / "chapters" / "ch05" / "omniglot-maml-attention-5w1s.pt"
    exp, checkpoint = load_trained(path, device="cpu")  # refused before: its configuration said attention=False
    assert checkpoint["config"]["attention"] is True
    assert any("spatial" in n for n, _ in exp.model.named_parameters())
    plain, _ = load_trained(path.with_name("omniglot-maml-5w1s.pt"), device="cpu")
    assert not any("spatial" in n for n, _ in plain.model.named_parameters())


def test_grid_config_sizes_and_variants(data_root):
    choice = ch05_data.choose_dataset(prefer="omniglot")
    fast = ch05_grid.grid_config(choice, "MAML", fast=True)
    assert (fast.iterations, fast.test_tasks, fast.hidden, fast.inner_lr) == (
        ch05_grid.FAST_SIZES["iterations"],
        ch05_grid.FAST_SIZES["test_tasks"],
        16,
        0.4,
    )
    full = ch05_grid.grid_config(choice, "fine-tuning", fast=False)
    assert full.test_tasks >= 600 and full.algo == "pretrain" and full.test_inner_steps == 50 and full.stratified
    assert ch05_grid.grid_config(DataChoiceCifar, "MAML + Meta-SGD", fast=False).inner_steps == 5
    with pytest.raises(ValueError, match="unknown variant"):
        ch05_grid.run_grid(choice, {}, variants=("MAML++",))


DataChoiceCifar = ch05_data.DataChoice("cifar100", "fc100", "test")


# -------------------------------------------------------------------------------- tables and files
def _results(path, **changes):
    doc = {
        "config": {
            "algo": "maml",
            "data": "cifar100",
            "split_scheme": "cifar-fs",
            "n_way": 5,
            "k_shot": 1,
            "iterations": 60000,
            "stratified": True,
        },
        "algo": "maml",
        "data": "cifar100",
        "iterations": 60000,
        "wall_time_s": 5400.0,
        "device": "NVIDIA H100 80GB HBM3",
        "test": {"metric": "accuracy", "mean": 0.571, "ci95": 0.019, "num_tasks": 600},
    }
    doc.update(changes)
    path.mkdir(parents=True, exist_ok=True)
    save_results(path / "results.json", doc)


def test_load_project_results_reads_cli_files_and_reports_problems(tmp_path):
    _results(tmp_path / "results" / "maml")
    _results(
        tmp_path / "runs" / "metasgd",
        algo="metasgd",
        config={"algo": "metasgd", "data": "cifar100", "split_scheme": "fc100", "n_way": 5, "k_shot": 5},
    )
    _results(tmp_path / "runs" / "omni", data="omniglot", config={"algo": "maml", "data": "omniglot"})
    _results(tmp_path / "runs" / "quick", iterations=200)
    _results(tmp_path / "runs" / "att", attention=True)
    (tmp_path / "runs" / "broken").mkdir()
    (tmp_path / "runs" / "broken" / "results.json").write_text("{ truncated")
    rows, problems = ch05_results.load_project_results([tmp_path / "results", tmp_path / "runs", tmp_path / "missing"])
    got = {(r.method, r.data, r.k_shot) for r in rows}
    assert got == {("MAML", "CIFAR-FS", 1), ("MAML + Meta-SGD", "FC100", 5), ("MAML + attention", "CIFAR-FS", 1)}
    maml = next(r for r in rows if r.method == "MAML")
    assert maml.device == "NVIDIA H100 80GB HBM3" and maml.wall_time_s == 5400.0 and maml.num_tasks == 600
    assert maml.source.endswith("results.json")
    assert len(problems) == 1 and "corrupt" in problems[0]
    text = ch05_results.project_table(rows)
    assert "57.1 ± 1.9%" in text and "NVIDIA H100" in text and "90.0 min" in text


def test_results_table_with_published_rows():
    rows = ch05_results.published_rows("CIFAR-FS")
    assert [(r.method, r.k_shot, round(100 * r.mean, 1), round(100 * r.ci95, 1)) for r in rows] == [
        ("MAML", 1, 58.9, 1.9),
        ("MAML", 5, 71.5, 1.0),
        ("ProtoNet", 1, 55.5, 0.7),
        ("ProtoNet", 5, 72.0, 0.6),
    ]
    assert all(r.source.startswith("published, source: ") for r in rows)
    fc100 = ch05_results.published_rows("FC100")
    assert [(round(100 * r.mean, 1), round(100 * r.ci95, 1)) for r in fc100] == [(35.3, 0.6), (48.6, 0.6)]
    md = ch05_results.project_table(rows, markdown=True)
    assert md.splitlines()[0].startswith("| method |") and "58.9 ± 1.9%" in md
    assert "source" not in ch05_results.project_table(rows, show_source=False).splitlines()[0]


def test_row_from_results_ignores_regression():
    assert ch05_results.row_from_results({"test": {"metric": "mse", "mean": 0.3}, "config": {}}) is None
    assert ch05_results.row_from_results({"test": None}) is None


# --------------------------------------------------------------------------------- article code
def test_article_code_fails_where_the_chapter_says():
    attempts = ch05_article_code.run_article_code(meta_batch=2, n_way=2)
    kinds = [a.error.split(":")[0] for a in attempts]
    assert kinds == ["NameError", "TypeError", "AttributeError", "TypeError", "NameError"]
    assert "random" in attempts[0].error and "evaluate" in attempts[-1].error
    assert attempts[1].theta_changed_by_maml_update > 0  # maml_update overwrites theta in place


# ----------------------------------------------------------------------------- curves and widget
def _tiny_datasets():
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(12, 4, 1, 8, 8, generator=g) * 255).to(torch.uint8)
    ds = ImageClassDataset(
        images=images,
        class_names=[str(i) for i in range(12)],
        superclass=torch.arange(6).repeat_interleave(2),
        name="tiny",
    )
    return {"train": ds, "test": ds}


def test_hyperparameter_widget_redraws_on_slider_change():
    pytest.importorskip("ipywidgets")
    widget = ch05_widgets.hyperparameter_widget(
        _tiny_datasets(),
        iterations=2,
        test_tasks=3,
        display=False,
        n_way=3,
        hidden=4,
        n_query=2,
        meta_batch_size=2,
        test_steps=2,
    )
    descriptions = [c.description for c in widget.controls.children]
    assert descriptions[:3] == ["α (inner lr)", "β (outer lr)", "shots K"]
    assert widget.output.draws == 1 and widget.figure is not None
    first = widget.state["run"]
    widget.controls.children[0].value = 0.05
    assert widget.output.draws == 2 and widget.state["run"].settings["inner_lr"] == pytest.approx(0.05)
    assert widget.state["reference"] is first
    widget.controls.children[2].value = 2
    assert widget.output.draws == 3 and widget.state["run"].settings["k_shot"] == 2


def test_short_run_rejects_non_maml_variants():
    with pytest.raises(ValueError, match="MAML-family"):
        ch05_widgets.short_run(_tiny_datasets(), variant="ProtoNet")


def test_cli_grid_fast_on_fake_cifar(fake_cifar, tmp_path, capsys):
    out = tmp_path / "grid"
    status = main(
        [
            "cifar-grid",
            "--data",
            "cifar100",
            "--split",
            "fc100",
            "--fast",
            "--variants",
            "ProtoNet",
            "--iterations",
            "1",
            "--test-tasks",
            "2",
            "--hidden",
            "4",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert status == 0 and "ProtoNet" in capsys.readouterr().out
    from mlcourse.checkpoint import load_results

    saved = load_results(out / "protonet" / "results.json")
    assert saved["variant"] == "ProtoNet" and saved["test_sampling"] == "uniform" and saved["test"]["num_tasks"] == 2
    assert saved["config"]["split_scheme"] == "fc100"
