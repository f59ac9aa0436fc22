"""Meta-training loop, configuration, evaluation protocol, checkpoints and results (chapters 03-08, the CLI).

* :class:`TrainConfig` — every hyper-parameter of a run, validated (errors name the value and the
  allowed range); :meth:`TrainConfig.defaults` gives per-data-set defaults, :meth:`TrainConfig.fast`
  the fast-mode version (fewer iterations and test tasks, the same code path).
* :func:`build_experiment` — model, learner and the train/val/test task samplers of a config.
* :func:`train` — the outer loop with a tqdm progress bar, periodic validation, learning curves kept as
  data, atomic checkpoints, exact resume, and ``results.json`` beside the checkpoint.
* :func:`evaluate` — the standard few-shot protocol: mean query accuracy (MSE for regression) over
  ``num_tasks`` (600) test tasks with a 95% confidence interval ``1.96 * std / sqrt(n)``.

Per-data-set defaults (full scale; ``fast()`` shrinks iterations, evaluation and meta-batch only):

=========  =====  ======  =====  ===========  ===========  ==========  =====  ======  ==========
data       N-way  K-shot  query  inner steps  test steps   inner lr    meta   hidden  iterations
=========  =====  ======  =====  ===========  ===========  ==========  =====  ======  ==========
omniglot   5      1       15     1            3            0.4         32     64      60000
cifar100   5      1       15     5            10           0.01        4      32      60000
sinusoid   -      10      10     1            10           0.01        25     40      70000
=========  =====  ======  =====  ===========  ===========  ==========  =====  ======  ==========

Omniglot follows the MAML paper (Finn et al. 2017, 5-way 1-shot: inner lr 0.4, one inner step in
training and three at test time, meta-batch 32, Adam 1e-3, 28x28 with rotations as new classes);
CIFAR-100 follows MAML's MiniImagenet settings (5 steps / 10 at test, lr 0.01, meta-batch 4, 32 filters)
used by CIFAR-FS; sinusoid is MAML's regression setting (10 shots, lr 0.01, meta-batch 25, 40 hidden).
Query sets use 15 images per class (the usual evaluation protocol).

Validation uses the val split and test uses the test split, whose classes are never seen in training.
Their samplers are reset to fixed seeds before every evaluation, so validation never touches the
training random stream (exact resume) and every run is tested on the same tasks (``TEST_SEED``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from . import data, distributed, models
from .algorithms import ALGORITHMS, NORM_MODES, check_protocol, make_learner, non_transductive
from .checkpoint import (
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
from .config import fast_mode, resolve_device, seed_everything
from .hostmemory import keep_freed_memory
from .provenance import provenance
from .provenance import read as read_provenance
from .stats import confidence_interval

__all__ = [
    "ALGORITHMS",
    "DATASETS",
    "SPLIT_SCHEMES",
    "TrainConfig",
    "ConfigError",
    "Experiment",
    "SinusoidSampler",
    "build_experiment",
    "test_sampler",
    "EvalResult",
    "evaluate",
    "TrainResult",
    "train",
    "load_trained",
    "measure_step_time",
    "expected_training_time",
    "training_notice",
    "load_results",
    "CheckpointError",
    "ResultsError",
]

CLASSIFICATION_ONLY = ("protonet", "matchingnet", "protomaml")  # their heads come from the support set
DATASETS = ("omniglot", "cifar100", "sinusoid")
SPLIT_SCHEMES = {"omniglot": ("vinyals", "lake"), "cifar100": ("article", "cifar-fs", "fc100"), "sinusoid": ("none",)}
# Omniglot "lake" (background/evaluation) has no validation split: validation then uses the evaluation
# alphabets, so do not select models on its curves.
_OMNIGLOT_SPLITS = {"vinyals": ("train", "val", "test"), "lake": ("background", "evaluation", "evaluation")}
LR_SCHEDULES = ("constant", "cosine")
COMPILE_AUTO_ITERATIONS = 1_000
# Compiled by default on a CPU only where the committed bench measured it faster than eager there
# (benchmarks/results/bench-cpu-malloc-2026-12-03.json); on a GPU every vectorised image run compiles.
COMPILE_PAYS_ON_CPU = ("reptile", "fomaml")
VAL_SEED_OFFSET = 1_000_003
TEST_SEED = 2_026

_DATA_DEFAULTS: dict[str, dict[str, Any]] = {
    "omniglot": dict(
        split_scheme="vinyals",
        n_way=5,
        k_shot=1,
        n_query=15,
        inner_steps=1,
        test_inner_steps=3,
        inner_lr=0.4,
        meta_batch_size=32,
        iterations=60_000,
        image_size=28,
        hidden=64,
        rotations=True,
    ),
    "cifar100": dict(
        split_scheme="cifar-fs",
        n_way=5,
        k_shot=1,
        n_query=15,
        inner_steps=5,
        test_inner_steps=10,
        inner_lr=0.01,
        meta_batch_size=4,
        iterations=60_000,
        image_size=32,
        hidden=32,
        rotations=False,
    ),
    "sinusoid": dict(
        split_scheme="none",
        n_way=1,
        k_shot=10,
        n_query=10,
        inner_steps=1,
        test_inner_steps=10,
        inner_lr=0.01,
        meta_batch_size=25,
        iterations=70_000,
        image_size=1,
        hidden=40,
        rotations=False,
    ),
}
_FAST = dict(iterations=200, eval_every=50, val_tasks=20, test_tasks=100, checkpoint_every=50, log_every=10)
_FAST_META_BATCH = {"omniglot": 8, "cifar100": 4, "sinusoid": 10}

# Fields that may change when a run is resumed (they do not change the training trajectory; the inner steps at
# validation and test change what is measured, not what is trained).
RESUMABLE_CHANGES = (
    "iterations",
    "test_inner_steps",
    "eval_every",
    "val_tasks",
    "test_tasks",
    "device",
    "out_dir",
    "checkpoint_every",
    "log_every",
    "eval_batch_size",
    "compile",
)
# Fields that do not change a finished run's test result: a run finished elsewhere (another directory, a
# GPU machine) keeps its test result when it is loaded again (chapters 01 and 03 in full mode).
TEST_NEUTRAL_CHANGES = ("device", "out_dir", "eval_every", "val_tasks", "checkpoint_every", "log_every", "compile")
# Fields added after results and chapter weights were committed: ``to_dict`` leaves them out at their default, so the
# settings of a run made before them (a missing key: the default) still compare equal to a fresh configuration.
LATER_FIELDS = ("norm_mode", "backprop_steps", "imaml_lambda", "cg_steps", "cg_damping")


def option(
    default: Any,
    help: str,
    *,
    flag: Optional[str] = None,
    const: Any = None,
    pair: bool = False,
    low: Optional[float] = None,
    high: Optional[float] = None,
    positive: bool = False,
    choices: Optional[tuple[str, ...]] = None,
) -> Any:
    """A :class:`TrainConfig` field and everything the command line and :meth:`TrainConfig.validate` need about it:
    ``help``; ``flag`` (default ``--field-name``); ``const`` for a flag that sets that value (``--no-rotations``);
    ``pair`` for ``--x/--no-x``; ``low``/``high`` for integers, ``positive`` for numbers, ``choices`` for strings.
    ``mlcourse.commands`` generates ``mlcourse train``'s options and :func:`mlcourse.commands.train_command` from it."""
    meta = {
        "help": help,
        "flag": flag,
        "const": const,
        "pair": pair,
        "low": low,
        "high": high,
        "positive": positive,
        "choices": choices,
    }
    return field(default=default, metadata=meta)


