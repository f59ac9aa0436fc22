"""The full-scale runs shipped with the course: results, fp32 weights, published numbers, one table.

``scripts/omniglot_full_scale.sh`` trains each run (``runs/omniglot/<name>``, resumable) and
``mlcourse export`` copies its ``results.json`` and its weights (``weights.pt``: the learner's fp32
``state_dict`` and configuration, no optimiser state) into ``results/omniglot/<name>/``. Chapters 01, 03
and 05 print :func:`results_table` from those files; in full mode they re-evaluate the shipped weights on
fresh test tasks (:func:`reevaluate`) instead of retraining.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from .algorithms import PROTOCOLS, check_protocol
from .checkpoint import (
    CHECKPOINT_NAME,
    RESULTS_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    load_checkpoint,
    load_results,
    parameter_shapes,
    save_checkpoint,
    save_results,
)
from .commands import train_command
from .config import REPO_ROOT
from .provenance import provenance
from .provenance import read as read_provenance
from .tables import format_table
from .train import TEST_SEED, EvalResult, Experiment, TrainConfig, evaluate, load_trained, test_sampler

SHIPPED_DIR = REPO_ROOT / "results" / "omniglot"
FRESH_TEST_SEED = 4_242  # fresh test tasks (not the TEST_SEED tasks of the committed result)


# What each number's normalisation statistics were: every results table names the protocol of its numbers.
PROTOCOL_LABELS = {
    "transductive": "transductive: query batch statistics",
    "support": "support-set statistics",
    "single": "each query alone (a batch of one)",
    "tasknorm": "TaskNorm-I: support-set and instance statistics",
}
AS_PUBLISHED = "as published"  # a paper whose evaluation protocol the course does not know for sure
TRANSDUCTIVE = PROTOCOL_LABELS["transductive"]


def protocol_label(protocol: Optional[str]) -> str:
    """The label of an evaluation protocol or normalisation mode; raises naming the value and the allowed ones."""
    if protocol not in PROTOCOL_LABELS:
        raise ValueError(f"protocol={protocol!r} is not known; allowed: {', '.join(PROTOCOL_LABELS)}")
    return PROTOCOL_LABELS[protocol]


@dataclass(frozen=True)
class Published:
    """A published accuracy (percent) for one method and task shape, with its source and evaluation protocol."""

    accuracy: float
    ci95: Optional[float]
    source: str
    protocol: str = AS_PUBLISHED

    def cell(self) -> str:
        value = f"{self.accuracy:.2f} %" if self.ci95 is None else f"{self.accuracy:.2f} ± {self.ci95:.2f} %"
        return f"{value} ({self.source}; {self.protocol})"


# Omniglot, Conv-4, the papers' own tables. Keys: (algo, n_way, k_shot). MAML's numbers use the batch statistics of
# the query batch (Finn et al.'s code normalises in training mode at test time; Nichol et al. 2018 list them as
# "+ Transduction"); Reptile's is the transductive row of Nichol et al.; the others are labelled "as published".
PUBLISHED: dict[tuple[str, int, int], Published] = {
    ("maml", 5, 1): Published(98.7, 0.4, "Finn et al. 2017, Table 1", TRANSDUCTIVE),
    ("fomaml", 5, 1): Published(98.3, 0.5, "Finn et al. 2017, Table 1 (first-order approx.)", TRANSDUCTIVE),
    ("maml", 5, 5): Published(99.9, 0.1, "Finn et al. 2017, Table 1", TRANSDUCTIVE),
    ("maml", 20, 1): Published(95.8, 0.3, "Finn et al. 2017, Table 1", TRANSDUCTIVE),
    ("metasgd", 5, 1): Published(99.53, 0.26, "Li et al. 2017, Table 1"),
    ("reptile", 5, 1): Published(97.68, 0.04, "Nichol et al. 2018, Table 1 (Reptile + Transduction)", TRANSDUCTIVE),
    ("protonet", 5, 1): Published(98.8, None, "Snell et al. 2017, Table 1"),
    ("protonet", 5, 5): Published(99.7, None, "Snell et al. 2017, Table 1"),
    ("protonet", 20, 1): Published(96.0, None, "Snell et al. 2017, Table 1"),
    ("protonet", 20, 5): Published(98.9, None, "Snell et al. 2017, Table 1"),
    ("matchingnet", 5, 1): Published(98.1, None, "Vinyals et al. 2016, Table 1"),
    ("matchingnet", 20, 1): Published(93.8, None, "Vinyals et al. 2016, Table 1"),
    ("imaml", 5, 1): Published(99.16, 0.35, "Rajeswaran et al. 2019, Table 2 (iMAML, gradient-descent inner loop)"),
    ("imaml", 20, 1): Published(94.46, None, "Rajeswaran et al. 2019, Table 2 (iMAML, gradient-descent inner loop)"),
}
METHOD_NAMES = {
    "maml": "MAML (second order)",
    "fomaml": "first-order MAML",
    "metasgd": "Meta-SGD",
    "reptile": "Reptile",
    "anil": "ANIL",
    "protomaml": "Proto-MAML",
    "protonet": "ProtoNet",
    "matchingnet": "Matching Nets",
    "pretrain": "pretrain + linear probe",
    "scratch": "from scratch (no meta-training)",
    "article": "the article's rule",
    "imaml": "iMAML (implicit gradients)",
}


# Published numbers made without transduction, where a paper reports one: Nichol et al. classify each query with
# the support set (the query's batch statistics are those of the support set and that one query).
PUBLISHED_NON_TRANSDUCTIVE: dict[tuple[str, int, int], Published] = {
    ("reptile", 5, 1): Published(95.39, 0.09, "Nichol et al. 2018, Table 1 (Reptile)", "support set + one query"),
}


def method_label(config: Mapping[str, Any]) -> str:
    """A run's method name, saying how it was trained when not with the query batch's statistics."""
    name = METHOD_NAMES.get(config["algo"], config["algo"])
    mode = config.get("norm_mode", "transductive")
    return name if mode == "transductive" else f"{name}, trained with {protocol_label(mode)}"


def published(algo: str, n_way: int, k_shot: int) -> Optional[Published]:
    """The published Omniglot number for this method and shape, or ``None`` (not reported)."""
    return PUBLISHED.get((algo, n_way, k_shot))


# The course's targets (percent) for the shipped 5-way 1-shot runs under a non-transductive protocol (support-set
# statistics), set near each method's published accuracy: where each run should land once no query sees another.
NON_TRANSDUCTIVE_TARGETS: dict[tuple[str, int, int], float] = {
    ("protonet", 5, 1): 98.8,
    ("matchingnet", 5, 1): 98.1,
    ("maml", 5, 1): 98.3,
    ("metasgd", 5, 1): 98.5,
    ("fomaml", 5, 1): 97.8,
    ("reptile", 5, 1): 97.5,
}
TARGETS_SOURCE = "the course's targets, set near each method's published 5-way 1-shot accuracy"


# --------------------------------------------------------------------------------------------------
# export and extra tests


def export_run(run_dir: str | Path, dest: str | Path) -> Path:
    """Copy a finished run's ``results.json`` and its fp32 weights (no optimiser state) to ``dest``.

    ``mlcourse export RUN DEST``; ``mlcourse eval DEST`` and :func:`load_shipped` read the copy back.
    """
    run_dir, dest = Path(run_dir), Path(dest)
    results = load_results(run_dir)
    if not results.get("test"):
        raise CheckpointError(f"run {str(run_dir)!r} has no test result yet: finish it before exporting")
    checkpoint = load_checkpoint(run_dir / CHECKPOINT_NAME)
    weights = {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in checkpoint["learner"].items()}
    dest.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        dest / WEIGHTS_NAME,
        {
            "algo": checkpoint["algo"],
            "config": checkpoint["config"],
            "step": checkpoint["step"],
            "shapes": parameter_shapes(weights),
            "learner": weights,
            "learner_config": checkpoint.get("learner_config", {}),
            "torch": read_provenance(checkpoint)["torch"],
        },
    )

    config = TrainConfig.from_dict(results["config"])
    results = {k: v for k, v in results.items() if k not in ("format", "version")}
    results.update({"weights": WEIGHTS_NAME, "command": train_command(config.replace(out_dir=str(run_dir)))})
    return save_results(dest / RESULTS_NAME, results)


def shape_key(n_way: int, k_shot: int) -> str:
    return f"{n_way}way{k_shot}shot"


def record_extra_test(
    run_dir: str | Path, result: EvalResult, *, n_way: int, k_shot: int, device: torch.device, wall_time_s: float
) -> Path:
    """Add a test on another task shape (same weights, ``mlcourse eval --record``) to a run's results.json."""
    entry = {**result.to_dict(), "n_way": n_way, "k_shot": k_shot}
    return _record_entry(run_dir, "extra_tests", shape_key(n_way, k_shot), entry, device, wall_time_s)


