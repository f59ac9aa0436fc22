"""Chapter 05: the seed article's CIFAR-100 experiment, run the way it should have been run.

The article (section 5) meta-trains on 80 CIFAR-100 classes, tests on the other 20, samples tasks
"stratified", uses a Conv-4 network, MAML + attention and Meta-SGD learning rates, and claims that this
beats fine-tuning. This module runs that comparison through :func:`mlcourse.train.train`:
:data:`VARIANTS` (fine-tuning baseline, ProtoNet, MAML, MAML + attention, MAML + Meta-SGD), :func:`grid_config`
and :func:`build_variant` (one experiment per variant: stratified *training* tasks, uniform validation and test
tasks, the same test tasks for every variant, ``TEST_SEED``), and :func:`run_grid`, each variant evaluated as mean
accuracy +- 95% CI over ``test_tasks`` tasks (600 in full mode; fewer in fast mode, and the table says so).
``mlcourse cifar-grid`` runs the grid at full scale, MAML + attention included (``docs/FULL_SCALE.md``).

The chapter's other parts: the data (``data``), the table beside the published numbers (``results``), the
hyperparameter widget (``widgets``) and the article's own code (``article_code``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import torch
import tyro
from torch import nn

from mlcourse.checkpoint import load_results, save_results
from mlcourse.cliparse import Flag, arg
from mlcourse.config import device_name, fast_mode, resolve_device, torch_threads
from mlcourse.course.ch05.data import DataChoice, choose_dataset, load_splits
from mlcourse.course.ch05.results import ResultRow, data_label, project_table
from mlcourse.course.committed import train_committed
from mlcourse.shipped import protocol_label
from mlcourse.train import (
    TrainConfig,
    build_experiment,
    train,
    training_notice,
)


@dataclass(frozen=True)
class Variant:
    """One row of the comparison: an algorithm (``make_learner`` name), the Conv-4's attention gate, and
    settings that differ from the data set's defaults."""

    label: str
    algo: str
    attention: bool = False
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.label.lower()).strip("-")


VARIANTS: dict[str, Variant] = {
    # pretrain on all training classes, then fit a new linear head on each test task's support set
    # (frozen features, 50 SGD steps of 0.5 from zero; Chen et al. 2019's "Baseline")
    "fine-tuning": Variant("fine-tuning", "pretrain", overrides=(("inner_lr", 0.5), ("test_inner_steps", 50))),
    "ProtoNet": Variant("ProtoNet", "protonet"),
    "MAML": Variant("MAML", "maml"),
    "MAML + attention": Variant("MAML + attention", "maml", attention=True),
    "MAML + Meta-SGD": Variant("MAML + Meta-SGD", "metasgd"),
}

#: not in the default grid: the article's two additions together
EXTRA_VARIANTS: dict[str, Variant] = {
    "MAML + attention + Meta-SGD": Variant("MAML + attention + Meta-SGD", "metasgd", attention=True),
}

ALL_VARIANTS = {**VARIANTS, **EXTRA_VARIANTS}

#: fast mode (CI, 2 CPU cores): the same pipeline, tiny sizes; full mode: a real run (600 test tasks)
FAST_SIZES = dict(iterations=8, meta_batch_size=4, n_query=5, test_tasks=25, val_tasks=0, hidden=16, eval_batch_size=25)

FULL_SIZES = dict(
    iterations=1000, meta_batch_size=4, n_query=15, test_tasks=600, val_tasks=50, eval_every=500, hidden=32
)


def grid_config(
    choice: DataChoice,
    variant: Variant | str,
    *,
    n_way: int = 5,
    k_shot: int = 1,
    fast: Optional[bool] = None,
    **overrides: Any,
):
    """The ``TrainConfig`` of one grid cell: the data set's defaults (``TrainConfig.defaults``), the
    variant's overrides, the grid sizes of fast or full mode, then ``overrides``. ``stratified=True``
    records that *training* tasks are superclass-stratified (test tasks stay uniform)."""

    variant = ALL_VARIANTS[variant] if isinstance(variant, str) else variant
    fast = fast_mode() if fast is None else fast
    sizes = dict(FAST_SIZES if fast else FULL_SIZES)
    settings: dict[str, Any] = {
        "split_scheme": choice.split_scheme,
        "n_way": n_way,
        "k_shot": k_shot,
        "stratified": True,
        "attention": variant.attention,
        "log_every": 5 if fast else 20,
        "checkpoint_every": 10**9,
        **sizes,
        **dict(variant.overrides),
        **overrides,
    }
    if settings.get("val_tasks", 0) == 0:
        settings.setdefault("eval_every", 10**9)
    config = TrainConfig.defaults(choice.data, variant.algo, fast=False, **settings)
    return config