class ConfigError(ValueError):
    """An invalid ``TrainConfig`` field; the message names the value and the allowed range."""


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass
class TrainConfig:
    """All settings of one meta-training run (chapters 03-08 and ``mlcourse train``).

    Fields left ``None`` take the data set's defaults (see the module docstring); ``validate()`` runs on
    construction. ``n_way`` is unused for sinusoid regression (fixed to 1).
    """

    algo: str = option("maml", "the learner: " + ", ".join(ALGORITHMS), choices=ALGORITHMS)
    data: str = option("omniglot", "the data set: omniglot, cifar100 or sinusoid", choices=DATASETS)
    split_scheme: Optional[str] = option(
        None, "omniglot: vinyals|lake; cifar100: article|cifar-fs|fc100", flag="--split"
    )
    n_way: Optional[int] = option(None, "classes per task")
    k_shot: Optional[int] = option(None, "support examples per class", low=1)
    n_query: Optional[int] = option(None, "query examples per class", low=1)
    inner_steps: Optional[int] = option(None, "inner SGD steps in training (0 = no adaptation)", low=0)
    test_inner_steps: Optional[int] = option(None, "inner SGD steps at validation and test time", low=0)
    inner_lr: Optional[float] = option(None, "inner step size alpha", positive=True)
    outer_lr: float = option(1e-3, "outer (Adam) learning rate beta", positive=True)
    meta_batch_size: Optional[int] = option(None, "tasks per outer step", flag="--meta-batch", low=1)
    iterations: Optional[int] = option(None, "outer steps", low=0)
    eval_every: int = option(500, "validate every N steps", low=1)
    val_tasks: int = option(100, "validation tasks", low=0)
    test_tasks: int = option(600, "test tasks at the end (the protocol: 600)", low=0)
    eval_batch_size: Optional[int] = option(None, "tasks per evaluation batch", flag="--eval-batch", low=1)
    seed: int = option(0, "training seed", low=0, high=2**63 - 1)
    device: str = option("auto", "auto (default), cpu, cuda, cuda:N, mps")
    out_dir: Optional[str] = option(None, "run directory (default runs/ALGO-DATA-NwayKshot)", flag="--out")
    image_size: Optional[int] = option(None, "image side in pixels")
    hidden: Optional[int] = option(None, "Conv-4 filters per layer (sinusoid: MLP width)", low=1, high=4096)
    rotations: Optional[bool] = option(
        None, "omniglot: no rotated copies of the characters", flag="--no-rotations", const=False
    )
    first_order: bool = option(False, "first-order meta-gradient", flag="--first-order", const=True)
    stratified: bool = option(False, "the article's superclass-stratified sampling of training tasks", const=True)
    attention: bool = option(False, "Conv-4 with the attention block (the article's MAML + attention)", const=True)
    norm_mode: str = option(
        "transductive",
        "normalisation statistics: transductive (each batch's own, MAML's protocol), support (the support set's: "
        "a query's prediction does not depend on the other queries) or tasknorm (TaskNorm-I: the support set's "
        "moments blended with each image's own by a learned weight)",
        choices=NORM_MODES,
    )
    vectorise: bool = option(True, "the per-task reference loop instead of vmap", flag="--no-vectorise", const=False)
    checkpoint_every: int = option(500, "write a checkpoint every N steps", low=1)
    log_every: int = option(10, "log the training loss every N steps", low=1)
    train_n_way: Optional[int] = option(
        None,
        "classes per training task for protonet/matchingnet (default: --n-way; Snell et al. 2017 train wider)",
        low=2,
    )
    train_k_shot: Optional[int] = option(
        None,
        "support examples per class in training tasks (default: --k-shot; Nichol et al. 2018 meta-train "
        "1-shot Reptile on 10-shot tasks)",
        low=1,
    )
    inner_batch: Optional[int] = option(
        None,
        "reptile: support examples per inner step, cycling through the support set (default: all of it)",
        low=1,
    )
    backprop_steps: Optional[int] = option(
        None, "truncated: inner steps back-propagated, the last ones (default 1; 0 = first order)", low=0
    )
    imaml_lambda: Optional[float] = option(
        None, "imaml: strength lam of the proximal term lam/2 ||phi - theta||^2 (default 2.0)", positive=True
    )
    cg_steps: Optional[int] = option(
        None, "imaml: conjugate-gradient iterations for the implicit meta-gradient (default 5)", low=1
    )
    cg_damping: Optional[float] = option(
        None, "imaml: damping delta of the solved system (1 + delta) I + H/lam (default 0: the exact formula)"
    )
    lr_schedule: str = option(
        "constant", "constant, or cosine: the outer learning rate decays to 0", choices=LR_SCHEDULES
    )
    compile: Optional[bool] = option(
        None,
        "torch.compile the learner (default: on for vectorised image runs of >= 1,000 iterations, on a CPU only for "
        "reptile and fomaml, measured faster compiled there; with --no-vectorise, off unless given: each task's "
        "function compiled)",
        pair=True,
    )

    def __post_init__(self) -> None:
        if isinstance(self.out_dir, os.PathLike):
            self.out_dir = os.fspath(self.out_dir)
        if isinstance(self.data, str) and self.data in _DATA_DEFAULTS:
            for name, value in _DATA_DEFAULTS[self.data].items():
                if getattr(self, name) is None:
                    setattr(self, name, value)
        if self.data == "sinusoid" and self.n_way is None:
            self.n_way = 1
        self.validate()

    # ---------------------------------------------------------------------------------------------
    @classmethod
    def defaults(
        cls, data: str = "omniglot", algo: str = "maml", fast: Optional[bool] = None, **overrides: Any
    ) -> TrainConfig:
        """Per-data-set defaults; ``fast=None`` follows ``MLCOURSE_FAST``. ``overrides`` win over both."""
        config = cls(algo=algo, data=data)
        if fast_mode() if fast is None else fast:
            config = config.fast()
        return config.replace(**overrides) if overrides else config

    def fast(self) -> TrainConfig:
        """A copy sized for fast mode (CI, 2 CPU cores): fewer iterations, evaluation tasks and checkpoints."""
        changes = {k: min(getattr(self, k), v) for k, v in _FAST.items()}
        changes["meta_batch_size"] = min(self.meta_batch_size, _FAST_META_BATCH[self.data])
        return self.replace(**changes)

    def replace(self, **changes: Any) -> TrainConfig:
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown TrainConfig field(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Every field, except a ``LATER_FIELDS`` one at its default (files written before it existed lack it)."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in LATER_FIELDS or v != defaults[k]}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    @property
    def is_classification(self) -> bool:
        return self.data != "sinusoid"

    @property
    def training_n_way(self) -> int:
        """Classes per training task (``train_n_way`` or ``n_way``)."""
        return self.n_way if self.train_n_way is None else self.train_n_way

    @property
    def training_k_shot(self) -> int:
        """Support examples per class in training tasks (``train_k_shot`` or ``k_shot``)."""
        return self.k_shot if self.train_k_shot is None else self.train_k_shot

    def compile_enabled(self, device_type: str = "cuda") -> bool:
        """Whether the learner is compiled on a ``device_type`` device: ``compile`` if set, else on for vectorised
        image runs of >= 1,000 iterations (the 30-120 s of compilation are paid once), on a CPU only for the
        algorithms measured faster compiled there (``COMPILE_PAYS_ON_CPU``); fast mode and the tiny sinusoid network
        stay eager. The per-task loop (``--no-vectorise``) stays the eager reference unless ``--compile`` is given
        (then each task's function is compiled). ``build_experiment`` passes the run's device type; without it, the
        GPU rule."""
        if not self.vectorise:
            return bool(self.compile)
        if self.compile is not None:
            return self.compile
        if not (self.is_classification and self.iterations >= COMPILE_AUTO_ITERATIONS):
            return False
        first_order_maml = self.algo == "maml" and self.first_order  # the same learner as fomaml
        return device_type != "cpu" or self.algo in COMPILE_PAYS_ON_CPU or first_order_maml

    def outer_lr_at(self, step: int) -> float:
        """The outer learning rate used for step ``step + 1`` (constant, or cosine decay to 0 over ``iterations``)."""
        if self.lr_schedule == "constant" or self.iterations == 0:
            return self.outer_lr
        return 0.5 * self.outer_lr * (1.0 + math.cos(math.pi * min(step, self.iterations) / self.iterations))

    # ---------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`ConfigError` for the first invalid field, naming the value and the allowed range: the
        ranges and choices declared on the fields (:func:`option`), then the rules that tie fields together."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.default is None and f.name not in ("split_scheme", "device"):
                continue  # optional, and the data set's defaults left it unset
            problem = _declared_range_problem(f, value)
            if problem is not None:
                self._fail(f.name, *problem)
        self._check_data_rules()
        self._check_algorithm_rules()

    def _fail(self, name: str, allowed: str, reason: str = "is not allowed") -> None:
        raise ConfigError(f"{name}={getattr(self, name)!r} {reason}; allowed {allowed}")

    def _check_data_rules(self) -> None:
        """The fields that depend on the data set, the device and the output folder."""
        fail = self._fail
        if self.split_scheme not in SPLIT_SCHEMES[self.data]:
            fail("split_scheme", f"{', '.join(SPLIT_SCHEMES[self.data])} for data={self.data!r}")
        if self.is_classification and (not _is_int(self.n_way) or self.n_way < 2):
            fail("n_way", "an integer >= 2", "is out of range" if _is_int(self.n_way) else "is not an integer")
        if not self.is_classification and self.n_way != 1:
            fail("n_way", "1 (unset) for sinusoid regression", "is not used by regression")
        if not isinstance(self.device, str) or not re.fullmatch(
            r"auto|cpu|mps|cuda(:\d+)?", self.device.strip().lower()
        ):
            fail("device", "auto, cpu, cuda, cuda:N, mps")
        if self.out_dir is not None and (not isinstance(self.out_dir, str) or not self.out_dir.strip()):
            fail("out_dir", "a directory path or None")
        if self.data == "omniglot" and (not _is_int(self.image_size) or not 16 <= self.image_size <= 512):
            fail("image_size", "16..512", "is out of range" if _is_int(self.image_size) else "is not an integer")
        if self.data == "cifar100" and self.image_size != 32:
            fail("image_size", "32 for cifar100 (its images are 32x32)")
        if self.rotations and self.data != "omniglot":
            fail("rotations", "False for data other than omniglot")
        if self.stratified and not self.is_classification:
            fail("stratified", "False for sinusoid regression")
        if self.norm_mode == "tasknorm" and not self.is_classification:
            fail("norm_mode", "transductive or support for sinusoid regression (its MLP has no normalisation)")
        if self.attention and not self.is_classification:
            fail("attention", "False for sinusoid regression (the attention block belongs to Conv-4)")
        if self.train_k_shot is not None and not self.is_classification:
            fail("train_k_shot", "None for sinusoid regression (use --k-shot)")

    def _check_algorithm_rules(self) -> None:
        """The fields that only some algorithms take."""
        if not self.is_classification and self.algo in CLASSIFICATION_ONLY:
            self._fail(
                "algo",
                f"{', '.join(a for a in ALGORITHMS if a not in CLASSIFICATION_ONLY)} for sinusoid regression",
                "needs classification data",
            )
        if self.inner_batch is not None and self.algo != "reptile":
            self._fail("inner_batch", f"None for {self.algo} (inner mini-batches are Reptile's)")
        if self.backprop_steps is not None and self.algo != "truncated":
            self._fail("backprop_steps", f"None for {self.algo} (truncated MAML's setting)")
        for name in ("imaml_lambda", "cg_steps", "cg_damping"):
            if getattr(self, name) is not None and self.algo != "imaml":
                self._fail(name, f"None for {self.algo} (iMAML's setting)")
        damping = self.cg_damping
        if damping is not None and (isinstance(damping, bool) or not math.isfinite(damping) or damping < 0):
            self._fail("cg_damping", "a finite number >= 0 (0 = the exact implicit gradient)")
        if self.train_n_way is not None and self.train_n_way != self.n_way and self.algo not in CLASSIFICATION_ONLY:
            self._fail(
                "train_n_way",
                f"None or n_way={self.n_way} for {self.algo} (its head has n_way outputs); other values "
                f"for {', '.join(CLASSIFICATION_ONLY)}",
            )


def _declared_range_problem(f: dataclasses.Field, value: Any) -> Optional[tuple[str, str]]:
    """``(allowed, reason)`` when ``value`` breaks the choices or range declared on field ``f`` (:func:`option`)."""
    meta = f.metadata
    if meta.get("choices"):
        if value in meta["choices"]:
            return None
        kind = "algorithm" if f.name == "algo" else "data set" if f.name == "data" else "value"
        return ", ".join(meta["choices"]), f"is not a known {kind}"
    if meta.get("const") is not None or meta.get("pair"):
        if isinstance(value, bool):
            return None
        return "True or False" + (", None (automatic)" if f.default is None else ""), "is not a boolean"
    if meta.get("positive"):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
            return "a finite number > 0", "is not a number"
        return None if math.isfinite(value) and value > 0 else ("a finite number > 0", "is out of range")
    if meta.get("low") is not None:
        low, high = int(meta["low"]), None if meta["high"] is None else int(meta["high"])
        allowed = f"{low}..{high}" if high is not None else f">= {low}"
        if not _is_int(value):
            return f"an integer {allowed}", "is not an integer"
        if value < low or (high is not None and value > high):
            return allowed, "is out of range"
    return None


# --------------------------------------------------------------------------------------------------
# experiment


class SinusoidSampler:
    """``SinusoidTasks`` with its own seeded generator and ``state_dict`` (same interface as ``EpisodeSampler``)."""

    def __init__(
        self, tasks: Any, k_shot: int, n_query: int, *, device: torch.device | str | None = None, seed: int = 0
    ) -> None:
        self.tasks, self.k_shot, self.n_query, self.seed = tasks, k_shot, n_query, seed
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)

    def sample(self, num_tasks: int):
        return self.tasks.sample(num_tasks, self.k_shot, self.n_query, generator=self.generator, device=self.device)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "seed": self.seed}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"].cpu())
        self.seed = state.get("seed", self.seed)


