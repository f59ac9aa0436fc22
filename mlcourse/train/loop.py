"""The training loop in small parts: :class:`Trainer` (one outer step), the run state (:class:`_Run`) with its
atomic checkpoints and exact resume, validation, logging, the test and ``results.json`` (:func:`train`), the
expected training time, and :func:`load_trained`."""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from .. import distributed
from ..algorithms import non_transductive
from ..checkpoint import (
    CHECKPOINT_NAME,
    RESULTS_NAME,
    CheckpointError,
    ResultsError,
    capture_rng_state,
    check_compatible,
    load_checkpoint,
    load_results,
    parameter_shapes,
    prepare_output_dir,
    resolve_checkpoint_path,
    restore_rng_state,
    save_checkpoint,
    save_results,
)
from ..hostmemory import keep_freed_memory
from ..provenance import provenance
from ..provenance import read as read_provenance
from .config import LATER_FIELDS, RESUMABLE_CHANGES, TEST_NEUTRAL_CHANGES, ConfigError, TrainConfig, _is_int
from .evaluation import EvalResult, evaluate
from .experiment import Experiment, build_experiment


@dataclass
class TrainResult:
    """What :func:`train` returns. ``test`` is ``None`` when the run stopped before its last iteration."""

    learner: nn.Module
    history: list[dict[str, Any]]
    checkpoint_path: Optional[Path]
    test: Optional[EvalResult]
    config: TrainConfig
    step: int
    completed: bool
    results_path: Optional[Path] = None
    wall_time_s: float = 0.0
    experiment: Optional[Experiment] = field(default=None, repr=False)

    @property
    def model(self) -> nn.Module:
        return self.learner.model if hasattr(self.learner, "model") else self.experiment.model  # type: ignore[union-attr]


def _check_resume_config(saved: Mapping[str, Any], config: TrainConfig, path: Path) -> None:
    current = dataclasses.asdict(config)  # every field, LATER_FIELDS at their default too
    if saved.get("algo") != config.algo:
        raise CheckpointError(
            f"checkpoint {str(path)!r} was written by algorithm {saved.get('algo')!r}, but this run uses {config.algo!r}; "
            "choose another output directory, the matching algorithm, or resume=False / --restart to overwrite it"
        )
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    # a field added after the checkpoint was written counts as its default value (older checkpoints resume)
    diffs = [
        f"{k}={saved.get(k, defaults.get(k))!r} there but {current[k]!r} here"
        for k in current
        if k not in RESUMABLE_CHANGES and saved.get(k, defaults.get(k)) != current[k]
    ]
    if diffs:
        raise CheckpointError(
            f"checkpoint {str(path)!r} belongs to another configuration ({'; '.join(diffs[:4])}); "
            "use another output directory, or resume=False / --restart to overwrite it"
        )


def logged_loss(learner: nn.Module, out: Any, loss_value: float) -> float:
    """The training loss that logs and curves show: the meta-loss, except where it is only a surrogate for its
    gradient (Reptile), whose logs show the mean query loss at the adapted parameters instead."""
    if getattr(learner, "surrogate_loss", False) and "query_loss" in out.metrics:
        return float(out.metrics["query_loss"].float().mean())
    return loss_value


def _summary(window: Mapping[str, list[float]]) -> dict[str, float]:
    return {f"train_{k}": float(np.mean(v)) for k, v in window.items() if v}


def _check_finite(value: float, step: int, config: TrainConfig) -> None:
    if not math.isfinite(value):
        raise RuntimeError(
            f"the meta-loss became {value} at step {step + 1}; lower outer_lr ({config.outer_lr}) "
            f"or inner_lr ({config.inner_lr})"
        )