def build_variant(config: Any, datasets: Mapping[str, Any], *, device: torch.device | str | None = None):
    """An :class:`mlcourse.train.Experiment` on preloaded ``datasets``: ``build_experiment`` with the grid's data
    (training tasks stratified when ``config.stratified``; the attention gate follows ``config.attention``)."""
    return build_experiment(config, device, datasets=datasets)


@dataclass
class GridResult:
    """What :func:`run_grid` returns: the table rows, the trained learners and their histories."""

    choice: DataChoice
    rows: list[ResultRow]
    learners: dict[str, nn.Module]
    experiments: dict[str, Any]
    histories: dict[str, list[dict[str, Any]]]
    fast: bool

    def per_task(self, method: str) -> list[float]:
        return list(self.rows[[r.method for r in self.rows].index(method)].extra.get("per_task", []))

    def table(self, **kwargs: Any) -> str:
        return project_table(self.rows, **kwargs)

    def accuracies(self) -> dict[str, tuple[float, float]]:
        return {r.method: (r.mean, r.ci95) for r in self.rows}


def per_task_std(grid: GridResult, method: str) -> float:
    """Standard deviation of ``method``'s per-task test accuracies in ``grid`` (population std, as the CI)."""
    row = grid.rows[[r.method for r in grid.rows].index(method)]
    return float(row.extra.get("std", 0.0))


def _train_variant(
    name: str, config: TrainConfig, exp: Any, shipped_name: Optional[str], *, fast: bool, progress: bool
) -> Any:
    """Train one variant, or load and test its committed weights where ``shipped_name`` is given (a full-scale grid
    is hours of work on a laptop: the notice says so before training starts, train_committed's too)."""
    notice = None if shipped_name is not None or fast else training_notice(config, exp)
    if notice:
        print(f"{name}: {notice}")
    if shipped_name is not None:
        return train_committed(config, shipped_name, experiment=exp, progress=progress)
    return train(config, progress=progress, experiment=exp)


def _grid_row(
    choice: DataChoice,
    name: str,
    config: TrainConfig,
    result: Any,
    *,
    fast: bool,
    device: torch.device,
    train_split: str,
) -> ResultRow:
    """The grid's row for one variant's result; the variant and its sampling are added to its results file too."""
    variant = ALL_VARIANTS[name]
    provenance = getattr(result, "provenance", None)
    from_file = provenance is not None and provenance.source == "committed"
    test = result.test
    extra = {
        "variant": name,
        "attention": variant.attention,
        "algo": variant.algo,
        "train_split": train_split,
        "train_sampling": "superclass-stratified",
        "test_sampling": "uniform",
        "fast_mode": fast,
        "hidden": config.hidden,
        "test_inner_steps": config.test_inner_steps,
    }
    if result.results_path is not None:
        saved = load_results(result.results_path)
        saved.update(extra)
        save_results(result.results_path, saved)
    return ResultRow(
        method=name,
        data=data_label(choice.data, choice.split_scheme),
        n_way=config.n_way,
        k_shot=config.k_shot,
        mean=test.mean,
        ci95=test.ci95,
        num_tasks=test.num_tasks,
        device=provenance.device if from_file else device_name(device),
        wall_time_s=result.wall_time_s,
        iterations=result.step,
        source=(
            f"committed weights ({provenance.date[:10]}), tested now"
            if from_file
            else "this notebook" + (" (fast mode)" if fast else "")
        ),
        extra={**extra, "per_task": list(test.per_task), "std": test.std},
        protocol=protocol_label(test.protocol or config.norm_mode),
    )


