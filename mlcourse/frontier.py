"""Accuracy against compute: every shipped learner trained for the same wall-clock budget on the same machine.

Each learner trains with its shipped run's configuration (``results/omniglot/<run>/results.json``), except that the
outer learning rate is constant (a cosine schedule needs the iteration count, which a time budget does not fix) and
nothing is checkpointed. The clock counts training only: it stops while the learner is evaluated on one fixed set
of validation tasks (the same tasks at every mark, for every learner) at fixed marks of training time. Each learner
runs in its own process on one thread, pinned to one core, ``jobs`` of them side by side
(``mlcourse frontier``). A learner's record is written when it finishes, so an interrupted sweep reruns only the
learners without one.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import torch
import tyro
from torch import nn

from mlcourse.atomic import write_json
from mlcourse.cliparse import CLIError, Command, arg, require
from mlcourse.config import runs_dir
from mlcourse.provenance import MEASUREMENTS_DIR, load_measurement, provenance
from mlcourse.shipped import SHIPPED_DIR, shipped_runs
from mlcourse.train import TrainConfig, Trainer, build_experiment, build_learner, evaluate

FRONTIER_RUNS = (
    "maml-5w1s",
    "fomaml-5w1s",
    "reptile-5w1s",
    "anil-5w1s",
    "metasgd-5w1s",
    "protomaml-5w1s",
    "imaml-5w1s",
    "protonet-5w1s",
    "matchingnet-5w1s",
)
MARK_FRACTIONS = (0.025, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0)  # of the budget: dense early, where curves rise fastest
METRIC_RUNS = ("protonet-5w1s", "matchingnet-5w1s")  # no inner loop: the rest adapt by gradient steps
FRONTIER_VAL_SEED = 2_027  # the one fixed set of validation tasks every learner is measured on
PROTOCOLS = ("support", "transductive")  # every mark: the course's default (non-transductive); the last: both
RESULTS_DIR = MEASUREMENTS_DIR
KIND = "mlcourse.frontier"


def marks_for(budget_s: float) -> list[float]:
    """The training-time marks (seconds) at which a learner is evaluated, for a budget of ``budget_s``."""
    if not budget_s > 0:
        raise ValueError(f"budget_s={budget_s!r} is out of range; allowed > 0 (seconds of training)")
    return [round(budget_s * f, 3) for f in MARK_FRACTIONS]


def frontier_config(run: str, directory: Path = SHIPPED_DIR, **changes: Any) -> TrainConfig:
    """The shipped run ``run``'s configuration for the frontier: constant outer learning rate, no checkpoints, the
    CPU, torch.compile and the batched training step where the library's rules turn them on for the CPU (``changes``
    override any field; a test shrinks the network)."""
    runs = shipped_runs(directory)
    if run not in runs:
        raise ValueError(f"run={run!r} is not a shipped run; allowed: {', '.join(sorted(runs))}")
    saved = dict(runs[run]["config"])
    saved.update(lr_schedule="constant", iterations=10**7, device="cpu", out_dir=None, compile=None, batched=None)
    saved.update(changes)
    return TrainConfig.from_dict(saved)


def step_flops(learner: nn.Module, batch: Any) -> int:
    """FLOPs of one outer step (meta-loss and its backward; matrix products and convolutions, as ``mlcourse bench``
    counts them), measured on ``learner`` itself."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        learner.zero_grad(set_to_none=True)
        learner(batch).loss.backward()
    learner.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def validation_accuracy(exp: Any, num_tasks: int, protocols: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{protocol: {"mean", "ci95"}}`` on the fixed validation tasks (a fresh sampler with one seed each time, so
    every mark and every learner sees the same tasks)."""
    base = exp.samplers["val"]
    config = exp.config
    scores: dict[str, dict[str, float]] = {}
    for protocol in protocols:
        sampler = type(base)(
            base.dataset, config.n_way, config.k_shot, config.n_query, device=exp.device, seed=FRONTIER_VAL_SEED
        )
        result = evaluate(
            exp.learner, sampler, num_tasks, inner_steps=config.test_inner_steps, batch_size=25, protocol=protocol
        )
        scores[protocol] = {"mean": result.mean, "ci95": result.ci95}
    return scores


def train_for(
    config: TrainConfig,
    budget_s: float,
    *,
    marks: Optional[Sequence[float]] = None,
    datasets: Optional[Mapping[str, Any]] = None,
    val_tasks: int = 200,
    protocols: Sequence[str] = PROTOCOLS[:1],
    final_protocols: Sequence[str] = PROTOCOLS,
    clock: Callable[[], float] = time.perf_counter,
    say: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Train ``config``'s learner for ``budget_s`` seconds of training (evaluation paused) and evaluate it at each
    of ``marks`` (default :func:`marks_for`) under ``protocols`` (the last mark under ``final_protocols``).

    Returns the learner's record: its curve (one point per mark: training seconds, outer steps, FLOPs, accuracy by
    protocol), the FLOPs of one step and the first step's seconds (torch.compile's compilation where it is on)."""
    marks = sorted(marks) if marks is not None else marks_for(budget_s)
    exp = build_experiment(config, "cpu", datasets=datasets)
    trainer = Trainer(exp.learner, outer_lr=config.outer_lr)
    eager = build_learner(config.replace(compile=False, batched=False), copy.deepcopy(exp.model), exp.device)
    flops = step_flops(eager, exp.samplers["train"].sample(config.meta_batch_size))
    curve: list[dict[str, Any]] = []
    trained = first_step_s = 0.0
    while len(curve) < len(marks):
        batch = exp.samplers["train"].sample(config.meta_batch_size)
        start = clock()
        trainer.step(batch)
        elapsed = clock() - start
        first_step_s = first_step_s or elapsed
        trained += elapsed
        while len(curve) < len(marks) and trained >= marks[len(curve)]:
            last = len(curve) == len(marks) - 1
            accuracy = validation_accuracy(exp, val_tasks, final_protocols if last else protocols)
            curve.append(
                {"seconds": trained, "steps": trainer.steps, "flops": trainer.steps * flops, "accuracy": accuracy}
            )
            say(f"{config.algo}: {trained:.0f} s, {trainer.steps} steps, " + _accuracy_line(accuracy))
    return {
        "config": config.to_dict(),
        "compiled": bool(exp.learner.use_compile),
        "batched": bool(exp.learner.batched_now),
        "budget_s": budget_s,
        "marks": list(marks),
        "step_flops": flops,
        "first_step_s": first_step_s,
        "val_tasks": val_tasks,
        "val_seed": FRONTIER_VAL_SEED,
        "curve": curve,
    }


def _accuracy_line(accuracy: Mapping[str, Mapping[str, float]]) -> str:
    return ", ".join(f"{p} {100 * a['mean']:.1f}%" for p, a in accuracy.items())


def partial_dir(budget_s: float) -> Path:
    """Where the learners' records of one budget are kept until they are merged (an interrupted sweep resumes)."""
    return runs_dir() / "frontier" / f"budget-{budget_s:g}s"


def run_worker(run: str, budget_s: float, folder: Path) -> Path:
    """One learner, one thread, in this process: its record goes to ``folder/<run>.json``."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    record = train_for(frontier_config(run), budget_s, say=lambda line: print(line, flush=True))
    record.update(run=run, **provenance("cpu", wall_time_s=time.perf_counter() - start))
    return write_json(folder / f"{run}.json", record)


def _pinned(core: int) -> Callable[[], None]:
    return lambda: os.sched_setaffinity(0, {core})


def run_sweep(runs: Sequence[str], budget_s: float, jobs: int, folder: Path) -> None:
    """Every run in ``runs`` without a record in ``folder``, ``jobs`` at a time, each in a child process pinned to
    its own core (the children's output goes to ``folder/<run>.log``)."""
    cores = sorted(os.sched_getaffinity(0))
    if not 1 <= jobs <= len(cores):
        raise CLIError(f"--jobs={jobs} is not allowed; allowed: 1 to {len(cores)} (the cores this process may use)")
    folder.mkdir(parents=True, exist_ok=True)
    todo = [r for r in runs if not (folder / f"{r}.json").exists()]
    free, running = cores[:jobs], {}
    while todo or running:
        while todo and free:
            run, core = todo.pop(0), free.pop(0)
            command = [sys.executable, "-m", "mlcourse", "frontier", "--worker", run, "--budget", str(budget_s)]
            log = open(folder / f"{run}.log", "w")  # noqa: SIM115 - closed when the child ends
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            running[run] = (
                subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_pinned(core)),
                core,
                log,
            )
            print(f"{run}: started on core {core}", flush=True)
        time.sleep(1.0)
        for run, (child, core, log) in list(running.items()):
            if child.poll() is not None:
                log.close()
                free.append(core)
                del running[run]
                status = "done" if child.returncode == 0 else f"failed ({child.returncode}; see {log.name})"
                print(f"{run}: {status}", flush=True)


def merge(runs: Sequence[str], budget_s: float, jobs: int, folder: Path, out: Path, wall_time_s: float) -> Path:
    """One file of every learner's record (those that finished), with where, when and how they were made."""
    learners = {r: json.loads((folder / f"{r}.json").read_text()) for r in runs if (folder / f"{r}.json").exists()}
    missing = [r for r in runs if r not in learners]
    machine = {key: [r.get(key) for r in learners.values()] for key in ("device_name", "threads", "torch", "allocator")}
    payload = {
        "kind": KIND,
        **provenance("cpu", command=f"mlcourse frontier --budget {budget_s:g} --jobs {jobs}", wall_time_s=wall_time_s),
        **{key: _one_or_all(values) for key, values in machine.items() if values},  # the learners', not this process's
        "threads_per_learner": 1,
        "learners_side_by_side": jobs,
        "budget_s": budget_s,
        "clock": "training time only: evaluation pauses it; the first step includes torch.compile's compilation",
        "outer_lr_schedule": "constant",
        "validation": {
            "tasks": 200,
            "seed": FRONTIER_VAL_SEED,
            "split": "val",
            "protocols": PROTOCOLS[0],
            "last_mark": list(PROTOCOLS),
        },
        "missing": missing,
        "learners": learners,
    }
    return write_json(out, payload)


def _one_or_all(values: list[Any]) -> Any:
    """The value every learner shares, or all of them (a sweep resumed on another machine says so)."""
    return values[0] if len(set(map(str, values))) == 1 else values


def load(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """A merged frontier file (default: the newest ``benchmarks/results/frontier-cpu-*.json``), with ``file`` set."""
    return load_measurement(KIND, "a frontier file", "mlcourse frontier", pattern="frontier-cpu-*.json", path=path)


def winners(
    payload: Mapping[str, Any], protocol: str = PROTOCOLS[0], runs: Optional[Sequence[str]] = None
) -> list[dict[str, Any]]:
    """Per mark of the budget: the most accurate learner under ``protocol`` (among ``runs``, default all), the
    runner-up, and whether the two are apart by more than their 95 % intervals (else the mark has no clear winner)."""
    learners = {run: r for run, r in payload["learners"].items() if runs is None or run in runs}
    if len(learners) < 2:
        raise ValueError(f"{len(learners)} learner(s) to compare; a winner needs at least 2")
    table = []
    for index, mark in enumerate(learners[next(iter(learners))]["marks"]):
        scores = sorted(
            ((r["curve"][index]["accuracy"][protocol], run) for run, r in learners.items()),
            key=lambda item: item[0]["mean"],
            reverse=True,
        )
        (best, run), (second, runner_up) = scores[0], scores[1]
        clear = best["mean"] - best["ci95"] > second["mean"] + second["ci95"]
        table.append(
            {
                "mark_s": mark,
                "run": run,
                "accuracy": best,
                "runner_up": runner_up,
                "runner_up_accuracy": second,
                "clear": clear,
            }
        )
    return table


DESCRIPTION = (
    "Train every shipped learner for the same wall-clock budget, one thread each, pinned side by side, and evaluate "
    "each on one fixed set of 200 validation tasks at fixed marks of training time (an interrupted sweep reruns "
    "only the learners without a record)."
)


Run = Literal[FRONTIER_RUNS]  # type: ignore[valid-type]


@dataclass(frozen=True)
class FrontierOptions:
    """The options of ``mlcourse frontier``."""

    budget: Annotated[float, arg("seconds of training per learner (> 0)")] = 600.0
    jobs: Annotated[int, arg("learners side by side, one core each (1 to the number of cores)")] = 2
    runs: Annotated[tuple[Run, ...], arg("the learners", default="all nine")] = FRONTIER_RUNS
    out: Annotated[
        Optional[str],
        tyro.conf.DisallowNone,
        arg("JSON path", metavar="FILE", default="benchmarks/results/frontier-cpu-DATE.json"),
    ] = None
    worker: Annotated[
        Optional[Run],
        tyro.conf.DisallowNone,
        arg("train this one learner in this process (the sweep starts these)", default="none"),
    ] = None


def frontier_command(args: FrontierOptions) -> int:
    """``mlcourse frontier [--budget S] [--jobs N] [--runs ...] [--out FILE]``: the sweep, then one merged file."""
    require(args.budget > 0, "--budget", args.budget, "seconds > 0")
    folder = partial_dir(args.budget)
    if args.worker is not None:
        run_worker(args.worker, args.budget, folder)
        return 0
    start = time.perf_counter()
    run_sweep(args.runs, args.budget, args.jobs, folder)
    date = _dt.date.today().isoformat()
    out = Path(args.out) if args.out else RESULTS_DIR / f"frontier-cpu-{date}.json"
    path = merge(args.runs, args.budget, args.jobs, folder, out, time.perf_counter() - start)
    print(f"wrote {path}")
    return 0


COMMAND = Command(
    "accuracy against training time: every shipped learner for the same budget, one core each",
    FrontierOptions,
    frontier_command,
    DESCRIPTION,
)
