"""Checkpoint safety (issue 3 item 4): atomic writes, corrupt files, foreign checkpoints, unwritable output."""

from __future__ import annotations

import errno
import json
import os
import pathlib
from collections import namedtuple

import pytest
import torch

import mlcourse.train.loop as train_module
from mlcourse import checkpoint as ck
from mlcourse.checkpoint import (
    CheckpointError,
    OutputDirError,
    ResultsError,
    capture_rng_state,
    check_compatible,
    load_checkpoint,
    load_results,
    parameter_shapes,
    prepare_output_dir,
    restore_rng_state,
    save_checkpoint,
    save_results,
)
from mlcourse.train import TrainConfig, load_trained, train


def tiny(out_dir, **changes) -> TrainConfig:
    values = dict(
        iterations=10,
        k_shot=4,
        n_query=4,
        meta_batch_size=3,
        hidden=8,
        vectorise=False,
        eval_every=5,
        val_tasks=2,
        test_tasks=4,
        checkpoint_every=3,
        log_every=2,
        device="cpu",
        out_dir=str(out_dir),
    )
    values.update(changes)
    return TrainConfig.defaults("sinusoid", fast=False, **values)


def state(step: int, algo: str = "maml", weight: torch.Tensor | None = None) -> dict:
    weight = torch.full((3, 2), float(step)) if weight is None else weight
    learner = {"model.w": weight}
    return {"algo": algo, "config": {}, "step": step, "learner": learner, "shapes": parameter_shapes(learner)}


def test_save_and_load_round_trip(tmp_path):
    path = save_checkpoint(tmp_path / "checkpoint.pt", {**state(4), "rng": capture_rng_state()})
    loaded = load_checkpoint(tmp_path)  # the run directory resolves to checkpoint.pt
    assert loaded["step"] == 4 and torch.equal(loaded["learner"]["model.w"], torch.full((3, 2), 4.0))
    assert path == tmp_path / "checkpoint.pt"


def test_rng_state_round_trip():
    import random

    import numpy as np

    saved = capture_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(2))
    restore_rng_state(saved)
    second = (random.random(), np.random.rand(), torch.rand(2))
    assert first[0] == second[0] and first[1] == second[1] and torch.equal(first[2], second[2])


@pytest.mark.parametrize("partial", [True, False])
def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch, partial):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, state(1))
    real_save = torch.save

    def broken_save(obj, f, *args, **kwargs):
        if partial:
            f.write(b"PK\x03\x04 half a zip")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(path, state(2))
    assert "checkpoint.pt" in str(info.value) and "disk is full" in str(info.value)
    assert "previous checkpoint is intact" in str(info.value)
    monkeypatch.setattr(torch, "save", real_save)
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no temporary left behind


def test_failure_while_training_leaves_last_checkpoint(tmp_path, monkeypatch):
    real_save = torch.save
    calls = []

    def save_then_fail(obj, f, *args, **kwargs):
        calls.append(obj["step"])
        if len(calls) == 2:
            f.write(b"garbage")
            raise RuntimeError("simulated crash in the middle of torch.save")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_then_fail)
    with pytest.raises(CheckpointError, match="simulated crash"):
        train(tiny(tmp_path), progress=False)
    monkeypatch.setattr(torch, "save", real_save)
    assert calls == [3, 6]
    assert load_checkpoint(tmp_path)["step"] == 3
    assert train(tiny(tmp_path), progress=False).step == 10  # and the run resumes from it


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "foreign", "pickle"])
def test_corrupt_checkpoint_gives_clear_error(tmp_path, damage):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, state(1))
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(200))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "foreign":
        torch.save({"weights": torch.zeros(2)}, path)
    else:  # a pickle with arbitrary objects is refused, not executed
        torch.save({"format": "mlcourse-checkpoint", "obj": pathlib.PurePosixPath("x")}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message and len(message) < 400
    assert "delete" not in message  # never advise deleting a file mlcourse may not have written


def test_training_on_a_corrupt_checkpoint_names_the_file(tmp_path):
    train(tiny(tmp_path), progress=False, max_steps=3)
    (tmp_path / "checkpoint.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="checkpoint.pt.*cannot be read.*new --out directory"):
        train(tiny(tmp_path), progress=False)


def test_checkpoint_from_another_algorithm_or_shape(tmp_path):
    ckpt = state(1, algo="protonet")
    with pytest.raises(CheckpointError, match="algorithm 'protonet', but this run uses 'maml'"):
        check_compatible(ckpt, tmp_path / "c.pt", "maml", ckpt["learner"])
    other = {"model.w": torch.zeros(5, 2)}
    with pytest.raises(CheckpointError, match=r"'model.w' is \[3, 2\] in the checkpoint but \[5, 2\]"):
        check_compatible(state(1), tmp_path / "c.pt", "maml", other)
    with pytest.raises(CheckpointError, match="lacks parameters of this model"):
        check_compatible(state(1), tmp_path / "c.pt", "maml", {**ckpt["learner"], "lrs.w": torch.zeros(1)})


def test_load_trained_detects_a_tampered_shape(tmp_path):
    train(tiny(tmp_path), progress=False, max_steps=2)
    ckpt = load_checkpoint(tmp_path)
    ckpt["config"]["hidden"] = 16  # the rebuilt model no longer matches the stored weights
    save_checkpoint(tmp_path / "checkpoint.pt", ckpt)
    with pytest.raises(CheckpointError, match="another shape"):
        load_trained(tmp_path)


def test_unwritable_output_dir_fails_before_training(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    def never(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(train_module, "build_experiment", never)
    with pytest.raises(OutputDirError, match="cannot create output directory .*file/run"):
        train(tiny(blocker / "run"), progress=False)
    with pytest.raises(OutputDirError, match="not a directory"):
        prepare_output_dir(blocker)


def test_full_disk_fails_before_training(tmp_path, monkeypatch):
    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(train_module, "build_experiment", lambda *a, **k: pytest.fail("training started"))
    monkeypatch.setattr(ck.os, "fsync", no_space)
    with pytest.raises(OutputDirError, match="cannot write to output directory .*the disk is full"):
        train(tiny(tmp_path / "run"), progress=False)
    monkeypatch.undo()
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(ck.shutil, "disk_usage", lambda p: Usage(100, 99, 1))
    with pytest.raises(OutputDirError, match="MiB free but checkpoints need"):
        prepare_output_dir(tmp_path / "run", needed_bytes=10 << 20)


def test_stale_temporaries_are_removed(tmp_path):
    (tmp_path / ".checkpoint.pt.tmp-abc").write_bytes(b"half")
    prepare_output_dir(tmp_path)
    assert not list(tmp_path.iterdir())


def test_results_round_trip_and_errors(tmp_path):
    path = save_results(tmp_path, {"test": {"mean": 0.5, "ci95": 0.01}, "history": [{"step": 1, "loss": float("nan")}]})
    assert path == tmp_path / "results.json"
    loaded = load_results(tmp_path)
    assert loaded["test"] == {"mean": 0.5, "ci95": 0.01} and loaded["format"] == "mlcourse-results"
    path.write_text(path.read_text()[:30])
    with pytest.raises(ResultsError, match="results.json.*corrupt or truncated"):
        load_results(path)
    path.write_text(json.dumps({"something": "else"}))
    with pytest.raises(ResultsError, match="not an mlcourse results file"):
        load_results(path)
    with pytest.raises(ResultsError, match="does not exist"):
        load_results(tmp_path / "missing.json")