class Trainer:
    """The course's one outer loop: Adam on the learner's meta-loss, one meta-batch per step.

    :meth:`step` is one outer step (this process's share of the tasks under ``torch.distributed``, the
    task-weighted all-reduce of the meta-gradient, the learning rate of ``lr_at(step)``); :func:`train` adds
    checkpoints, validation and resume around it, and the chapters' short runs (chapter 02's 2-D toy, chapter
    04's comparison, chapter 05's hyper-parameter widget) call :meth:`run`.
    """

    def __init__(self, learner: nn.Module, *, outer_lr: float, lr_at: Optional[Callable[[int], float]] = None) -> None:
        keep_freed_memory()  # long work starts: glibc reuses freed memory (mlcourse.hostmemory; MLCOURSE_MALLOC=default)
        self.learner = learner
        self.optimizer = torch.optim.Adam(learner.parameters(), lr=outer_lr)
        self.lr_at = lr_at
        self.steps = 0  # outer steps taken by this trainer (train() resumes it from a checkpoint)

    def step(self, batch: Any, check_loss: Optional[Callable[[float], None]] = None) -> tuple[Any, float]:
        """One outer step on ``batch``; returns the ``MetaOutput`` (whole-batch loss, every task's metrics)
        and the loss to log (:func:`logged_loss`)."""
        lr = self.lr_at(self.steps) if self.lr_at is not None else None
        out = distributed.distributed_meta_step(self.learner, self.optimizer, batch, lr=lr, check_loss=check_loss)
        self.steps += 1
        return out, logged_loss(self.learner, out, float(out.loss))

    def run(
        self,
        sample: Callable[[], Any],
        iterations: int,
        *,
        progress: bool = False,
        desc: str = "meta-train",
        callback: Optional[Callable[[int, float], Any]] = None,
    ) -> list[float]:
        """``iterations`` outer steps on meta-batches drawn by ``sample()``; returns the logged loss of each.
        ``callback(step, loss)`` runs after every step (a live plot, a log line); returning ``True`` stops early."""
        from tqdm.auto import tqdm  # noqa: PLC0415 - third party, only when a loop runs

        losses: list[float] = []
        bar = tqdm(range(iterations), desc=desc, disable=not progress, mininterval=1.0, leave=False)
        for i in bar:
            losses.append(self.step(sample())[1])
            if progress and i % 100 == 0:
                bar.set_postfix(loss=f"{sum(losses[-100:]) / len(losses[-100:]):.3f}")
            if callback is not None and callback(self.steps, losses[-1]) is True:
                break
        return losses


@dataclass
class _Run:
    """One call of :func:`train`: its configuration and experiment, where it writes, and the loop's state (what a
    checkpoint holds and a resumed run restores)."""

    config: TrainConfig
    exp: Experiment
    trainer: Trainer
    ckpt_path: Optional[Path]
    results_path: Optional[Path]
    checkpoint: Optional[dict[str, Any]]
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    window: dict[str, list[float]] = field(default_factory=lambda: {"loss": [], "accuracy": []})
    elapsed_before: float = 0.0
    session_start: float = field(default_factory=time.perf_counter)
    start_step: int = 0
    sampler_states: dict[str, Any] = field(default_factory=dict)  # validation and test samplers at their seeds

    @property
    def learner(self) -> nn.Module:
        return self.exp.learner

    def wall_time(self) -> float:
        """Seconds of training so far, sessions before a resume included."""
        return self.elapsed_before + time.perf_counter() - self.session_start

    def write_checkpoint(self) -> None:
        """Everything an exact resume needs, written atomically (rank 0 alone under torchrun)."""
        if self.ckpt_path is None or not distributed.is_main_process():
            return
        state = self.learner.state_dict()
        save_checkpoint(
            self.ckpt_path,
            {
                "algo": self.config.algo,
                "config": self.config.to_dict(),
                "step": self.step,
                "shapes": parameter_shapes(state),
                "learner": state,
                "optimizer": self.trainer.optimizer.state_dict(),
                "learner_config": _plain(getattr(self.learner, "config_dict", dict)()),
                "samplers": {"train": self.exp.samplers["train"].state_dict()},
                "rng": capture_rng_state(),
                "history": self.history,
                "window": self.window,
                **provenance(self.exp.device, wall_time_s=self.wall_time()),
            },
        )

    def evaluate_split(self, split: str, num_tasks: int, progress: bool = False) -> EvalResult:
        """The validation or test protocol: the same tasks every time (the sampler restarts at its seed)."""
        sampler = self.exp.samplers[split]
        sampler.load_state_dict(copy.deepcopy(self.sampler_states[split]))
        return evaluate(
            self.learner,
            sampler,
            num_tasks,
            inner_steps=self.config.test_inner_steps,
            batch_size=self.config.eval_batch_size or min(self.config.meta_batch_size, 25),
            progress=progress,
        )