def run_grid(
    choice: DataChoice,
    datasets: Optional[Mapping[str, Any]] = None,
    *,
    variants: Sequence[str] = tuple(VARIANTS),
    n_way: int = 5,
    k_shot: int = 1,
    fast: Optional[bool] = None,
    progress: bool = True,
    device: torch.device | str | None = "auto",
    num_threads: Optional[int] = 1,
    out_dir: str | Path | None = None,
    train_split: str = "train",
    committed: bool = False,
    **overrides: Any,
) -> GridResult:
    """Train and test every variant on ``choice`` with :func:`mlcourse.train.train` (tqdm bars).

    All variants share the data splits, the seed (same initial backbone where shapes agree) and the same
    test tasks. ``out_dir``: write each run's checkpoint and ``results.json`` to ``out_dir/<variant>/``
    (resumable; the results file also records ``variant``, ``attention`` and the sampling). ``overrides``
    go to every :func:`grid_config`. ``committed=True`` (chapter 05's full mode): a variant whose committed weights
    (``results/chapters/ch05/``) were trained with the same configuration is loaded and tested now instead of
    trained (:mod:`mlcourse.course.committed`).
    """

    fast = fast_mode() if fast is None else fast
    dev = resolve_device(device)
    unknown = [v for v in variants if v not in ALL_VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; allowed: {', '.join(ALL_VARIANTS)}")
    if datasets is None:
        datasets = load_splits(choice, train_split=train_split, device=dev)
    rows, learners, experiments, histories = [], {}, {}, {}
    with torch_threads(num_threads if dev.type == "cpu" else None):
        for name in variants:
            variant = ALL_VARIANTS[name]
            run_dir = None if out_dir is None else str(Path(out_dir) / variant.slug)
            config = grid_config(
                choice, variant, n_way=n_way, k_shot=k_shot, fast=fast, device=str(dev), out_dir=run_dir, **overrides
            )
            exp = build_variant(config, datasets, device=dev)
            shipped_name = f"ch05/{choice.data}-{variant.slug}-{n_way}w{k_shot}s" if committed and not fast else None
            result = _train_variant(name, config, exp, shipped_name, fast=fast, progress=progress)
            rows.append(_grid_row(choice, name, config, result, fast=fast, device=dev, train_split=train_split))
            learners[name], experiments[name], histories[name] = result.learner, exp, result.history
    return GridResult(
        choice=choice, rows=rows, learners=learners, experiments=experiments, histories=histories, fast=fast
    )


VariantName = Literal[tuple(ALL_VARIANTS)]  # type: ignore[valid-type]


@dataclass(frozen=True)
class GridOptions:
    """Chapter 05's comparison grid at full scale: one results.json per variant in a sub-folder of --out."""

    out: Annotated[str, arg("one sub-folder per variant is written here", metavar="DIR")]
    data: Annotated[Literal["cifar100", "omniglot"], arg("the data set")] = "cifar100"
    split: Annotated[Literal["article", "cifar-fs", "fc100"], arg("the class split")] = "article"
    variants: Annotated[tuple[VariantName, ...], arg("the variants")] = tuple(VARIANTS)
    n_way: Annotated[int, arg("classes per task")] = 5
    k_shot: Annotated[int, arg("support examples per class")] = 1
    iterations: Annotated[Optional[int], tyro.conf.DisallowNone, arg("meta-iterations", default="60,000 (fast: 8)")] = (
        None
    )
    test_tasks: Annotated[Optional[int], tyro.conf.DisallowNone, arg("test tasks", default="600 (fast: 25)")] = None
    meta_batch: Annotated[
        Optional[int], tyro.conf.DisallowNone, arg("tasks per meta-batch", default="4 on CIFAR, 32 on Omniglot")
    ] = None
    hidden: Annotated[
        Optional[int], tyro.conf.DisallowNone, arg("Conv-4 filters", default="32 on CIFAR, 64 on Omniglot")
    ] = None
    trainval: Annotated[Flag, arg("train on train+val (the article's 80 classes)", default="")] = False
    device: Annotated[str, arg("auto, cpu, cuda, cuda:N")] = "auto"
    fast: Annotated[Flag, arg("fast mode sizes", default="")] = False


def grid_command(args: GridOptions) -> int:
    """``mlcourse cifar-grid --data cifar100 --split cifar-fs --k-shot 1 --out runs/ch05/...``"""
    choice = (
        choose_dataset(args.split, prefer="omniglot")
        if args.data == "omniglot"
        else DataChoice("cifar100", args.split, "asked for on the command line")
    )
    cifar = args.data == "cifar100"
    overrides: dict[str, Any] = {}
    if not args.fast:  # full scale: MAML's MiniImagenet/CIFAR-FS settings (CIFAR) or the MAML paper's (Omniglot)
        overrides.update(
            iterations=60_000,
            meta_batch_size=4 if cifar else 32,
            hidden=32 if cifar else 64,
            n_query=15,
            test_tasks=600,
            val_tasks=100,
            eval_every=1000,
            checkpoint_every=1000,
            log_every=100,
        )
    for key, value in (
        ("iterations", args.iterations),
        ("meta_batch_size", args.meta_batch),
        ("hidden", args.hidden),
        ("test_tasks", args.test_tasks),
    ):
        if value is not None:
            overrides[key] = value
    grid = run_grid(
        choice,
        variants=args.variants,
        n_way=args.n_way,
        k_shot=args.k_shot,
        fast=args.fast,
        device=args.device,
        num_threads=None,
        out_dir=args.out,
        train_split="trainval" if args.trainval else "train",
        **overrides,
    )
    print(grid.table())
    return 0
