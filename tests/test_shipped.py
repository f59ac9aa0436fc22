"""The full-scale Omniglot runs shipped with the course (results/omniglot/<run>/): each weight file is small, fp32,
without optimiser state, and evaluates to its recorded accuracy on the same fixed test tasks (the first 100 of
the 600 of its committed result); the table the chapters print is read from those files."""

from __future__ import annotations

import pytest
import torch

from mlcourse import shipped
from mlcourse.checkpoint import WEIGHTS_NAME, load_checkpoint
from mlcourse.config import data_dir
from mlcourse.train import TEST_SEED

RUNS = shipped.shipped_runs()
TRAINED = {name: res for name, res in RUNS.items() if res.get("weights")}  # the from-scratch baseline has none
CHECK_TASKS = 100


@pytest.fixture(scope="module")
def omniglot_data():
    """The repo's data directory with Omniglot (``make data-omniglot`` puts it there; else import the reference copy)."""
    from conftest import SHARED_DATA, _missing_reference

    from mlcourse.data.omniglot import import_omniglot

    if not (data_dir() / "omniglot" / "images_background.zip").exists():
        source = SHARED_DATA / "omniglot"
        if not source.exists():  # CI always has the reference copy: there this fails instead of skipping
            _missing_reference("no Omniglot copy to evaluate the shipped weights on")
        import_omniglot(source)
    return data_dir()


def test_the_course_ships_full_scale_runs() -> None:
    assert {"maml-5w1s", "protonet-5w1s"} <= set(RUNS), sorted(RUNS)
    for name, res in RUNS.items():
        assert res["test"]["num_tasks"] >= 600 and res["device"] and res["date"] and res["wall_time_s"] > 0, name
        command = "mlcourse train" if res.get("weights") else "mlcourse scratch-baseline"
        assert res["config"]["split_scheme"] == "vinyals" and res["command"].startswith(command), name


@pytest.mark.parametrize("name", sorted(TRAINED))
def test_weight_file_is_small_fp32_without_optimiser_state(name: str) -> None:
    path = shipped.SHIPPED_DIR / name / WEIGHTS_NAME
    assert path.stat().st_size <= 2 * 1024 * 1024
    state = load_checkpoint(path)
    assert "optimizer" not in state and "rng" not in state
    assert all(t.dtype == torch.float32 for t in state["learner"].values() if t.is_floating_point())


@pytest.mark.parametrize("name", sorted(TRAINED))
def test_shipped_weights_reproduce_their_recorded_accuracy(name: str, omniglot_data) -> None:
    committed = TRAINED[name]
    checks = [(None, None, committed["test"])] + [
        (t["n_way"], t["k_shot"], t) for t in (committed.get("extra_tests") or {}).values()
    ]
    for n_way, k_shot, recorded in checks:
        new = shipped.reevaluate(name, CHECK_TASKS, seed=TEST_SEED, n_way=n_way, k_shot=k_shot)
        same_tasks = sum(recorded["per_task"][:CHECK_TASKS]) / CHECK_TASKS
        # the same 100 tasks: equal up to a few queries flipped by floating-point differences (compiled vs eager)
        assert abs(new.mean - same_tasks) < 0.005, (name, n_way, k_shot, new.mean, same_tasks)
        assert shipped.agrees(new, recorded), (name, n_way, k_shot, new.mean, recorded["mean"])


def test_results_table_reads_the_files(tmp_path) -> None:
    table = shipped.results_table()
    for name, res in RUNS.items():
        assert f"{100 * res['test']['mean']:.2f} ± {100 * res['test']['ci95']:.2f} %" in table, name
    assert "Snell et al. 2017" in table and "Finn et al. 2017" in table
    assert "no shipped Omniglot runs" in shipped.results_table(directory=tmp_path)


def test_agrees_uses_both_intervals() -> None:
    from mlcourse.train import EvalResult

    new = EvalResult(mean=0.97, ci95=0.01, per_task=[0.97] * 10)
    assert shipped.agrees(new, {"mean": 0.98, "ci95": 0.01})
    assert not shipped.agrees(new, {"mean": 0.995, "ci95": 0.005})


def test_shortfalls_name_the_runs_below_their_published_number() -> None:
    def run(algo, mean, ci95):
        history = [{"step": 1000, "val_accuracy": mean - 0.01, "train_accuracy": mean - 0.02}]
        return {
            "config": {"algo": algo, "n_way": 5, "k_shot": 1},
            "test": {"mean": mean, "ci95": ci95},
            "history": history,
        }

    runs = {"a": run("fomaml", 0.90, 0.006), "b": run("maml", 0.984, 0.003), "c": run("anil", 0.5, 0.01)}
    lines = shipped.shortfalls(runs)
    assert len(lines) == 1 and lines[0].startswith("a: 8.3 points below 98.30 ± 0.50 %")
    assert "1,000: 89.0 % (train 88.0 %)" in lines[0]  # maml is inside the intervals, anil has no published number


def test_device_label_says_when_a_run_used_one_thread() -> None:
    assert shipped._short_device("CPU: AMD EPYC (2 cores, 2 torch threads)") == "CPU (2 cores)"
    assert shipped._short_device("CPU: AMD EPYC (2 cores, 1 torch threads)") == "CPU (2 cores, 1 thread)"
    assert shipped._short_device("NVIDIA H100 80GB HBM3") == "NVIDIA H100 80GB HBM3"
