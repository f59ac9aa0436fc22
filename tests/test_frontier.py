"""The accuracy-against-time frontier (mlcourse.frontier): marks, the paused clock, fixed validation tasks, FLOPs
per step, the shipped configurations and the merged file."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from mlcourse import frontier
from mlcourse.checkpoint import RESULTS_FORMAT
from mlcourse.cliparse import CLIError
from mlcourse.data.images import ImageClassDataset
from mlcourse.train import TrainConfig


def _images(classes: int, seed: int) -> ImageClassDataset:
    g = torch.Generator().manual_seed(seed)
    return ImageClassDataset(
        images=torch.randint(0, 256, (classes, 4, 1, 16, 16), generator=g, dtype=torch.uint8),
        class_names=[f"c{i}" for i in range(classes)],
        name="synthetic",
    )


@pytest.fixture
def datasets() -> dict[str, ImageClassDataset]:
    return {"train": _images(8, 0), "val": _images(6, 1), "test": _images(6, 2)}


def _config(algo: str = "maml") -> TrainConfig:
    return TrainConfig.defaults(
        "omniglot",
        algo=algo,
        fast=False,
        n_way=3,
        k_shot=1,
        n_query=2,
        meta_batch_size=2,
        hidden=4,
        image_size=16,
        inner_steps=1,
        test_inner_steps=1,
        iterations=10**7,
        device="cpu",
        compile=False,
    )


class TickClock:
    """A clock that advances ``tick`` seconds at each reading: every training step then takes exactly ``tick``
    seconds whatever the machine does, and evaluation (which never reads it) takes none."""

    def __init__(self, tick: float) -> None:
        self.readings = itertools.count()
        self.tick = tick

    def __call__(self) -> float:
        return next(self.readings) * self.tick


def test_marks_are_fractions_of_the_budget_and_a_bad_budget_is_named() -> None:
    assert frontier.marks_for(600) == [15.0, 30.0, 60.0, 120.0, 240.0, 420.0, 600.0]
    with pytest.raises(ValueError, match=r"budget_s=0 is out of range; allowed > 0"):
        frontier.marks_for(0)


@pytest.mark.parametrize("algo", ["maml", "protonet"])
def test_training_time_counts_steps_only_and_each_mark_is_evaluated_once(algo, datasets) -> None:
    lines: list[str] = []
    record = frontier.train_for(
        _config(algo),
        5.0,
        marks=[1.0, 2.5, 5.0],
        datasets=datasets,
        val_tasks=4,
        clock=TickClock(1.0),
        say=lines.append,
    )
    curve = record["curve"]
    # a step takes one tick; a mark is evaluated after the first step that reaches it
    assert [p["seconds"] for p in curve] == [1.0, 3.0, 5.0]
    assert [p["steps"] for p in curve] == [1, 3, 5]
    assert record["step_flops"] > 0
    assert [p["flops"] for p in curve] == [s * record["step_flops"] for s in (1, 3, 5)]
    assert [list(p["accuracy"]) for p in curve] == [["support"], ["support"], ["support", "transductive"]]
    for point in curve:
        assert all(0.0 <= a["mean"] <= 1.0 for a in point["accuracy"].values())
    assert record["first_step_s"] == 1.0 and len(lines) == 3
    assert record["config"]["lr_schedule"] == "constant"


def test_two_marks_reached_by_one_step_are_both_recorded(datasets) -> None:
    record = frontier.train_for(
        _config(), 4.0, marks=[0.5, 1.0, 4.0], datasets=datasets, val_tasks=2, clock=TickClock(2.0)
    )
    assert [p["steps"] for p in record["curve"]] == [1, 1, 2]


def test_every_evaluation_uses_the_same_validation_tasks(datasets) -> None:
    from mlcourse.train import build_experiment

    exp = build_experiment(_config(), "cpu", datasets=datasets)
    first = frontier.validation_accuracy(exp, 6, ["support"])
    exp.samplers["val"].sample(3)  # the experiment's own validation sampler moves on; the frontier's tasks do not
    assert frontier.validation_accuracy(exp, 6, ["support"]) == first


def test_step_flops_count_the_inner_loop(datasets) -> None:
    from mlcourse.train import build_experiment

    def flops(steps: int) -> int:
        exp = build_experiment(_config().replace(inner_steps=steps), "cpu", datasets=datasets)
        return frontier.step_flops(exp.learner, exp.samplers["train"].sample(2))

    assert flops(1) < flops(2) < flops(3)


def test_the_configuration_is_the_shipped_runs_with_a_constant_learning_rate(tmp_path) -> None:
    run = tmp_path / "maml-5w1s"
    run.mkdir()
    saved = _config().replace(lr_schedule="cosine", iterations=8000, compile=True).to_dict()
    (run / "results.json").write_text(json.dumps({"format": RESULTS_FORMAT, "config": saved, "test": None}))
    config = frontier.frontier_config("maml-5w1s", tmp_path)
    assert (config.lr_schedule, config.compile, config.device) == ("constant", None, "cpu")
    assert config.inner_lr == saved["inner_lr"] and config.iterations > 8000
    with pytest.raises(ValueError, match=r"run='nope' is not a shipped run; allowed: maml-5w1s"):
        frontier.frontier_config("nope", tmp_path)


def test_the_merged_file_names_what_is_missing(tmp_path) -> None:
    record = {"run": "maml-5w1s", "curve": [], "device_name": "CPU: X (2 cores, 1 torch threads)", "threads": 1}
    record["allocator"] = "glibc malloc keeping freed memory"
    (tmp_path / "maml-5w1s.json").write_text(json.dumps({**record, "torch": "2.14.1"}))
    out = frontier.merge(["maml-5w1s", "protonet-5w1s"], 60.0, 2, tmp_path, tmp_path / "f.json", 1.0)
    merged = json.loads(out.read_text())
    assert merged["missing"] == ["protonet-5w1s"] and list(merged["learners"]) == ["maml-5w1s"]
    assert merged["threads_per_learner"] == 1 and merged["learners_side_by_side"] == 2
    assert merged["budget_s"] == 60.0 and "date" in merged
    # the machine as the learners ran on it (one thread each), not as the merging process sees it
    assert (merged["device_name"], merged["threads"], merged["allocator"]) == (
        record["device_name"],
        1,
        record["allocator"],
    )


def test_too_many_jobs_are_refused_with_the_allowed_range(tmp_path) -> None:
    import os

    cores = len(os.sched_getaffinity(0))
    with pytest.raises(CLIError, match=rf"--jobs={cores + 1} is not allowed; allowed: 1 to {cores}"):
        frontier.run_sweep(["maml-5w1s"], 1.0, cores + 1, tmp_path)


def _payload() -> dict:
    def learner(algo: str, means: list[float]) -> dict:
        curve = [
            {
                "seconds": 10.0 * (i + 1),
                "steps": 5 * (i + 1),
                "flops": 5e9 * (i + 1),
                "accuracy": {"support": {"mean": m, "ci95": 0.02}, "transductive": {"mean": m + 0.01, "ci95": 0.02}},
            }
            for i, m in enumerate(means)
        ]
        return {
            "config": _config(algo).to_dict(),
            "marks": [10.0, 20.0],
            "curve": curve,
            "step_flops": 1e9,
            "first_step_s": 1.5,
        }

    learners = {"maml-5w1s": learner("maml", [0.50, 0.90]), "protonet-5w1s": learner("protonet", [0.80, 0.91])}
    return {"learners": learners}


def test_the_winner_at_each_mark_and_whether_the_intervals_separate_it() -> None:
    table = frontier.winners(_payload())
    assert [(w["mark_s"], w["run"], w["runner_up"], w["clear"]) for w in table] == [
        (10.0, "protonet-5w1s", "maml-5w1s", True),
        (20.0, "protonet-5w1s", "maml-5w1s", False),
    ]
    with pytest.raises(ValueError, match="a winner needs at least 2"):
        frontier.winners({"learners": {"maml-5w1s": _payload()["learners"]["maml-5w1s"]}})
    with pytest.raises(ValueError, match="1 learner"):
        frontier.winners(_payload(), runs=["maml-5w1s"])


def test_chapter_08_reads_the_frontier() -> None:
    from mlcourse.course.ch08 import frontier_report as ch08_frontier_report

    payload = _payload()
    table = ch08_frontier_report.frontier_table(payload)
    assert "| 10 s | 20 s |" in table and "| ProtoNet | 0.50 | 1.0 | 1.5 | 80.0 | 91.0 | 92.0 |" in table
    lines = ch08_frontier_report.frontier_lines(payload)
    assert lines[0].startswith("10 s: ProtoNet leads (80.0 ± 2.0 %), clearly ahead of MAML")
    assert "within the 95 % intervals of MAML" in lines[1]