def train(
    config: TrainConfig,
    progress: bool = True,
    resume: bool = True,
    callback: Optional[Callable[[int, Optional[dict[str, Any]]], Any]] = None,
    *,
    max_steps: Optional[int] = None,
    experiment: Optional[Experiment] = None,
) -> TrainResult:
    """Meta-train ``config`` (chapters 03-08, ``mlcourse train``); returns a :class:`TrainResult`.

    * With ``config.out_dir``: the directory is probed (writable, free space) before training; a
      checkpoint is written atomically every ``checkpoint_every`` steps and at the end; ``results.json``
      is written at the end. With ``resume=True`` an existing checkpoint there is continued exactly
      (same final parameters as an uninterrupted run).
    * ``callback(step, record)`` runs after every step (``record`` is the history entry logged at that
      step or ``None``); returning ``True`` stops training after a checkpoint. ``max_steps`` stops after
      that many steps of this call (a checkpoint is written). A stopped run has ``completed=False``.
    * ``experiment`` replaces :func:`build_experiment` (custom models or samplers).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"train needs a TrainConfig, got {type(config).__name__}")
    config.validate()
    if max_steps is not None and (not _is_int(max_steps) or max_steps < 0):
        raise ValueError(f"max_steps={max_steps!r} is out of range; allowed >= 0 or None")
    distributed.init_from_env(device=config.device)  # under torchrun: join the group (no-op in one process)
    run = _start_run(config, resume, experiment)
    _loop(run, progress, callback, max_steps)
    return _finish(run, progress)


def _start_run(config: TrainConfig, resume: bool, experiment: Optional[Experiment]) -> _Run:
    """The output directory probed, the experiment built, and the checkpoint there restored when resuming."""
    session_start = time.perf_counter()  # the wall time counts loading the data too
    out_dir = Path(config.out_dir).expanduser() if config.out_dir else None
    if out_dir is not None:
        prepare_output_dir(out_dir)
    ckpt_path = out_dir / CHECKPOINT_NAME if out_dir else None
    checkpoint = None
    if resume and ckpt_path is not None and ckpt_path.exists():
        checkpoint = load_checkpoint(ckpt_path)
        _check_resume_config(checkpoint["config"], config, ckpt_path)
    exp = experiment if experiment is not None else build_experiment(config)
    run = _Run(
        config=config,
        exp=exp,
        trainer=Trainer(exp.learner, outer_lr=config.outer_lr, lr_at=config.outer_lr_at),
        ckpt_path=ckpt_path,
        results_path=out_dir / RESULTS_NAME if out_dir else None,
        checkpoint=checkpoint,
        session_start=session_start,
        sampler_states={s: copy.deepcopy(exp.samplers[s].state_dict()) for s in ("val", "test") if _has(exp, s)},
    )
    if out_dir is not None:
        size = sum(t.numel() * t.element_size() for t in exp.learner.state_dict().values())
        prepare_output_dir(out_dir, needed_bytes=2 * 3 * size + (1 << 20))  # two copies of params + Adam moments
    if checkpoint is not None:
        _restore(run, checkpoint)
    run.start_step = run.trainer.steps = run.step  # the learning-rate schedule continues where it stopped
    return run


def _has(exp: Experiment, split: str) -> bool:
    """Whether the experiment samples tasks of ``split`` (a custom experiment may leave validation out)."""
    return exp.samplers.get(split) is not None


def _restore(run: _Run, checkpoint: dict[str, Any]) -> None:
    """Continue exactly where ``checkpoint`` stopped: weights, optimiser, training sampler, random state, logs."""
    check_compatible(checkpoint, run.ckpt_path, run.config.algo, run.learner.state_dict())
    try:
        run.learner.load_state_dict(checkpoint["learner"])
        run.trainer.optimizer.load_state_dict(checkpoint["optimizer"])
        run.exp.samplers["train"].load_state_dict(checkpoint["samplers"]["train"])
        restore_rng_state(checkpoint["rng"])
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"checkpoint {str(run.ckpt_path)!r} cannot be restored: {str(exc).splitlines()[0]}"
        ) from None
    run.step = int(checkpoint["step"])
    run.history = list(checkpoint.get("history", []))
    run.window = {k: list(v) for k, v in checkpoint.get("window", run.window).items()}
    run.elapsed_before = float(checkpoint.get("wall_time_s", 0.0))


class StepCallback:
    """One job :func:`train` does after an outer step: ``after_step(run, step)`` reads or extends ``step`` (what
    this step logged and whether training stops); ``close()`` runs once when the loop ends, however it ends."""

    def after_step(self, run: _Run, step: StepInfo) -> None:
        """What this job does after an outer step (the step counter already advanced)."""

    def close(self) -> None:
        """Release what the job holds (a progress bar)."""


@dataclass
class StepInfo:
    """What the callbacks of one outer step share: the history record logged at this step (``None`` when the step
    logs nothing) and whether training stops after it."""

    record: Optional[dict[str, Any]] = None
    stop: bool = False


class Logging(StepCallback):
    """Every ``log_every`` steps (and at the last): the training loss and accuracy averaged since the last record."""

    def after_step(self, run: _Run, step: StepInfo) -> None:
        last = run.step == run.config.iterations
        if run.step % run.config.log_every == 0 or last or _validation_due(run):
            step.record = {"step": run.step, **_summary(run.window), "wall_time_s": round(run.wall_time(), 3)}
            run.window = {k: [] for k in run.window}
            run.history.append(step.record)


class Validation(StepCallback):
    """Every ``eval_every`` steps (and at the last): the validation tasks, the same ones every time."""

    def after_step(self, run: _Run, step: StepInfo) -> None:
        if _validation_due(run) and step.record is not None:
            val = run.evaluate_split("val", run.config.val_tasks)
            step.record.update({f"val_{val.metric}": val.mean, "val_ci95": val.ci95, "val_loss": val.loss_mean})


class ProgressBar(StepCallback):
    """A tqdm bar over the iterations, its postfix the latest record's losses and accuracies (rank 0 only)."""

    def __init__(self, run: _Run, enabled: bool) -> None:
        from tqdm.auto import tqdm  # noqa: PLC0415 - third party, only when a loop runs

        config = run.config
        self.bar = tqdm(
            total=config.iterations,
            initial=min(run.step, config.iterations),
            disable=not enabled or not distributed.is_main_process(),
            desc=f"{config.algo} {config.data}",
            unit="step",
            dynamic_ncols=True,
        )

    def after_step(self, run: _Run, step: StepInfo) -> None:
        if step.record is not None:
            shown = {k: v for k, v in step.record.items() if k.startswith(("train_", "val_")) and k != "val_ci95"}
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()}, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