@dataclass
class Experiment:
    """What :func:`build_experiment` returns: ``samplers`` has ``"train"``, ``"val"`` and ``"test"``."""

    config: TrainConfig
    model: nn.Module
    learner: nn.Module
    samplers: dict[str, Any]
    device: torch.device


def _data_api() -> Any:
    """The data loaders ``build_experiment`` and ``mlcourse data`` call, looked up in :mod:`mlcourse.data` when
    called: one seam, which a test replaces to train on synthetic images."""
    from types import SimpleNamespace

    names = ("SinusoidTasks", "EpisodeSampler", "load_omniglot", "load_cifar100", "import_omniglot")
    names += ("download_omniglot", "import_cifar100", "download_cifar100")
    return SimpleNamespace(**{name: getattr(data, name) for name in names})


def build_experiment(
    config: TrainConfig,
    device: torch.device | str | None = None,
    *,
    datasets: Optional[Mapping[str, Any]] = None,
) -> Experiment:
    """Data samplers (train/val/test splits), model and learner for ``config`` (chapters 03-08, CLI).

    ``datasets``: image data sets already loaded (``{"train", "val", "test"}``; chapter 05 loads them once for a
    whole grid) instead of loading them here; a split left out gets no sampler. The model is initialised from
    ``config.seed`` (``seed_everything`` runs right before it is built).
    """
    config.validate()
    device = resolve_device(device if device is not None else config.device)
    if config.data == "sinusoid":
        tasks = _data_api().SinusoidTasks()
        samplers: dict[str, Any] = {
            s: SinusoidSampler(tasks, config.k_shot, config.n_query, device=device, seed=seed)
            for s, seed in _split_seeds(config).items()
        }
        seed_everything(config.seed)
        model: nn.Module = models.SinusoidMLP(hidden=config.hidden, layers=2)
        num_classes = None
    else:
        if datasets is None:
            datasets = load_datasets(config)
        elif "val" not in datasets and config.val_tasks > 0:
            raise ValueError(f"val_tasks={config.val_tasks} but no 'val' split was loaded; load it or set val_tasks=0")
        samplers = episode_samplers(config, datasets, device)
        seed_everything(config.seed)
        model = models.Conv4(
            in_channels=int(datasets["train"].images.shape[2]),
            n_out=config.n_way,
            hidden=config.hidden,
            image_size=config.image_size,
            norm="tasknorm" if config.norm_mode == "tasknorm" else "batch",
            attention=config.attention,
        )
        num_classes = int(datasets["train"].num_classes)
    model = model.to(device)
    learner = build_learner(config, model, device, num_classes)
    return Experiment(config=config, model=model, learner=learner, samplers=samplers, device=device)


