"""Committed weights of the chapters' small full-mode models (chapters 02, 03, 05 and 06), so that full mode shows real
numbers in minutes instead of retraining for half an hour.

``load_or_train(name, module, settings, train_fn)`` loads ``results/chapters/<name>.pt`` into ``module`` when the
file was made with exactly ``settings``; otherwise it calls ``train_fn()`` (which trains ``module`` in place).
Fast mode always trains (its tiny runs are what CI executes). Two switches, both environment variables so that a
notebook needs no extra argument:

* ``MLCOURSE_RETRAIN=1``: train even where committed weights exist (a student who wants to watch it train);
* ``MLCOURSE_SHIP=1``: write what was trained to ``results/chapters/<name>.pt`` (how the committed files were made:
  ``docs/FULL_SCALE.md``).

Each file holds the state dict (fp32), the settings, the training history, the device, the date and the wall time:
the chapters print them beside every number computed from the weights.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from ..checkpoint import CheckpointError, load_checkpoint, load_results, parameter_shapes, save_checkpoint
from ..config import REPO_ROOT, device_name, fast_mode
from ..provenance import provenance
from ..provenance import read as read_provenance
from ..train import (
    Experiment,
    TrainConfig,
    TrainResult,
    build_experiment,
    evaluate,
    train,
    training_notice,
)

CHAPTER_WEIGHTS = REPO_ROOT / "results" / "chapters"
KIND = "chapter-weights"  # an mlcourse checkpoint file (atomic, weights_only) of this kind


@dataclass
class Provenance:
    """Where a chapter's model came from: ``source`` is ``"committed"`` (loaded) or ``"trained"`` (just now)."""

    name: str
    source: str
    device: str
    date: str
    wall_time_s: float
    history: list[Any] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the notebook: 'committed weights (device, date, wall time)' or 'trained now (...)'."""
        when = self.date[:10]
        what = (
            "loaded committed weights results/chapters/" + self.name + ".pt"
            if self.source == "committed"
            else "trained now"
        )
        return f"{what}: {self.device}, {when}, {self.wall_time_s / 60:.1f} min of training"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def plain_settings(value: Any) -> Any:
    """Settings as JSON-like values (tuples become lists) so that a saved and a fresh copy compare equal."""
    if isinstance(value, Mapping):
        return {str(k): plain_settings(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_settings(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def weights_path(name: str, directory: Optional[Path] = None) -> Path:
    if not name or ".." in name.split("/") or name.startswith("/"):
        raise ValueError(f"name={name!r} is not allowed; use 'chapter/model', e.g. 'ch02/sinusoid-maml'")
    return (directory or CHAPTER_WEIGHTS) / f"{name}.pt"


def read(name: str, directory: Optional[Path] = None) -> Optional[dict[str, Any]]:
    """The committed file ``name`` (a dict, its provenance in :func:`mlcourse.provenance.provenance`'s keys), or
    ``None`` when there is none."""
    path = weights_path(name, directory)
    if not path.exists():
        return None
    saved = load_checkpoint(path)
    if saved.get("kind") != KIND:
        raise CheckpointError(f"{str(path)!r} is not a chapter weights file (kind {saved.get('kind')!r})")
    return read_provenance(saved)


def load_or_train(
    name: str,
    module: nn.Module,
    settings: Mapping[str, Any],
    train_fn: Callable[[], Optional[list[Any] | Mapping[str, Any]]],
    *,
    device: torch.device | str = "cpu",
    directory: Optional[Path] = None,
) -> Provenance:
    """Full mode: ``module`` gets the committed weights ``name`` made with ``settings``, or is trained by
    ``train_fn()``, which returns the history (or ``None``), or a mapping with ``history`` and, for a run that was
    made earlier and only reloaded now, its own ``wall_time_s``, ``date`` and ``device_name`` (saved with the weights
    instead of this call's). Prints where the weights came from when they were loaded. Chapters 02, 03, 05, 06."""
    settings = plain_settings(dict(settings))
    saved = None if fast_mode() or _flag("MLCOURSE_RETRAIN") else read(name, directory)
    if saved is not None and saved["config"] != settings:
        changed = sorted(k for k in set(saved["config"]) | set(settings) if saved["config"].get(k) != settings.get(k))
        print(f"[{name}] committed weights were made with other settings ({', '.join(changed)}): training instead")
        saved = None
    if saved is not None:
        module.load_state_dict(saved["learner"])
        info = Provenance(
            name, "committed", saved["device_name"], saved["date"], saved["wall_time_s"], saved["history"]
        )
        print(f"[{name}] {info.describe()} (MLCOURSE_RETRAIN=1 trains instead)")
        return info
    start = time.perf_counter()
    made = train_fn()
    made = dict(made) if isinstance(made, Mapping) else {"history": made}
    info = Provenance(
        name,
        "trained",
        made.get("device_name") or device_name(torch.device(device)),
        made.get("date") or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        round(float(made.get("wall_time_s") or time.perf_counter() - start), 1),
        plain_settings(list(made.get("history") or [])),
    )
    if _flag("MLCOURSE_SHIP") and not fast_mode():
        ship(name, module, settings, info, device=device, directory=directory)
    return info


def ship(
    name: str,
    module: nn.Module,
    settings: Mapping[str, Any],
    info: Provenance,
    *,
    device: torch.device | str = "cpu",
    directory: Optional[Path] = None,
) -> Path:
    """Write ``module``'s weights (fp32, on the CPU) as the committed file ``name``, with ``settings``, the history
    and the provenance record of ``info`` (when and where the weights were made)."""
    path = weights_path(name, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.detach().float() if v.is_floating_point() else v.detach()).cpu().contiguous()
        for k, v in module.state_dict().items()
    }
    record = {**provenance(device, wall_time_s=info.wall_time_s), "device_name": info.device, "date": info.date}
    save_checkpoint(
        path,
        {
            "kind": KIND,
            "algo": name,
            "config": settings,
            "learner": state,
            "step": 0,
            "shapes": parameter_shapes(state),
            "history": info.history,
            **record,
        },
    )
    print(f"[{name}] saved {path}")
    return path


def config_settings(config: TrainConfig, extra: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """The settings a committed run is matched on: its configuration without where and how it ran."""
    settings = {k: v for k, v in config.to_dict().items() if k not in ("out_dir", "device", "compile", "batched")}
    return plain_settings({**settings, **(extra or {})})


def will_load(name: str, settings: Mapping[str, Any], directory: Optional[Path] = None) -> bool:
    """Whether :func:`load_or_train` would load ``name`` (full mode, no MLCOURSE_RETRAIN, the same settings)."""
    if fast_mode() or _flag("MLCOURSE_RETRAIN"):
        return False
    saved = read(name, directory)
    return saved is not None and saved["config"] == plain_settings(dict(settings))


@dataclass
class CommittedRun(TrainResult):
    """A :class:`TrainResult` that may come from committed weights; ``provenance`` says which."""

    provenance: Optional[Provenance] = None


def train_committed(
    config: TrainConfig,
    name: str,
    *,
    experiment: Optional[Experiment] = None,
    progress: bool = True,
    extra: Optional[Mapping[str, Any]] = None,
) -> CommittedRun:
    """:func:`mlcourse.train.train` through :func:`load_or_train`: the committed weights ``name`` when they were
    made with ``config`` (and ``extra`` settings outside it), else a training run (chapters 02, 05 and 06). Loaded
    weights are tested on the run's own test tasks (``config.test_tasks`` of them, the test sampler's seed), so
    ``.test`` is a measurement made now, not a number read back."""
    experiment = experiment if experiment is not None else build_experiment(config)
    runs: list[TrainResult] = []

    def train_now() -> dict[str, Any]:
        notice = None if fast_mode() else training_notice(config, experiment)
        if notice:  # full-mode training can be long on a laptop: say so before it starts
            print(f"[{name}] {notice}")
        runs.append(train(config, progress=progress, experiment=experiment))
        done = runs[-1]
        made = read_provenance(load_results(done.results_path)) if done.results_path is not None else {}
        # a finished run in out_dir is reloaded, not retrained: keep when, where and how long it trained
        return {
            "history": done.history,
            "wall_time_s": done.wall_time_s,
            "date": made.get("date"),
            "device_name": made.get("device_name"),
        }

    info = load_or_train(name, experiment.learner, config_settings(config, extra), train_now, device=experiment.device)
    done = runs[-1] if runs else None
    test = done.test if done else None
    test_sampler = experiment.samplers.get("test")
    if done is None and config.test_tasks and test_sampler is not None:  # loaded: the run's test, measured now
        test = evaluate(
            experiment.learner,
            test_sampler,
            config.test_tasks,
            inner_steps=config.test_inner_steps,
            batch_size=config.eval_batch_size,
            progress=progress,
        )
    return CommittedRun(
        learner=experiment.learner,
        history=info.history,
        checkpoint_path=done.checkpoint_path if done else None,
        test=test,
        config=config,
        step=done.step if done else int(config.iterations or 0),
        completed=done.completed if done else True,
        results_path=done.results_path if done else None,
        wall_time_s=info.wall_time_s,
        experiment=experiment,
        provenance=info,
    )