class StopWhen(StepCallback):
    """The caller's ``callback(step, record)`` (``True`` stops) and ``max_steps`` steps of this call."""

    def __init__(self, callback: Optional[Callable[..., Any]], max_steps: Optional[int]) -> None:
        self.callback, self.max_steps = callback, max_steps

    def after_step(self, run: _Run, step: StepInfo) -> None:
        asked = self.callback is not None and bool(self.callback(run.step, step.record))
        enough = self.max_steps is not None and run.step - run.start_step >= self.max_steps
        step.stop = step.stop or asked or enough


class Checkpoints(StepCallback):
    """Every ``checkpoint_every`` steps, at the last and when training stops: an atomic checkpoint."""

    def after_step(self, run: _Run, step: StepInfo) -> None:
        if run.step % run.config.checkpoint_every == 0 or run.step == run.config.iterations or step.stop:
            run.write_checkpoint()


def _validation_due(run: _Run) -> bool:
    config = run.config
    due = run.step % config.eval_every == 0 or run.step == config.iterations
    return _has(run.exp, "val") and config.val_tasks > 0 and due


def _loop(run: _Run, progress: bool, callback: Optional[Callable[..., Any]], max_steps: Optional[int]) -> None:
    """Outer steps until the last iteration, ``max_steps`` more, or a callback's ``True``; after each step the
    callbacks in order: logging, validation, the progress bar, the caller's stop rule, checkpoints."""
    callbacks = [Logging(), Validation(), ProgressBar(run, progress), StopWhen(callback, max_steps), Checkpoints()]
    try:
        while run.step < run.config.iterations:
            if max_steps is not None and run.step - run.start_step >= max_steps:
                break
            _one_step(run)
            step = StepInfo()
            for job in callbacks:
                job.after_step(run, step)
            if step.stop:
                break
    finally:
        for job in callbacks:
            job.close()