def _record_entry(
    run_dir: str | Path, key: str, name: str, entry: dict[str, Any], device: torch.device | str, wall_time_s: float
) -> Path:
    """Write ``entry`` (stamped with device, wall time and date) as ``results[key][name]`` of a run's results.json,
    leaving every other entry as it was."""
    results = load_results(run_dir)
    table = dict(results.get(key) or {})
    table[name] = {
        **entry,
        **provenance(device, wall_time_s=wall_time_s),
    }
    results = {k: v for k, v in results.items() if k not in ("format", "version")}
    results[key] = table
    return save_results(Path(run_dir) / RESULTS_NAME, results)


# --------------------------------------------------------------------------------------------------
# reading the shipped runs


def shipped_runs(directory: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """``{name: results}`` of every shipped run (``results/omniglot/<name>/results.json``), sorted by name; a run
    without weights (``"weights": null``: chapter 01's from-scratch baseline, nothing meta-trained) is listed too.
    Their provenance is read into :func:`mlcourse.provenance.provenance`'s keys."""
    root = Path(directory) if directory is not None else SHIPPED_DIR
    if not root.is_dir():
        return {}
    return {p.parent.name: read_provenance(load_results(p)) for p in sorted(root.glob(f"*/{RESULTS_NAME}"))}


def load_shipped(
    name: str, device: torch.device | str | None = "cpu", directory: str | Path | None = None
) -> Experiment:
    """The experiment of a shipped run with its trained weights (data loaded, samplers at their seeds)."""
    root = Path(directory) if directory is not None else SHIPPED_DIR
    path = root / name / WEIGHTS_NAME
    if not path.exists():
        known = ", ".join(shipped_runs(root)) or "none"
        raise FileNotFoundError(f"no shipped run {name!r} in {root} (known: {known})")
    experiment, _ = load_trained(path, device=device)
    return experiment


def reevaluate(
    name: str,
    num_tasks: int = 600,
    *,
    seed: int = FRESH_TEST_SEED,
    n_way: Optional[int] = None,
    k_shot: Optional[int] = None,
    device: torch.device | str | None = "cpu",
    batch_size: int = 25,
    progress: bool = False,
    directory: str | Path | None = None,
    protocol: Optional[str] = None,
) -> EvalResult:
    """Evaluate a shipped run's weights on ``num_tasks`` test tasks drawn with ``seed`` (fresh ones by default),
    under ``protocol`` (``transductive``, ``support``, ``single``; ``None``: non-transductive, the run's own mode or
    ``support`` for a run trained transductively).

    Full mode of chapters 01/03/05: minutes on a CPU instead of an hour of training per run.
    """
    exp = load_shipped(name, device=device, directory=directory)
    sampler = test_sampler(exp, n_way=n_way, k_shot=k_shot, seed=seed)
    return evaluate(
        exp.learner,
        sampler,
        num_tasks,
        inner_steps=exp.config.test_inner_steps,
        batch_size=batch_size,
        progress=progress,
        protocol=protocol,
    )


def evaluate_protocols(
    name: str,
    protocols: Sequence[str] = PROTOCOLS,
    num_tasks: int = 600,
    *,
    seed: int = TEST_SEED,
    **kw: Any,
) -> dict[str, tuple[EvalResult, float]]:
    """``{protocol: (result, seconds)}``: a shipped run under each evaluation protocol, on the same ``num_tasks``
    test tasks (the protocol's fixed ones by default, those of its recorded ``test``). The transductive
    number leans on the query batch's statistics; ``support`` and ``single`` classify a query without the others."""
    if not protocols:
        raise ValueError(f"protocols={list(protocols)!r} is empty; allowed: some of {', '.join(PROTOCOLS)}")
    for protocol in protocols:
        check_protocol(protocol, "protocols[]")
    out = {}
    for protocol in protocols:
        start = time.perf_counter()
        result = reevaluate(name, num_tasks, seed=seed, protocol=protocol, **kw)
        out[protocol] = (result, time.perf_counter() - start)
    return out


def record_protocol_test(
    run_dir: str | Path,
    result: EvalResult,
    *,
    seed: int,
    command: str,
    device: torch.device | str,
    wall_time_s: float,
) -> Path:
    """Add a test under one protocol (same weights and task shape, ``mlcourse eval --protocol P --record``) to a
    run's results.json, key ``test_by_protocol``; its ``test`` entry stays as it was."""
    if result.protocol is None:
        raise ValueError(f"result.protocol=None is not allowed; allowed: {', '.join(PROTOCOLS)}")
    check_protocol(result.protocol, "result.protocol")
    entry = {**result.to_dict(), "seed": seed, "command": command}
    return _record_entry(run_dir, "test_by_protocol", result.protocol, entry, device, wall_time_s)


def recorded_test(res: Mapping[str, Any], protocol: str) -> Optional[Mapping[str, Any]]:
    """A run's committed test (its own task shape) under ``protocol``: its ``test_by_protocol`` entry, or its
    ``test`` when that ran under the protocol (a ``test`` without one ran in the run's ``norm_mode``); else None."""
    protocol_label(protocol)  # a known protocol or normalisation mode (tasknorm: a TaskNorm run's own)
    entry = (res.get("test_by_protocol") or {}).get(protocol)
    if entry is not None:
        return entry
    test = res.get("test") or {}
    ran = test.get("protocol") or res.get("config", {}).get("norm_mode", "transductive")
    return test if test and ran == protocol else None


def agrees(new: EvalResult, committed: Mapping[str, Any]) -> bool:
    """True when two evaluations of the same weights agree: the difference of the means lies within the
    95 % interval of a difference of two independent estimates, ``1.96 * sqrt(se_new^2 + se_old^2)``."""
    se_new, se_old = new.ci95 / 1.96, float(committed["ci95"]) / 1.96
    return abs(new.mean - float(committed["mean"])) <= 1.96 * (se_new**2 + se_old**2) ** 0.5


# --------------------------------------------------------------------------------------------------
# the table the chapters print


def _hours(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def _short_device(label: str) -> str:
    """ "CPU (2 cores)" from "CPU: AMD EPYC (2 cores, 2 torch threads)"; "CPU (2 cores, 1 thread)" when the run used
    one thread (runs made side by side, one per core: their wall time is one core's)."""
    if label.startswith("CPU:"):
        cores = label[label.rfind("(") + 1 :].split(" cores")[0] if "cores" in label else "?"
        threads = re.search(r"(\d+) torch threads", label)
        one = ", 1 thread" if threads and threads.group(1) == "1" and cores != "1" else ""
        return f"CPU ({cores} cores{one})"
    return label


def table_rows(runs: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """One row per (run, test shape): method, shape, accuracy ± CI, its protocol (a ``test`` without one ran in the
    run's own ``norm_mode``: transductive unless configured), how it was made, the published number and protocol."""
    rows = []
    for res in runs.values():
        config, test = res["config"], res.get("test")
        if not test:
            continue
        made = (
            f"{_short_device(read_provenance(res)['device_name'] or '?')}, {res.get('iterations', '?')} it., "
            f"{_hours(float(res.get('wall_time_s', 0)))}, {str(res.get('date', '?'))[:10]}"
            + (", batched step" if res.get("batched") else "")  # mlcourse.algorithms.batched
        )
        tests = [(config["n_way"], config["k_shot"], test, "")]
        for extra in (res.get("extra_tests") or {}).values():
            tests.append((extra["n_way"], extra["k_shot"], extra, " (same weights)"))
        for n_way, k_shot, t, note in tests:
            pub = published(config["algo"], n_way, k_shot)
            rows.append(
                [
                    method_label(config) + note,
                    f"{n_way}-way {k_shot}-shot",
                    f"{100 * t['mean']:.2f} ± {100 * t['ci95']:.2f} % ({t['num_tasks']} tasks)",
                    protocol_label(t.get("protocol") or config.get("norm_mode", "transductive")),
                    made,
                    pub.cell() if pub else "not reported",
                ]
            )
    return rows


TABLE_HEADERS = (
    "method",
    "task",
    "this course (95 % CI)",
    "protocol (this course)",
    "device, iterations, wall time, date",
    "published (source; protocol)",
)


def results_table(names: Optional[Iterable[str]] = None, directory: str | Path | None = None) -> str:
    """The comparison table of the shipped runs with the published numbers, read from the results files."""
    runs = _selected_runs(names, directory)
    if not runs:
        return "(no shipped Omniglot runs found under results/omniglot/)"
    return format_table(table_rows(runs), TABLE_HEADERS)


PROTOCOL_HEADERS = (
    "method",
    "task",
    "transductive (query batch)",
    "support statistics",
    "each query alone",
    "published (source; protocol)",
)


def protocol_rows(runs: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """One row per run with ``test_by_protocol``: its accuracy under each evaluation protocol (the
    transductive number leans on the query batch's statistics), and the published number."""
    rows = []
    for res in runs.values():
        by_protocol, config = res.get("test_by_protocol") or {}, res["config"]
        if not by_protocol:
            continue
        cells = [
            f"{100 * by_protocol[p]['mean']:.2f} ± {100 * by_protocol[p]['ci95']:.2f} %" if p in by_protocol else "-"
            for p in PROTOCOLS
        ]
        pub = published(config["algo"], config["n_way"], config["k_shot"])
        name = method_label(config)
        rows.append([name, f"{config['n_way']}-way {config['k_shot']}-shot", *cells, pub.cell() if pub else "-"])
    return rows


def _selected_runs(names: Optional[Iterable[str]], directory: str | Path | None) -> dict[str, dict[str, Any]]:
    """The shipped runs named in ``names`` (all of them when ``None``), in that order."""
    runs = shipped_runs(directory)
    return runs if names is None else {n: runs[n] for n in names if n in runs}


def protocol_table(names: Optional[Iterable[str]] = None, directory: str | Path | None = None) -> str:
    """The shipped runs under the three evaluation protocols, read from their results files (never typed in)."""
    rows = protocol_rows(_selected_runs(names, directory))
    return format_table(rows, PROTOCOL_HEADERS) if rows else "(no shipped run records test_by_protocol yet)"


TARGET_HEADERS = (
    "method",
    "task",
    "support-set statistics (95 % CI)",
    "target",
    "published without transduction (source; protocol)",
    "verdict",
)


def target_rows(runs: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """One row per run with a non-transductive target (:data:`NON_TRANSDUCTIVE_TARGETS`) and a recorded ``support``
    test: its accuracy, the target, a published non-transductive number where one exists, and whether the mean meets
    the target or by how many points it misses (and whether the target lies inside the accuracy's 95 % interval)."""
    rows = []
    for res in runs.values():
        config, entry = res["config"], recorded_test(res, "support")
        target = NON_TRANSDUCTIVE_TARGETS.get((config["algo"], config["n_way"], config["k_shot"]))
        if target is None or entry is None:
            continue
        mean, ci95 = 100 * entry["mean"], 100 * entry["ci95"]
        gap = target - mean
        verdict = "meets it" if gap <= 0 else f"misses it by {gap:.2f} points"
        if 0 < gap <= ci95:
            verdict += " (inside its 95 % CI)"
        without = PUBLISHED_NON_TRANSDUCTIVE.get((config["algo"], config["n_way"], config["k_shot"]))
        rows.append(
            [
                method_label(config),
                f"{config['n_way']}-way {config['k_shot']}-shot",
                f"{mean:.2f} ± {ci95:.2f} %",
                f"≥ {target:.1f} %",
                without.cell() if without else "-",
                verdict,
            ]
        )
    return rows


def target_table(names: Optional[Iterable[str]] = None, directory: str | Path | None = None) -> str:
    """The shipped runs' support-statistics accuracy against :data:`NON_TRANSDUCTIVE_TARGETS`, read from their
    results files."""
    rows = target_rows(_selected_runs(names, directory))
    return format_table(rows, TARGET_HEADERS) if rows else "(no shipped run with a target records a support test)"


def shortfalls(runs: Optional[Mapping[str, Mapping[str, Any]]] = None) -> list[str]:
    """One line per shipped run whose test accuracy lies below the published number by more than both intervals,
    with its validation curve (200 tasks every 1,000 iterations) and the training accuracy at the same steps, read
    from its results.json: whether it underfits (training accuracy low too) or overfits."""
    lines = []
    for name, res in (shipped_runs() if runs is None else runs).items():
        config, test = res["config"], res.get("test")
        pub = published(config["algo"], config["n_way"], config["k_shot"]) if test else None
        if pub is None:
            continue
        gap = pub.accuracy - 100 * test["mean"]
        if gap <= 100 * test["ci95"] + (pub.ci95 or 0.0):
            continue
        lines.append(f"{name}: {gap:.1f} points below {pub.cell()}; {_curve(res)}")
    return lines


def _curve(res: Mapping[str, Any]) -> str:
    """A run's validation curve (200 tasks every 1,000 iterations) with the training accuracy at the same steps."""
    val = [(h["step"], h["val_accuracy"]) for h in res.get("history", []) if "val_accuracy" in h]
    train = {h["step"]: h.get("train_accuracy") for h in res.get("history", [])}
    curve = ", ".join(
        f"{s:,}: {100 * v:.1f} %" + (f" (train {100 * train[s]:.1f} %)" if train.get(s) is not None else "")
        for s, v in val
    )
    mode = protocol_label(res.get("config", {}).get("norm_mode", "transductive"))
    return f"validation (train) accuracy by iteration, {mode}: {curve}"


def target_shortfalls(runs: Optional[Mapping[str, Mapping[str, Any]]] = None) -> list[str]:
    """One line per shipped run whose support-statistics accuracy misses its non-transductive target: by how much,
    the published non-transductive number where there is one, and the run's learning curve."""
    lines = []
    for name, res in (shipped_runs() if runs is None else runs).items():
        config, entry = res["config"], recorded_test(res, "support")
        key = (config["algo"], config["n_way"], config["k_shot"])
        if entry is None or key not in NON_TRANSDUCTIVE_TARGETS or 100 * entry["mean"] >= NON_TRANSDUCTIVE_TARGETS[key]:
            continue
        gap = NON_TRANSDUCTIVE_TARGETS[key] - 100 * entry["mean"]
        without = PUBLISHED_NON_TRANSDUCTIVE.get(key)
        published_note = f" (published without transduction: {without.cell()})" if without else ""
        lines.append(f"{name}: {gap:.2f} points below its target{published_note}; {_curve(res)}")
    return lines


def timed_reevaluation(names: Sequence[str], num_tasks: int, **kw: Any) -> list[tuple[str, EvalResult, float, bool]]:
    """Re-evaluate several shipped runs; ``[(name, result, seconds, agrees_with_committed)]`` (the committed test
    under the same protocol; False when none was recorded)."""
    runs = shipped_runs(kw.get("directory"))
    out = []
    for name in names:
        start = time.perf_counter()
        result = reevaluate(name, num_tasks, **kw)
        committed = recorded_test(runs[name], result.protocol)
        same = committed is not None and agrees(result, committed)
        out.append((name, result, time.perf_counter() - start, same))
    return out


__all__ = [
    "SHIPPED_DIR",
    "PUBLISHED",
    "Published",
    "published",
    "export_run",
    "record_extra_test",
    "shipped_runs",
    "load_shipped",
    "reevaluate",
    "evaluate_protocols",
    "record_protocol_test",
    "agrees",
    "recorded_test",
    "results_table",
    "protocol_table",
    "protocol_rows",
    "protocol_label",
    "PROTOCOL_LABELS",
    "NON_TRANSDUCTIVE_TARGETS",
    "PUBLISHED_NON_TRANSDUCTIVE",
    "method_label",
    "TARGETS_SOURCE",
    "target_rows",
    "target_table",
    "table_rows",
    "timed_reevaluation",
    "shortfalls",
    "target_shortfalls",
    "FRESH_TEST_SEED",
]