def _split_seeds(config: TrainConfig) -> dict[str, int]:
    """Each split's sampler seed: training from the run's seed, validation offset from it, test fixed."""
    return {"train": config.seed, "val": config.seed + VAL_SEED_OFFSET, "test": TEST_SEED}


def load_datasets(config: TrainConfig) -> dict[str, Any]:
    """The image data sets of ``config``'s splits (Omniglot's split scheme may read one data set for two splits)."""
    api = _data_api()
    splits = list(_split_seeds(config))
    if config.data == "cifar100":
        return {s: api.load_cifar100(s, split_scheme=config.split_scheme) for s in splits}
    loaded: dict[str, Any] = {}
    names = _OMNIGLOT_SPLITS[config.split_scheme]
    for name in names:
        if name not in loaded:
            loaded[name] = api.load_omniglot(name, image_size=config.image_size, rotations=config.rotations)
    return {split: loaded[name] for split, name in zip(splits, names)}


def episode_samplers(config: TrainConfig, datasets: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """One seeded episode sampler per loaded split; training tasks take the training shape (``train_n_way``,
    ``train_k_shot``) and, when ``config.stratified``, superclass stratification. Validation and test tasks stay
    uniform: stratifying them would change the evaluation protocol."""
    samplers = {}
    for split, seed in _split_seeds(config).items():
        if split not in datasets:
            continue
        training = split == "train"
        samplers[split] = _data_api().EpisodeSampler(
            datasets[split].to(device),
            config.training_n_way if training else config.n_way,
            config.training_k_shot if training else config.k_shot,
            config.n_query,
            stratified=config.stratified and training,
            device=device,
            seed=seed,
        )
    return samplers


def build_learner(
    config: TrainConfig, model: nn.Module, device: torch.device, num_classes: Optional[int] = None
) -> nn.Module:
    """``config``'s learner around ``model`` (``num_classes``: the pretrained baseline's head over the training
    classes)."""
    extra: dict[str, Any] = {}
    if config.algo == "pretrain" and config.is_classification:
        extra["num_classes"] = num_classes
    if config.inner_batch is not None:
        extra["inner_batch"] = config.inner_batch
    for name in ("backprop_steps", "imaml_lambda", "cg_steps", "cg_damping"):
        if getattr(config, name) is not None:
            extra[name] = getattr(config, name)
    return make_learner(
        config.algo,
        model,
        inner_lr=config.inner_lr,
        inner_steps=config.inner_steps,
        first_order=config.first_order,
        vectorise=config.vectorise,
        compile=config.compile_enabled(device.type),
        norm_mode=config.norm_mode,
        **extra,
    ).to(device)


def test_sampler(
    exp: Experiment,
    *,
    n_way: Optional[int] = None,
    k_shot: Optional[int] = None,
    n_query: Optional[int] = None,
    seed: int = TEST_SEED,
) -> Any:
    """A sampler of the experiment's test split with another task shape or seed (``mlcourse eval --n-way``,
    the shipped runs of chapters 01/03/05: a ProtoNet trained for 5-way tasks tested on 20-way ones).

    Only learners without an ``n_way``-sized head can change ``n_way`` (protonet, matchingnet, and pretrain,
    which fits a fresh head); the error names the value and what is allowed.
    """
    config = exp.config
    n_way = config.n_way if n_way is None else n_way
    k_shot = config.k_shot if k_shot is None else k_shot
    n_query = config.n_query if n_query is None else n_query
    if not config.is_classification:
        if n_way != 1:
            raise ConfigError(f"n_way={n_way!r} is not used by regression; allowed 1")
        return SinusoidSampler(exp.samplers["test"].tasks, k_shot, n_query, device=exp.device, seed=seed)
    if n_way != config.n_way and config.algo not in (*CLASSIFICATION_ONLY, "pretrain"):
        raise ConfigError(
            f"n_way={n_way!r} differs from the run's n_way={config.n_way} but {config.algo}'s head has "
            f"{config.n_way} outputs; allowed {config.n_way} (other values for protonet, matchingnet, pretrain)"
        )
    base = exp.samplers["test"]
    return type(base)(base.dataset, n_way, k_shot, n_query, device=exp.device, seed=seed)


# --------------------------------------------------------------------------------------------------
# evaluation


@dataclass
class EvalResult:
    """``mean`` +- ``ci95`` of ``metric`` ("accuracy" in [0, 1] or "mse") over ``per_task`` values."""

    mean: float
    ci95: float
    per_task: list[float]
    metric: str = "accuracy"
    std: float = 0.0
    loss_mean: float = float("nan")
    inner_steps: Optional[int] = None
    protocol: Optional[str] = None  # None: the learner's own normalisation mode (see ``evaluate``)

    @property
    def num_tasks(self) -> int:
        return len(self.per_task)

    @property
    def accuracies(self) -> list[float]:
        if self.metric != "accuracy":
            raise AttributeError("accuracies exist for classification only; use per_task")
        return self.per_task

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "mean": self.mean,
            "ci95": self.ci95,
            "std": self.std,
            "num_tasks": self.num_tasks,
            "loss_mean": self.loss_mean,
            "inner_steps": self.inner_steps,
            **({} if self.protocol is None else {"protocol": self.protocol}),
            "per_task": list(self.per_task),
        }

    def __str__(self) -> str:
        if self.metric == "accuracy":  # with its protocol: how the queries were normalised
            protocol = f", {self.protocol} protocol" if self.protocol else ""
            return f"accuracy {100 * self.mean:.2f}% +- {100 * self.ci95:.2f}% ({self.num_tasks} tasks{protocol})"
        return f"{self.metric} {self.mean:.4f} +- {self.ci95:.4f} ({self.num_tasks} tasks)"