def _one_step(run: _Run) -> None:
    """One outer step on a fresh meta-batch; its loss and accuracy join the window the next record averages."""
    config, step = run.config, run.step
    batch = run.exp.samplers["train"].sample(config.meta_batch_size)  # the whole meta-batch, identical on every rank
    out, logged = run.trainer.step(batch, check_loss=lambda value: _check_finite(value, step, config))
    run.step += 1
    run.window["loss"].append(logged)
    if "query_accuracy" in out.metrics:
        run.window["accuracy"].append(float(out.metrics["query_accuracy"].detach().float().mean()))


def _finish(run: _Run, progress: bool) -> TrainResult:
    """After the loop: a finished run is tested and its results.json written (or an unchanged one reused)."""
    config = run.config
    completed = run.step >= config.iterations
    test: Optional[EvalResult] = None
    reused: Optional[dict[str, Any]] = None
    results_file: Optional[Path] = None
    if completed:
        if run.ckpt_path is not None and not run.ckpt_path.exists():
            run.write_checkpoint()  # iterations=0: still leave a loadable checkpoint
        # nothing trained now: a finished run is reused, its results.json (when, where, how long) kept
        if run.checkpoint is not None and run.start_step == run.step:
            reused = _reused_results(run.results_path, config, run.step)
        test = _saved_test(reused)
        if test is None and _has(run.exp, "test") and config.test_tasks > 0:
            test = run.evaluate_split("test", config.test_tasks, progress=progress)
        if run.results_path is not None and distributed.is_main_process():
            results_file = save_results(run.results_path, _results_payload(run, test, reused))
    return TrainResult(
        learner=run.learner,
        history=run.history,
        checkpoint_path=run.ckpt_path if run.ckpt_path and run.ckpt_path.exists() else None,
        test=test,
        config=config,
        step=run.step,
        completed=completed,
        results_path=results_file,
        wall_time_s=float(reused["wall_time_s"]) if reused and "wall_time_s" in reused else run.wall_time(),
        experiment=run.exp,
    )


def _results_payload(run: _Run, test: Optional[EvalResult], reused: Optional[dict[str, Any]]) -> dict[str, Any]:
    """A finished run's results.json: configuration, test, history and how it was made (kept from a reused file:
    when, where and how long the run took; tests recorded later stay with it)."""
    learner = run.learner
    made = {
        **provenance(run.exp.device, wall_time_s=run.wall_time()),
        "compiled": bool(getattr(learner, "use_compile", False)),
        "compile_seconds": round(float(getattr(learner, "compile_seconds", 0.0)), 3),
        "compile_notice": getattr(learner, "compile_notice", None),
        "batched": bool(getattr(learner, "batched_now", False)),
    }
    if reused:  # a run made earlier: its own provenance (None where its file did not record it)
        earlier = read_provenance(reused)
        made.update({k: earlier[k] for k in made if k in earlier})
        made["batched"] = bool(reused.get("batched", False))  # files made before the batched step: it was not used
    return {
        "config": run.config.to_dict(),
        "algo": run.config.algo,
        "data": run.config.data,
        "test": test.to_dict() if test is not None else None,
        "history": run.history,
        "iterations": run.step,
        **made,
        "checkpoint": CHECKPOINT_NAME,
        **{k: reused[k] for k in ("extra_tests", "test_by_protocol") if reused and reused.get(k)},
    }


def measure_step_time(config: TrainConfig, steps: int = 3, experiment: Optional[Experiment] = None) -> float:
    """Seconds per meta-training step of ``config`` on its device, measured (eagerly) on ``steps`` steps after
    one warm-up step; the parameters are restored afterwards. Chapters 01/03/05 call it before any full-mode
    training longer than a few minutes and print the expected time (``expected_training_time``)."""
    exp = experiment if experiment is not None else build_experiment(config.replace(compile=False))
    learner, sampler = exp.learner, exp.samplers["train"]
    saved_params = copy.deepcopy(learner.state_dict())
    saved_sampler = copy.deepcopy(sampler.state_dict())
    trainer = Trainer(learner, outer_lr=config.outer_lr)
    elapsed = 0.0
    try:
        for i in range(steps + 1):
            start = time.perf_counter()
            trainer.step(sampler.sample(config.meta_batch_size))
            if exp.device.type == "cuda":
                torch.cuda.synchronize(exp.device)
            if i > 0:
                elapsed += time.perf_counter() - start
    finally:
        learner.load_state_dict(saved_params)
        sampler.load_state_dict(saved_sampler)
    return elapsed / max(steps, 1)


