"""Chapter 03's comparisons: the five algorithms on the sinusoids at one shared size, and the shipped full-scale
Omniglot runs read back beside the chapter's own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Optional

import torch
from torch import nn

from mlcourse import shipped
from mlcourse.commands import train_command
from mlcourse.config import runs_dir
from mlcourse.train import (
    TrainConfig,
    build_experiment,
    evaluate,
    expected_training_time,
    measure_step_time,
    train,
)

# Chapter 03's sinusoid comparison (one budget for all): algorithm -> (inner step size alpha, inner steps while
# meta-training); full mode trains each for SINUSOID_COMPARISON_ITERATIONS with meta-batches of
# SINUSOID_COMPARISON_META_BATCH tasks (its weights are committed, ch03/; tests/test_committed.py matches them).
SINUSOID_COMPARISON: dict[str, tuple[float, int]] = {
    "maml": (0.01, 1),
    "metasgd": (0.01, 1),
    "reptile": (0.01, 5),
    "pretrain": (0.01, 1),
}

SINUSOID_COMPARISON_ITERATIONS = 20_000

SINUSOID_COMPARISON_META_BATCH = 25


def shipped_omniglot(
    names: Sequence[str],
    *,
    retrain: bool = False,
    num_tasks: int = 600,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Full mode of chapters 01, 03 and 05: the shipped Omniglot runs (``results/omniglot``), re-evaluated.

    ``retrain=False`` (the default): each shipped run's fp32 weights are tested on ``num_tasks`` *fresh* test
    tasks (another seed than the committed result) — minutes on a CPU — and a line says whether the new
    number agrees with the committed one. ``retrain=True``: each run is trained again with its exact
    configuration into ``runs/omniglot/<name>`` (resumable); one step is measured first and the expected time
    printed. Returns ``{name: EvalResult or TrainResult}``.
    """

    runs = shipped.shipped_runs()
    missing = [n for n in names if n not in runs]
    if missing:
        raise FileNotFoundError(
            f"shipped run(s) {', '.join(missing)} not found under {shipped.SHIPPED_DIR}; "
            f"known: {', '.join(runs) or 'none'}"
        )
    out: dict[str, Any] = {}
    for name in names:
        committed = runs[name]
        if not retrain:
            start = time.perf_counter()
            result = shipped.reevaluate(name, num_tasks, device=device, progress=progress)
            recorded = shipped.recorded_test(committed, result.protocol)
            versus = (
                f"committed {100 * recorded['mean']:.2f} ± {100 * recorded['ci95']:.2f} %: "
                + ("agrees" if shipped.agrees(result, recorded) else "DIFFERS")
                if recorded
                else "no committed test under this protocol"
            )
            print(
                f"{name}: fresh {num_tasks} test tasks, {result.protocol} protocol, "
                f"{100 * result.mean:.2f} ± {100 * result.ci95:.2f} % ({versus}), {time.perf_counter() - start:.0f} s"
            )
            out[name] = result
            continue
        config = TrainConfig.from_dict(committed["config"]).replace(
            device=str(device), out_dir=str(runs_dir() / "omniglot" / name)
        )
        seconds = measure_step_time(config)
        print(expected_training_time(config, seconds))
        print(f"  from a terminal: {train_command(config)}")
        out[name] = train(config, progress=progress, experiment=build_experiment(config))
    return out


def omniglot_train_accuracy(
    learner: nn.Module, train_sampler, num_tasks: int = 100, inner_steps: Optional[int] = None
) -> tuple[float, float]:
    """Accuracy on new tasks drawn from the *training* characters (meta-training tasks' distribution)."""

    r = evaluate(learner, train_sampler, num_tasks, inner_steps=inner_steps)
    return r.mean, r.ci95