def evaluate(
    learner: nn.Module,
    sampler: Any,
    num_tasks: int = 600,
    inner_steps: Optional[int] = None,
    batch_size: Optional[int] = None,
    progress: bool = False,
    protocol: Optional[str] = None,
) -> EvalResult:
    """The standard few-shot test protocol (chapters 03-08, ``mlcourse eval``).

    Draws ``num_tasks`` tasks from ``sampler`` (use the test split: classes never seen in training) in
    batches of ``batch_size`` (default 25), adapts with ``learner.evaluate(batch, inner_steps, protocol)`` and
    returns the mean query accuracy (MSE for regression) with ``ci95 = 1.96 * std / sqrt(n)``. ``protocol``:
    ``transductive`` (queries normalised as one batch), ``support`` (with the support set's statistics),
    ``single`` (each query alone), or ``None``: the learner's own ``norm_mode`` (the result names it).
    """
    check_protocol(protocol)
    if not _is_int(num_tasks) or num_tasks < 1:
        raise ValueError(f"num_tasks={num_tasks!r} is out of range; allowed >= 1 (the protocol uses 600)")
    if inner_steps is not None and (not _is_int(inner_steps) or inner_steps < 0):
        raise ValueError(f"inner_steps={inner_steps!r} is out of range; allowed >= 0 or None")
    batch_size = 25 if batch_size is None else batch_size
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is out of range; allowed >= 1")
    from tqdm.auto import tqdm

    by_protocol = {} if protocol is None else {"protocol": protocol}  # a learner's own mode needs no argument
    scores: list[torch.Tensor] = []
    losses: list[torch.Tensor] = []
    metric = "accuracy"
    done = 0
    with tqdm(total=num_tasks, disable=not progress, desc="evaluate", unit="task", leave=False) as bar:
        while done < num_tasks:
            size = min(batch_size, num_tasks - done)
            batch = sampler.sample(size)
            metrics = learner.evaluate(batch, inner_steps=inner_steps, **by_protocol)
            if "query_accuracy" in metrics and batch.is_classification:
                scores.append(metrics["query_accuracy"].detach().float().reshape(-1).cpu())
            else:
                metric = "mse"
                scores.append(metrics["query_loss"].detach().float().reshape(-1).cpu())
            losses.append(metrics["query_loss"].detach().float().reshape(-1).cpu())
            done += size
            bar.update(size)
    per_task = torch.cat(scores).double().tolist()
    mean, ci95, std = confidence_interval(per_task)
    return EvalResult(
        mean=mean,
        ci95=ci95,
        per_task=per_task,
        metric=metric,
        std=std,
        loss_mean=float(torch.cat(losses).double().mean()),
        inner_steps=inner_steps,
        protocol=protocol or getattr(learner, "norm_mode", None),
    )