def expected_training_time(config: TrainConfig, seconds_per_step: float) -> str:
    """One line: the expected wall time of ``config`` from a measured step time (eager; compiled runs are
    typically 1.2-1.8x faster on a CPU, plus 30-60 s of compilation)."""
    total = seconds_per_step * config.iterations
    text = f"{total / 60:.0f} min" if total < 5400 else f"{total / 3600:.1f} h"
    return (
        f"{config.algo}: {seconds_per_step:.3f} s per step measured on this device -> about {text} for "
        f"{config.iterations:,} iterations (eager; torch.compile typically saves a third on a CPU)"
    )


def training_notice(config: TrainConfig, experiment: Optional[Experiment] = None) -> Optional[str]:
    """The expected-time line of a run about to train (one step measured), or ``None`` when ``config.out_dir``
    already holds the finished run (it is reloaded, nothing trains). Chapters 01, 03, 05 print it before any
    full-mode training, so nothing silently starts an hour of work."""
    if config.out_dir is not None and (Path(config.out_dir) / RESULTS_NAME).exists():
        return None
    return expected_training_time(config, measure_step_time(config, experiment=experiment))


def _plain(value: Any) -> Any:
    """Keep only values ``torch.load(weights_only=True)`` reads back (numbers, strings, containers, tensors)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    return repr(value)


def _reused_results(results_path: Optional[Path], config: TrainConfig, step: int) -> Optional[dict[str, Any]]:
    """The results.json of a finished run re-run with the same settings (reused, not rewritten as new)."""
    if results_path is None or not results_path.exists():
        return None
    try:
        saved = load_results(results_path)
    except ResultsError:
        return None
    later = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name in LATER_FIELDS}
    saved_config, current = {**later, **(saved.get("config") or {})}, dataclasses.asdict(config)
    same = all(saved_config.get(k) == v for k, v in current.items() if k not in TEST_NEUTRAL_CHANGES)
    return saved if same and saved.get("iterations") == step else None


def _saved_test(saved: Optional[dict[str, Any]]) -> Optional[EvalResult]:
    """The test result recorded in a reused results.json, if it has one."""
    test = (saved or {}).get("test")
    if not test:
        return None
    return EvalResult(
        mean=test["mean"],
        ci95=test["ci95"],
        per_task=list(test.get("per_task", [])),
        metric=test["metric"],
        std=test.get("std", 0.0),
        loss_mean=test.get("loss_mean", float("nan")),
        inner_steps=test.get("inner_steps"),
        protocol=test.get("protocol"),
    )


def load_trained(
    path: str | os.PathLike,
    device: torch.device | str | None = None,
    compile: bool = False,
    norm_mode: Optional[str] = None,
) -> tuple[Experiment, dict[str, Any]]:
    """Rebuild the experiment of a checkpoint (file or run directory) with its trained weights.

    Used by ``mlcourse eval`` and by notebooks that reload a run. Returns ``(experiment, checkpoint)``.
    The learner runs eagerly unless ``compile=True`` (an evaluation of a few hundred tasks takes less time
    than compiling it). It predicts in ``norm_mode``, by default non-transductively (a run trained with the query
    batch's statistics then normalises each query with its support set's: one image can be classified alone);
    ``exp.config.norm_mode`` still says how the run was trained.
    """
    path = resolve_checkpoint_path(path)
    checkpoint = load_checkpoint(path)
    try:
        config = TrainConfig.from_dict(checkpoint["config"])
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} holds an invalid configuration: {exc}") from None
    if device is not None:
        config = config.replace(device=str(device))
    config = config.replace(compile=bool(compile))
    exp = build_experiment(config)
    # a chapter's committed weights name the chapter's model in "algo"; the algorithm is in their configuration
    named_by_config = {**checkpoint, "algo": config.algo}
    check_compatible(named_by_config, path, config.algo, exp.learner.state_dict())
    exp.learner.load_state_dict(checkpoint["learner"])
    if hasattr(exp.learner, "use_norm_mode"):
        exp.learner.use_norm_mode(norm_mode or non_transductive(config.norm_mode))
    return exp, checkpoint
