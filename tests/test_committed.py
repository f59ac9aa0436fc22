"""Committed chapter weights (mlcourse.course.committed): full mode loads them instead of retraining (chapters 02,
03, 05 and 06), MLCOURSE_RETRAIN=1 retrains, MLCOURSE_SHIP=1 writes them, other settings never load them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mlcourse.checkpoint import CheckpointError
from mlcourse.course import committed, sinusoid
from mlcourse.course.ch03 import comparison as ch03_comparison
from mlcourse.models import SinusoidMLP


@pytest.fixture
def full_mode(monkeypatch):
    for name in ("MLCOURSE_FAST", "MLCOURSE_RETRAIN", "MLCOURSE_SHIP"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _trainer(module: nn.Module, calls: list[int]):
    def train_fn():
        calls.append(1)
        with torch.no_grad():
            for p in module.parameters():
                p.add_(1.0)
        return [{"step": 1, "loss": 0.5}]

    return train_fn


def test_ship_then_load_then_retrain(full_mode, tmp_path):
    settings = {"iterations": 3, "shape": (1, 2)}
    trained, calls = nn.Linear(2, 1), []
    # without MLCOURSE_SHIP nothing is written
    info = committed.load_or_train("chX/lin", trained, settings, _trainer(trained, calls), directory=tmp_path)
    assert info.source == "trained" and calls == [1] and not (tmp_path / "chX" / "lin.pt").exists()
    full_mode.setenv("MLCOURSE_SHIP", "1")
    committed.load_or_train("chX/lin", trained, settings, _trainer(trained, calls), directory=tmp_path)
    assert (tmp_path / "chX" / "lin.pt").exists() and calls == [1, 1]
    full_mode.delenv("MLCOURSE_SHIP")

    fresh = nn.Linear(2, 1)
    info = committed.load_or_train(
        "chX/lin", fresh, {"shape": [1, 2], "iterations": 3}, _trainer(fresh, calls), directory=tmp_path
    )
    assert info.source == "committed" and calls == [1, 1]  # loaded, not trained
    assert info.history == [{"step": 1, "loss": 0.5}] and info.device and info.date
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), trained.state_dict().values()))

    full_mode.setenv("MLCOURSE_RETRAIN", "1")
    info = committed.load_or_train("chX/lin", nn.Linear(2, 1), settings, _trainer(fresh, calls), directory=tmp_path)
    assert info.source == "trained" and calls == [1, 1, 1]


def test_other_settings_or_fast_mode_train(full_mode, tmp_path, capsys):
    module, calls = nn.Linear(2, 1), []
    full_mode.setenv("MLCOURSE_SHIP", "1")
    committed.load_or_train("chX/lin", module, {"iterations": 3}, _trainer(module, calls), directory=tmp_path)
    full_mode.delenv("MLCOURSE_SHIP")
    info = committed.load_or_train("chX/lin", module, {"iterations": 4}, _trainer(module, calls), directory=tmp_path)
    assert info.source == "trained" and "other settings (iterations)" in capsys.readouterr().out
    full_mode.setenv("MLCOURSE_FAST", "1")
    info = committed.load_or_train("chX/lin", module, {"iterations": 3}, _trainer(module, calls), directory=tmp_path)
    assert info.source == "trained" and calls == [1, 1, 1]


def test_bad_names_and_foreign_files(tmp_path):
    for name in ("", "../x", "/abs"):
        with pytest.raises(ValueError, match="not allowed"):
            committed.weights_path(name, tmp_path)
    (tmp_path / "chX").mkdir()
    (tmp_path / "chX" / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        committed.read("chX/junk", tmp_path)


def test_train_sinusoid_round_trip(full_mode, tmp_path, monkeypatch):
    """train_sinusoid(committed=...) ships a run and loads it back with the same predictions and history."""
    monkeypatch.setattr(committed, "CHAPTER_WEIGHTS", tmp_path)
    full_mode.setenv("MLCOURSE_SHIP", "1")
    first = sinusoid.train_sinusoid("maml", 3, meta_batch_size=2, progress=False, committed="chX/sin")
    full_mode.delenv("MLCOURSE_SHIP")
    second = sinusoid.train_sinusoid("maml", 3, meta_batch_size=2, progress=False, committed="chX/sin")
    assert first.provenance.source == "trained" and second.provenance.source == "committed"
    x = torch.linspace(-5, 5, 7).unsqueeze(-1)
    assert torch.equal(first.learner.model(x), second.learner.model(x))
    assert second.history == first.history and second.completed
    other = sinusoid.train_sinusoid("maml", 4, meta_batch_size=2, progress=False, committed="chX/sin")
    assert other.provenance.source == "trained"


def test_shipping_a_finished_run_keeps_its_own_record(full_mode, tmp_path, monkeypatch):
    """MLCOURSE_SHIP=1 over a run already finished in out_dir (chapter 03's) reloads it and ships the date, device
    and wall time of its training, not those of the reload."""
    from mlcourse.checkpoint import load_results, save_results

    monkeypatch.setattr(committed, "CHAPTER_WEIGHTS", tmp_path / "weights")
    run_dir = tmp_path / "run"
    sinusoid.train_sinusoid("maml", 3, meta_batch_size=2, progress=False, out_dir=run_dir)
    made = load_results(run_dir)
    save_results(
        run_dir,
        {
            **{k: v for k, v in made.items() if k not in ("format", "version")},
            "date": "2000-01-01T00:00:00+00:00",
            "wall_time_s": 4321.0,
            "device_name": "an old machine",
        },
    )
    full_mode.setenv("MLCOURSE_SHIP", "1")
    shipped = sinusoid.train_sinusoid(
        "maml", 3, meta_batch_size=2, progress=False, out_dir=run_dir, committed="chX/sin"
    )
    saved = committed.read("chX/sin")
    assert shipped.provenance.wall_time_s == saved["wall_time_s"] == 4321.0
    assert saved["date"].startswith("2000-01-01") and saved["device_name"] == "an old machine"


@pytest.mark.parametrize("name", ["ch02/sinusoid-maml", "ch02/sinusoid-pretrain"])
def test_committed_chapter_02_weights_load(name):
    """The committed files chapter 02 reads in full mode exist and fit its network exactly."""
    saved = committed.read(name)
    assert saved is not None, f"results/chapters/{name}.pt is missing: MLCOURSE_SHIP=1 mlcourse sinusoid-paper"
    model = SinusoidMLP()
    model.load_state_dict({k.removeprefix("model."): v for k, v in saved["learner"].items()})
    assert saved["config"]["iterations"] == 70_000 and saved["config"]["meta_batch_size"] == 25
    assert saved["device_name"] and saved["date"] and saved["wall_time_s"] > 0


def _settings_match(name: str, settings) -> None:
    saved = committed.read(name)
    assert saved is not None, f"results/chapters/{name}.pt is missing (docs/FULL_SCALE.md says how it is made)"
    wanted = committed.plain_settings(dict(settings))
    differ = sorted(k for k in set(saved["config"]) | set(wanted) if saved["config"].get(k) != wanted.get(k))
    assert not differ, f"{name}: the chapter's settings differ from the committed file's in {differ}"
    assert committed.will_load(name, settings)


def test_chapter_06_full_mode_settings_match_the_committed_files(full_mode):
    """Chapter 06's full mode would load every committed file (not silently retrain for half an hour)."""
    from mlcourse.course.ch06 import applications as A
    from mlcourse.course.ch06 import rl

    _settings_match("ch06/fewshot-protonet", committed.config_settings(A.fewshot_config(2000)))
    for algo in ("maml", "pretrain"):
        config = sinusoid.sinusoid_config(algo, 20_000, meta_batch_size=25, outer_lr=1e-3)
        _settings_match(f"ch06/sinusoid-{algo}", committed.config_settings(config, {"init": "pytorch"}))
        _settings_match(f"ch06/personalisation-{algo}", A.personalisation_settings(algo, 5000, outer_lr=3e-3))
        rl_config = rl.chapter_config()
        policy = rl.GaussianMLPPolicy(hidden=32)
        _settings_match(f"ch06/rl-{algo}", rl.policy_settings(policy, 500, rl_config, method=algo, seed=0))
        policy.load_state_dict(committed.read(f"ch06/rl-{algo}")["learner"])


def test_chapter_03_full_mode_settings_match_the_committed_files(full_mode):
    """Chapter 03's sinusoid comparison loads the committed weights of all four algorithms (not 13 min of training)."""
    for algo, (inner_lr, inner_steps) in ch03_comparison.SINUSOID_COMPARISON.items():
        config = sinusoid.sinusoid_config(
            algo,
            ch03_comparison.SINUSOID_COMPARISON_ITERATIONS,
            meta_batch_size=ch03_comparison.SINUSOID_COMPARISON_META_BATCH,
            inner_lr=inner_lr,
            inner_steps=inner_steps,
        )
        _settings_match(f"ch03/sinusoid-{algo}", committed.config_settings(config, {"init": "pytorch"}))


def test_chapter_05_full_mode_settings_match_the_committed_files(full_mode, tmp_path):
    """Chapter 05's Omniglot fallback grid (CIFAR-100 absent) loads every variant's committed weights. The data
    folder is an empty one, so the fallback is what is checked on every machine, CIFAR-100 present or not."""
    from mlcourse.course.ch05 import data as ch05_data
    from mlcourse.course.ch05 import grid as ch05_grid

    choice = ch05_data.choose_dataset("article", root=tmp_path)
    assert choice.fallback and choice.data == "omniglot", choice
    for variant in ch05_grid.VARIANTS.values():
        config = ch05_grid.grid_config(choice, variant, k_shot=1, fast=False, device="cpu", out_dir=None)
        _settings_match(f"ch05/{choice.data}-{variant.slug}-5w1s", committed.config_settings(config))