# --------------------------------------------------------------------------------------------------
# training


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


def _loop(run: _Run, progress: bool, callback: Optional[Callable[..., Any]], max_steps: Optional[int]) -> None:
    """Outer steps until the last iteration, ``max_steps`` more, or a callback's ``True``; checkpoints on the way."""
    from tqdm.auto import tqdm

    config = run.config
    bar = tqdm(
        total=config.iterations,
        initial=min(run.step, config.iterations),
        disable=not progress or not distributed.is_main_process(),
        desc=f"{config.algo} {config.data}",
        unit="step",
        dynamic_ncols=True,
    )
    try:
        while run.step < config.iterations:
            if max_steps is not None and run.step - run.start_step >= max_steps:
                break
            record = _one_step(run)
            if record is not None:
                bar.set_postfix(
                    {k: f"{v:.3g}" for k, v in record.items() if k.startswith(("train_", "val_")) and k != "val_ci95"},
                    refresh=False,
                )
            stopped = callback is not None and bool(callback(run.step, record))
            stopped = stopped or (max_steps is not None and run.step - run.start_step >= max_steps)
            if run.step % config.checkpoint_every == 0 or run.step == config.iterations or stopped:
                run.write_checkpoint()
            bar.update(1)
            if stopped:
                break
    finally:
        bar.close()


