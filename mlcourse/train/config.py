"""The configuration of a training run: :class:`TrainConfig`, every hyper-parameter with its help, flag and range
(:func:`option`), per-data-set defaults and the rules that tie fields together (errors name the value and the
allowed range)."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..algorithms import ALGORITHMS, NORM_MODES
from ..config import fast_mode

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
# Batched by default (mlcourse.algorithms.batched) on a CPU where the committed bench measured the batched step
# faster than the eager vmap, the per-task loop and the compiled loop
# (benchmarks/results/bench-cpu-batched-2026-12-07.json); not yet measured on a GPU.
BATCHED_PAYS_ON_CPU = ("maml", "fomaml", "metasgd", "protonet", "matchingnet")
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
    "batched",
)
# Fields that do not change a finished run's test result: a run finished elsewhere (another directory, a
# GPU machine) keeps its test result when it is loaded again (chapters 01 and 03 in full mode).
TEST_NEUTRAL_CHANGES = (
    "device",
    "out_dir",
    "eval_every",
    "val_tasks",
    "checkpoint_every",
    "log_every",
    "compile",
    "batched",
)
# Fields added after results and chapter weights were committed: ``to_dict`` leaves them out at their default, so the
# settings of a run made before them (a missing key: the default) still compare equal to a fresh configuration.
LATER_FIELDS = ("norm_mode", "backprop_steps", "imaml_lambda", "cg_steps", "cg_damping", "batched")


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
        "reptile, and fomaml with --no-batched, measured faster compiled there; with --no-vectorise, off unless "
        "given: each task's function compiled)",
        pair=True,
    )
    batched: Optional[bool] = option(
        None,
        "the training step of every task in one call of the Conv-4, per-task weights as grouped convolutions (maml, "
        "fomaml, metasgd, protonet, matchingnet; transductive; the same meta-gradient; default: on a CPU for image "
        "runs of >= 1,000 iterations without --compile, measured faster there)",
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
        algorithms measured faster compiled there (``COMPILE_PAYS_ON_CPU``) unless the training step runs batched
        (:meth:`batched_enabled`: off); fast mode and the tiny sinusoid network stay eager. The per-task loop
        (``--no-vectorise``) stays the eager reference unless ``--compile`` is given
        (then each task's function is compiled). ``build_experiment`` passes the run's device type; without it, the
        GPU rule."""
        if not self.vectorise:
            return bool(self.compile)
        if self.compile is not None:
            return self.compile
        if self.batched_enabled(device_type):  # the training step does not go through the compiled map
            return False
        if not (self.is_classification and self.iterations >= COMPILE_AUTO_ITERATIONS):
            return False
        first_order_maml = self.algo == "maml" and self.first_order  # the same learner as fomaml
        return device_type != "cpu" or self.algo in COMPILE_PAYS_ON_CPU or first_order_maml

    def batched_enabled(self, device_type: str = "cuda") -> bool:
        """Whether the training step runs batched (:mod:`mlcourse.algorithms.batched`): ``batched`` if set; else off
        when ``--compile`` is given, and on a CPU for vectorised image runs of >= 1,000 iterations of an algorithm in
        ``BATCHED_PAYS_ON_CPU`` with the plain Conv-4 (no attention block) and the transductive protocol, which the
        batched step needs."""
        if self.batched is not None:
            return self.batched
        if self.compile:  # an explicit --compile asks for the compiled training step
            return False
        plain = self.vectorise and not self.attention and self.norm_mode == "transductive"
        full_scale = self.is_classification and self.iterations >= COMPILE_AUTO_ITERATIONS
        return device_type == "cpu" and plain and full_scale and self.algo in BATCHED_PAYS_ON_CPU

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