def _one_step(run: _Run) -> Optional[dict[str, Any]]:
    """One outer step; the history record logged at this step (with validation when due), or ``None``."""
    config, step = run.config, run.step
    batch = run.exp.samplers["train"].sample(config.meta_batch_size)  # the whole meta-batch, identical on every rank
    out, logged = run.trainer.step(batch, check_loss=lambda value: _check_finite(value, step, config))
    run.step += 1
    run.window["loss"].append(logged)
    if "query_accuracy" in out.metrics:
        run.window["accuracy"].append(float(out.metrics["query_accuracy"].detach().float().mean()))
    last = run.step == config.iterations
    validate = _has(run.exp, "val") and config.val_tasks > 0 and (run.step % config.eval_every == 0 or last)
    if not (run.step % config.log_every == 0 or last or validate):
        return None
    record = {"step": run.step, **_summary(run.window), "wall_time_s": round(run.wall_time(), 3)}
    run.window = {k: [] for k in run.window}
    if validate:
        val = run.evaluate_split("val", config.val_tasks)
        record.update({f"val_{val.metric}": val.mean, "val_ci95": val.ci95, "val_loss": val.loss_mean})
    run.history.append(record)
    return record


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
    }
    if reused:  # a run made earlier: its own provenance (None where its file did not record it)
        earlier = read_provenance(reused)
        made.update({k: earlier[k] for k in made if k in earlier})
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
