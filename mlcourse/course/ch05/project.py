"""Chapter 05: the seed article's CIFAR-100 experiment, run the way it should have been run.

The article (section 5) meta-trains on 80 CIFAR-100 classes, tests on the other 20, samples tasks
"stratified", uses a Conv-4 network, MAML + attention and Meta-SGD learning rates, and claims that this
beats fine-tuning. This module runs that comparison through :func:`mlcourse.train.train`:

* :func:`choose_dataset` — CIFAR-100 when its files are in the data directory, otherwise Omniglot (the
  offline fallback, e.g. CI), returning which one it used and why;
* :func:`load_splits`, :func:`build_variant` — the data splits (loaded once for the whole grid) and one
  experiment per variant: stratified *training* tasks, uniform validation/test tasks (the standard
  protocol; see :func:`stratification_report`), the same test tasks for every variant (``TEST_SEED``);
* :data:`VARIANTS`, :func:`grid_config`, :func:`run_grid` — fine-tuning baseline, ProtoNet, MAML,
  MAML + attention, MAML + Meta-SGD, each evaluated as mean accuracy +- 95% CI over ``test_tasks`` tasks
  (600 in full mode; fewer in fast mode, and the table says so);
* :func:`load_project_results`, :func:`project_table`, :data:`PUBLISHED` — full-scale ``results.json``
  files (``mlcourse train`` or ``mlcourse cifar-grid``) found under ``results/`` or ``runs/``, with
  their device and wall time, next to the published numbers (with their sources);
* :func:`short_run`, :func:`hyperparameter_figure`,
  :func:`hyperparameter_widget` — the α / β / K widget (a short real meta-training, then adaptation on
  test tasks);
* ``mlcourse cifar-grid ...`` — the full-scale grid, including MAML + attention (which
  ``mlcourse train`` has no flag for); see ``docs/FULL_SCALE.md``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import torch
import tyro
from torch import Tensor, nn

from mlcourse.algorithms import make_learner
from mlcourse.checkpoint import RESULTS_NAME, ResultsError, load_results, save_results
from mlcourse.cliparse import Flag, arg
from mlcourse.commands import train_command
from mlcourse.config import REPO_ROOT, device_name, fast_mode, resolve_device, runs_dir, seed_everything, torch_threads
from mlcourse.course import plots
from mlcourse.course.committed import train_committed
from mlcourse.course.display import live_figure
from mlcourse.data import EpisodeSampler, load_omniglot
from mlcourse.data.cifar100 import CIFAR100_FILES, CIFAR100_FOLDER, CIFAR100_SCHEMES, cifar100_dir, load_cifar100
from mlcourse.data.download import DataError
from mlcourse.models import Conv4
from mlcourse.provenance import read as read_provenance
from mlcourse.shipped import AS_PUBLISHED, TRANSDUCTIVE, protocol_label
from mlcourse.stats import confidence_interval
from mlcourse.tables import format_table
from mlcourse.train import (
    TEST_SEED,
    TrainConfig,
    Trainer,
    build_experiment,
    train,
    training_notice,
)

DOWNLOAD_COMMAND = ".venv/bin/mlcourse data download cifar100"
RESULT_DIRS = (REPO_ROOT / "results", runs_dir())
#: runs with at most this many iterations count as fast-mode runs (``TrainConfig.fast()`` uses 200)
FAST_RUN_ITERATIONS = 200

# --------------------------------------------------------------------------------------------------
# published numbers (5-way, Conv-4 backbones; accuracy in %, +- 95% CI)

_LEE = (
    "Lee, Maji, Ravichandran & Soatto, 'Meta-Learning with Differentiable Convex Optimization' "
    "(MetaOptNet), CVPR 2019, Table 2"
)
_BERTINETTO = (
    "Bertinetto, Henriques, Torr & Vedaldi, 'Meta-learning with differentiable closed-form solvers', ICLR 2019"
)
_ORESHKIN = "Oreshkin, Rodriguez & Lacoste, 'TADAM', NeurIPS 2018"

PUBLISHED: tuple[dict[str, Any], ...] = (
    dict(
        method="MAML",
        data="CIFAR-FS",
        k_shot=1,
        mean=58.9,
        ci95=1.9,
        backbone="Conv-4, 32 filters",
        source=f"{_BERTINETTO} (MAML run with the authors' code); tabulated in {_LEE}",
        protocol=TRANSDUCTIVE,  # MAML's code normalises the query batch with its own statistics
    ),
    dict(
        method="MAML",
        data="CIFAR-FS",
        k_shot=5,
        mean=71.5,
        ci95=1.0,
        backbone="Conv-4, 32 filters",
        source=f"{_BERTINETTO} (MAML run with the authors' code); tabulated in {_LEE}",
        protocol=TRANSDUCTIVE,  # MAML's code normalises the query batch with its own statistics
    ),
    dict(
        method="ProtoNet",
        data="CIFAR-FS",
        k_shot=1,
        mean=55.5,
        ci95=0.7,
        backbone="Conv-4, 64 filters",
        source=f"{_BERTINETTO}; tabulated in {_LEE}",
    ),
    dict(
        method="ProtoNet",
        data="CIFAR-FS",
        k_shot=5,
        mean=72.0,
        ci95=0.6,
        backbone="Conv-4, 64 filters",
        source=f"{_BERTINETTO}; tabulated in {_LEE}",
    ),
    dict(
        method="ProtoNet",
        data="FC100",
        k_shot=1,
        mean=35.3,
        ci95=0.6,
        backbone="Conv-4, 64 filters (as listed by Lee et al.)",
        source=f"{_ORESHKIN}; tabulated in {_LEE}",
    ),
    dict(
        method="ProtoNet",
        data="FC100",
        k_shot=5,
        mean=48.6,
        ci95=0.6,
        backbone="Conv-4, 64 filters (as listed by Lee et al.)",
        source=f"{_ORESHKIN}; tabulated in {_LEE}",
    ),
)

# --------------------------------------------------------------------------------------------------
# which data set


@dataclass
class DataChoice:
    """What :func:`choose_dataset` decided: ``data`` ("cifar100"/"omniglot"), its split scheme, and why."""

    data: str
    split_scheme: str
    reason: str
    requested: str = "cifar100"
    root: Optional[str] = None

    @property
    def fallback(self) -> bool:
        return self.data != self.requested

    @property
    def label(self) -> str:
        if self.data == "omniglot":
            return "Omniglot (Vinyals split, 28x28, rotations as new classes)"
        return {"article": "CIFAR-100, the article's 80/20 class split", "cifar-fs": "CIFAR-FS", "fc100": "FC100"}.get(
            self.split_scheme, f"CIFAR-100 ({self.split_scheme})"
        )

    def describe(self) -> str:
        head = f"data set: {self.label}"
        return f"{head}\n  why: {self.reason}"


def cifar100_available(root: str | Path | None = None) -> tuple[bool, str]:
    """``(True, where)`` when CIFAR-100's python files are in the data directory and readable,
    ``(False, why not)`` otherwise. Never downloads."""

    folder = cifar100_dir(root) / CIFAR100_FOLDER
    missing = [f for f in CIFAR100_FILES if not (folder / f).is_file()]
    if missing:
        return False, (
            f"CIFAR-100 is not on this machine ({folder} lacks {', '.join(missing)}); this machine may be "
            f"offline (as in CI). Get it with one command: `{DOWNLOAD_COMMAND}`"
        )
    try:
        load_cifar100("test", split_scheme="article", root=root, download=False)
    except (DataError, OSError, ValueError) as exc:
        first = str(exc).split(". ")[0]
        return False, f"the CIFAR-100 copy in {folder} cannot be read ({first}); re-run `{DOWNLOAD_COMMAND}`"
    return True, f"CIFAR-100 found in {folder}"


def choose_dataset(
    split_scheme: str = "article", root: str | Path | None = None, *, prefer: str = "cifar100"
) -> DataChoice:
    """CIFAR-100 (``split_scheme``: article / cifar-fs / fc100) when present, else Omniglot, and why.

    ``prefer="omniglot"`` skips CIFAR-100. Omniglot is downloaded on first use by its loader (or imported
    with ``mlcourse data import omniglot PATH``).
    """

    if split_scheme not in CIFAR100_SCHEMES:
        raise ValueError(
            f"split_scheme={split_scheme!r} is not a CIFAR-100 split; allowed: {', '.join(CIFAR100_SCHEMES)}"
        )
    if prefer not in ("cifar100", "omniglot"):
        raise ValueError(f"prefer={prefer!r}; allowed: cifar100, omniglot")
    root_s = None if root is None else str(root)
    if prefer == "omniglot":
        return DataChoice("omniglot", "vinyals", "Omniglot was asked for (prefer='omniglot')", "omniglot", root_s)
    ok, why = cifar100_available(root)
    if ok:
        return DataChoice("cifar100", split_scheme, why, "cifar100", root_s)
    return DataChoice(
        "omniglot",
        "vinyals",
        f"{why}. Falling back to Omniglot: the same pipeline (samplers, "
        "Conv-4, algorithms, evaluation) on another image data set.",
        "cifar100",
        root_s,
    )


def load_splits(
    choice: DataChoice,
    *,
    train_split: str = "train",
    device: torch.device | str | None = None,
    image_size: int = 28,
    validation: Optional[bool] = None,
) -> dict[str, Any]:
    """``{"train", "val", "test"}`` ``ImageClassDataset``s of ``choice`` (loaded once, shared by the grid).

    ``train_split="trainval"`` trains on train + val (for the article's split: all 80 training classes,
    as the article did; validation then reuses training classes). Omniglot: Vinyals split with rotations.
    ``validation=False`` skips the val split (default: skipped in fast mode, which does not validate).
    """

    device = resolve_device(device or "cpu")
    if train_split not in ("train", "trainval"):
        raise ValueError(f"train_split={train_split!r}; allowed: train, trainval")
    validation = (not fast_mode()) if validation is None else validation
    out: dict[str, Any] = {}
    for split, name in (("train", train_split), ("val", "val"), ("test", "test")):
        if split == "val" and not validation:
            continue
        if choice.data == "omniglot":
            ds = load_omniglot(name, image_size=image_size, rotations=True, root=choice.root)
        else:
            ds = load_cifar100(name, split_scheme=choice.split_scheme, root=choice.root, download=False)
        out[split] = ds.to(device)
    return out


# --------------------------------------------------------------------------------------------------
# stratified sampling


def distinct_superclasses(classes: Tensor, superclass: Tensor) -> Tensor:
    """``[T]`` bool: does task ``t`` draw its ``n_way`` classes from ``n_way`` different superclasses?"""
    sup = superclass.to(classes.device)[classes]  # [T, N]
    ordered = sup.sort(dim=1).values
    return (ordered[:, 1:] != ordered[:, :-1]).all(dim=1)


def uniform_distinct_probability(superclass: Tensor, n_way: int) -> float:
    """Exact probability that ``n_way`` classes drawn uniformly without replacement come from distinct
    superclasses: ``e_N(sizes) / C(classes, N)`` (``e_N`` = elementary symmetric polynomial)."""
    sizes = torch.bincount(superclass.cpu()).to(torch.float64)
    sizes = sizes[sizes > 0]
    e = torch.zeros(n_way + 1, dtype=torch.float64)
    e[0] = 1.0
    for s in sizes:
        e[1:] = e[1:] + s * e[:-1].clone()
    return float(e[n_way] / math.comb(int(sizes.sum()), n_way))


def stratification_report(dataset: Any, n_way: int = 5, num_tasks: int = 500, seed: int = 0) -> dict[str, float]:
    """Fraction of tasks with ``n_way`` distinct superclasses: uniform vs stratified sampler, and the exact
    uniform probability."""

    out = {"exact_uniform": uniform_distinct_probability(dataset.superclass, n_way)}
    for name, strat in (("uniform", False), ("stratified", True)):
        sampler = EpisodeSampler(dataset, n_way, 1, 1, stratified=strat, seed=seed)
        out[name] = float(distinct_superclasses(sampler.sample_classes(num_tasks), dataset.superclass).double().mean())
    return out


# --------------------------------------------------------------------------------------------------
# the grid


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
class ResultRow:
    """One line of a results table (accuracy in [0, 1])."""

    method: str
    data: str
    n_way: int
    k_shot: int
    mean: float
    ci95: float
    num_tasks: int
    device: str = ""
    wall_time_s: Optional[float] = None
    iterations: Optional[int] = None
    source: str = "this notebook"
    extra: dict[str, Any] = field(default_factory=dict)
    protocol: str = "?"  # how the queries were normalised (shipped.PROTOCOL_LABELS), or how a paper says it did


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


def data_label(data: str, split_scheme: Optional[str]) -> str:
    if data == "omniglot":
        return "Omniglot"
    return {"article": "CIFAR-100 article 80/20", "cifar-fs": "CIFAR-FS", "fc100": "FC100"}.get(
        split_scheme or "", f"CIFAR-100 {split_scheme}"
    )


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


# --------------------------------------------------------------------------------------------------
# results files and tables

_ALGO_LABELS = {
    "pretrain": "fine-tuning",
    "protonet": "ProtoNet",
    "maml": "MAML",
    "metasgd": "MAML + Meta-SGD",
    "fomaml": "first-order MAML",
    "anil": "ANIL",
    "reptile": "Reptile",
    "matchingnet": "Matching Nets",
    "article": "article's rule",
}


def row_from_results(results: Mapping[str, Any], path: str | Path = "") -> Optional[ResultRow]:
    """A :class:`ResultRow` from one ``results.json`` dict (``mlcourse train`` or this module), or ``None``
    when it has no classification test result."""
    test = results.get("test")
    config = results.get("config") or {}
    if not isinstance(test, Mapping) or test.get("metric", "accuracy") != "accuracy" or "mean" not in test:
        return None
    algo = results.get("algo") or config.get("algo", "?")
    method = results.get("variant")
    if not method:
        method = _ALGO_LABELS.get(algo, algo)
        if results.get("attention") or config.get("attention"):
            method = method.replace("MAML", "MAML + attention", 1) if "MAML" in method else f"{method} + attention"
    data = results.get("data") or config.get("data", "?")
    return ResultRow(
        method=str(method),
        data=data_label(str(data), config.get("split_scheme")),
        n_way=int(config.get("n_way") or 0),
        k_shot=int(config.get("k_shot") or 0),
        mean=float(test["mean"]),
        ci95=float(test.get("ci95", float("nan"))),
        num_tasks=int(test.get("num_tasks") or len(test.get("per_task", [])) or 0),
        device=str(read_provenance(results)["device_name"] or "unknown device"),
        wall_time_s=None if results.get("wall_time_s") is None else float(results["wall_time_s"]),
        iterations=results.get("iterations"),
        source=str(path),
        extra={
            "date": results.get("date"),
            "fast_mode": results.get("fast_mode"),
            "stratified": config.get("stratified"),
        },
        protocol=protocol_label(test.get("protocol") or config.get("norm_mode", "transductive")),
    )


def load_project_results(
    directories: Sequence[str | Path] = RESULT_DIRS, *, data: Optional[str] = "cifar100", include_fast: bool = False
) -> tuple[list[ResultRow], list[str]]:
    """Every ``results.json`` under ``directories`` (recursively) with a classification test result on
    ``data`` (``None``: any). Returns ``(rows, problems)``: unreadable files are reported, not raised.
    Runs made in fast mode are skipped unless ``include_fast``."""

    rows: list[ResultRow] = []
    problems: list[str] = []
    for directory in directories:
        base = Path(directory)
        if not base.is_dir():
            continue
        for path in sorted(base.rglob(RESULTS_NAME)):
            try:
                results = load_results(path)
            except ResultsError as exc:
                problems.append(str(exc))
                continue
            config = results.get("config") or {}
            if data is not None and (results.get("data") or config.get("data")) != data:
                continue
            if not include_fast and (
                results.get("fast_mode") or int(results.get("iterations") or 0) <= FAST_RUN_ITERATIONS
            ):
                continue
            row = row_from_results(results, _relative(path))
            if row is not None:
                rows.append(row)
    rows.sort(key=lambda r: (r.data, r.k_shot, r.method))
    return rows, problems


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def published_protocol_command(algo: str = "maml", split: str = "cifar-fs", k_shot: int = 1) -> str:
    """The ``mlcourse train`` line of one published-protocol CIFAR-100 run (uniform test *and* training tasks, as
    behind the published numbers, so no ``--stratified``), generated from its ``TrainConfig`` with the data set's
    defaults: chapter 05 prints it as the example when no results exist yet (``docs/FULL_SCALE.md`` lists them all)."""
    if split not in CIFAR100_SCHEMES:
        raise ValueError(f"split={split!r} is not allowed; allowed: {', '.join(CIFAR100_SCHEMES)}")
    config = TrainConfig.defaults(
        "cifar100", algo, fast=False, split_scheme=split, k_shot=k_shot, out_dir=f"runs/ch05/{split}-5w{k_shot}s/{algo}"
    )
    return ".venv/bin/" + train_command(config)


def published_rows(data: Optional[str] = None) -> list[ResultRow]:
    """:data:`PUBLISHED` as table rows (``data``: "CIFAR-FS" or "FC100" keeps one data set)."""
    return [
        ResultRow(
            method=p["method"],
            data=p["data"],
            n_way=5,
            k_shot=p["k_shot"],
            mean=p["mean"] / 100,
            ci95=p["ci95"] / 100,
            num_tasks=0,
            device="",
            source=f"published, source: {p['source']}",
            extra={"backbone": p["backbone"]},
            protocol=p.get("protocol", AS_PUBLISHED),
        )
        for p in PUBLISHED
        if data is None or p["data"] == data
    ]


def _fmt_time(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def project_table(rows: Sequence[ResultRow], *, markdown: bool = False, show_source: bool = True) -> str:
    """A table of ``rows``: method, data, N-way K-shot, accuracy % +- 95% CI, its protocol, tasks, iterations,
    device, wall time (and source). Plain text for ``print`` or Markdown (``markdown=True``)."""

    headers = [
        "method",
        "data",
        "task",
        "accuracy (95% CI)",
        "protocol",
        "test tasks",
        "iterations",
        "device",
        "wall time",
    ]
    if show_source:
        headers.append("source")
    body = []
    for r in rows:
        line = [
            r.method,
            r.data,
            f"{r.n_way}-way {r.k_shot}-shot",
            f"{100 * r.mean:.1f} ± {100 * r.ci95:.1f}%",
            r.protocol,
            str(r.num_tasks) if r.num_tasks else "-",
            "-" if r.iterations is None else str(r.iterations),
            r.device or "-",
            _fmt_time(r.wall_time_s),
        ]
        if show_source:
            line.append(r.source)
        body.append(line)
    if not markdown:
        return format_table(body, headers)
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(c.replace("|", "/") for c in line) + " |" for line in body]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# adaptation curves and the α / β / K widget


@dataclass
class ShortRun:
    """A short meta-training run of the widget and its evaluation."""

    settings: dict[str, Any]
    losses: list[float]
    curve_mean: list[float]
    curve_ci95: list[float]
    wall_time_s: float


def _fresh_learner(
    variant: Variant, images: Any, *, n_way: int, hidden: int, inner_lr: float, inner_steps: int, seed: int
) -> nn.Module:
    """``variant``'s learner around a Conv-4 for ``images``' channels and size, initialised from ``seed``."""
    seed_everything(seed)
    model = Conv4(
        in_channels=int(images.images.shape[2]),
        n_out=n_way,
        hidden=hidden,
        image_size=int(images.images.shape[-1]),
        attention=variant.attention,
    ).to(images.images.device)
    return make_learner(variant.algo, model, inner_lr=inner_lr, inner_steps=inner_steps)


def short_run(
    datasets: Mapping[str, Any],
    *,
    variant: str = "MAML",
    inner_lr: float = 0.4,
    outer_lr: float = 1e-3,
    k_shot: int = 1,
    n_way: int = 5,
    iterations: int = 10,
    meta_batch_size: int = 4,
    n_query: int = 5,
    inner_steps: int = 1,
    test_steps: int = 5,
    test_tasks: int = 30,
    hidden: int = 16,
    seed: int = 0,
    num_threads: Optional[int] = 1,
    progress: bool = False,
) -> ShortRun:
    """Meta-train ``variant`` (a MAML-family row) from scratch for ``iterations`` steps with α, β, K, then
    adapt it on ``test_tasks`` test tasks (the same tasks for every setting) for 0..``test_steps`` steps."""

    v = ALL_VARIANTS[variant]
    if v.algo not in ("maml", "metasgd", "fomaml"):
        raise ValueError(f"the widget runs MAML-family variants; {variant!r} is {v.algo}")
    start = time.perf_counter()
    train_set, test_set = datasets["train"], datasets["test"]
    with torch_threads(num_threads if train_set.images.device.type == "cpu" else None):
        sampler = EpisodeSampler(train_set, n_way, k_shot, n_query, stratified=True, seed=seed)
        learner = _fresh_learner(
            v, train_set, n_way=n_way, hidden=hidden, inner_lr=inner_lr, inner_steps=inner_steps, seed=seed
        )
        losses = Trainer(learner, outer_lr=outer_lr).run(
            lambda: sampler.sample(meta_batch_size),
            iterations,
            progress=progress,
            desc=f"{variant} α={inner_lr:.3g} β={outer_lr:.1e} K={k_shot}",
        )
        test_sampler = EpisodeSampler(test_set, n_way, k_shot, n_query, seed=TEST_SEED)
        # query accuracy after 0..test_steps steps of the learner's own inner rule (Meta-SGD: its learned rates)
        curve = learner.adaptation_curve(test_sampler.sample(test_tasks), test_steps)["query_accuracy"]
    stats = [confidence_interval(curve[:, s].tolist()) for s in range(test_steps + 1)]
    settings = dict(
        variant=variant,
        inner_lr=inner_lr,
        outer_lr=outer_lr,
        k_shot=k_shot,
        iterations=iterations,
        test_tasks=test_tasks,
        meta_batch_size=meta_batch_size,
        hidden=hidden,
    )
    return ShortRun(
        settings=settings,
        losses=losses,
        curve_mean=[m for m, _, _ in stats],
        curve_ci95=[c for _, c, _ in stats],
        wall_time_s=time.perf_counter() - start,
    )


def hyperparameter_figure(run: ShortRun, reference: Optional[ShortRun] = None, *, n_way: int = 5):
    """Two panels: the short run's meta-training loss; test accuracy vs adaptation steps (95% CI band),
    with ``reference`` (the defaults) drawn for comparison."""
    import matplotlib.pyplot as plt

    s = run.settings
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.8))
    ax1.plot(range(1, len(run.losses) + 1), run.losses, marker=".", label="this setting")
    if reference is not None and reference is not run:
        ax1.plot(range(1, len(reference.losses) + 1), reference.losses, color="grey", alpha=0.6, label="defaults")
    ax1.set_xlabel("meta-iteration")
    ax1.set_ylabel("meta-training loss (query CE after adaptation)")
    ax1.set_title(f"{s['variant']}: {s['iterations']} meta-iterations from scratch")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    curves = {f"α={s['inner_lr']:.3g}, β={s['outer_lr']:.1e}, K={s['k_shot']}": run.curve_mean}
    errors = {next(iter(curves)): run.curve_ci95}
    if reference is not None and reference is not run:
        r = reference.settings
        label = f"defaults α={r['inner_lr']:.3g}, β={r['outer_lr']:.1e}, K={r['k_shot']}"
        curves[label], errors[label] = reference.curve_mean, reference.curve_ci95
    plots.adaptation_curves(
        curves,
        errors=errors,
        ylabel="test query accuracy",
        ax=ax2,
        title=f"{s['test_tasks']} test tasks (unseen classes), 95% CI",
    )
    ax2.axhline(1 / n_way, color="grey", ls=":", lw=1)
    fig.tight_layout()
    return fig


def hyperparameter_widget(
    datasets: Mapping[str, Any],
    *,
    variant: str = "MAML",
    inner_lr: float = 0.4,
    outer_lr: float = 1e-3,
    k_shot: int = 1,
    iterations: int = 10,
    test_tasks: int = 30,
    display: bool = True,
    **run_kwargs: Any,
):
    """Sliders "α (inner lr)", "β (outer lr)", "shots K" (and the variant): every change re-runs a short
    real meta-training + adaptation (:func:`short_run`) and redraws :func:`hyperparameter_figure`, with
    the default setting's curves for comparison. Draws once with the defaults."""
    import ipywidgets as w

    controls = {
        "inner_lr": w.FloatLogSlider(
            value=inner_lr,
            base=10,
            min=-3,
            max=0.3,
            step=0.05,
            description="α (inner lr)",
            readout_format=".3g",
            continuous_update=False,
        ),
        "outer_lr": w.FloatLogSlider(
            value=outer_lr,
            base=10,
            min=-5,
            max=-1,
            step=0.25,
            description="β (outer lr)",
            readout_format=".1e",
            continuous_update=False,
        ),
        "k_shot": w.IntSlider(value=k_shot, min=1, max=10, description="shots K", continuous_update=False),
        "variant": w.Dropdown(
            options=[v for v, x in ALL_VARIANTS.items() if x.algo in ("maml", "metasgd")],
            value=variant,
            description="variant",
        ),
    }
    state: dict[str, Any] = {}

    def draw(**values: Any):
        run = short_run(datasets, iterations=iterations, test_tasks=test_tasks, **values, **run_kwargs)
        state.setdefault("reference", run)
        state["run"] = run
        return hyperparameter_figure(run, state["reference"])

    return live_figure(controls, draw, display=display, wrap=True, state=state)


# --------------------------------------------------------------------------------------------------
# the article's code, as printed (section 5), and what happens when it runs

ARTICLE_CODE = '''\
import torch
import torch.nn as nn
import torch.optim as optim

class MamlNet(nn.Module):
    def __init__(self, num_classes):
        super(MamlNet, self).__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(64)
        self.pool3 = nn.MaxPool2d(2, 2)
        self.conv4 = nn.Conv2d(64, 64, 3, padding=1)
        self.bn4 = nn.BatchNorm2d(64)
        self.pool4 = nn.MaxPool2d(2, 2)
        self.fc = nn.Linear(64 * 2 * 2, num_classes)

    def forward(self, x):
        x = self.pool1(self.bn1(self.conv1(x)))
        x = self.pool2(self.bn2(self.conv2(x)))
        x = self.pool3(self.bn3(self.conv3(x)))
        x = self.pool4(self.bn4(self.conv4(x)))
        x = x.view(-1, 64 * 2 * 2)
        x = self.fc(x)
        return x

def maml_update(model, x, y, alpha, device):
    """
    Perform one step of MAML update
    """
    model.train()
    optimizer = optim.Adam(model.parameters(), lr=alpha)
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return model.state_dict()

def meta_train(model, train_tasks, test_tasks, alpha, beta, num_updates, device):
    """
    Perform meta-training of the MAML model
    """
    meta_optimizer = optim.Adam(model.parameters(), lr=beta)
    for step in range(num_updates):
        # Sample a batch of training tasks
        task_batch = random.sample(train_tasks, 32)
        task_grads = []
        for task in task_batch:
            x, y = task
            x, y = x.to(device), y.to(device)
            adapted_params = maml_update(model, x, y, alpha, device)
            task_loss = F.cross_entropy(model(x, adapted_params), y)
            task_loss.backward()
            task_grads.append(model.grad.data.clone())
        meta_optimizer.zero_grad()
        meta_grad = torch.stack(task_grads).mean(0)
        meta_optimizer.step(meta_grad)
    # Evaluate on test tasks
    test_acc = evaluate(model, test_tasks, device)
    return test_acc
'''

#: minimal edits that let the article's code run one line further each time (what each attempt adds)
ARTICLE_PATCHES: tuple[tuple[str, str, str], ...] = (
    (
        "add the missing imports `random` and `F`",
        "import torch.optim as optim\n",
        "import torch.optim as optim\nimport random\nimport torch.nn.functional as F\n",
    ),
    ("call the model with one argument", "model(x, adapted_params)", "model(x)"),
    (
        "read the gradients from the parameters",
        "model.grad.data.clone()",
        "torch.cat([p.grad.flatten() for p in model.parameters()])",
    ),
    ("call step() without an argument", "meta_optimizer.step(meta_grad)", "meta_optimizer.step()"),
)


@dataclass
class ArticleAttempt:
    """One run of the (progressively patched) article code: the error it stopped with, if any."""

    patches: list[str]
    error: Optional[str]
    theta_changed_by_maml_update: Optional[float] = None


def run_article_code(meta_batch: int = 4, n_way: int = 5, seed: int = 0) -> list[ArticleAttempt]:
    """Execute the article's code as printed on random 3x32x32 tasks of ``n_way`` images, then again after
    each patch of :data:`ARTICLE_PATCHES`; record where each attempt fails. ``meta_batch`` replaces the
    article's 32 tasks per meta-batch (only to keep the demonstration fast; 32 changes nothing but time).
    Also measures how far one call of the article's ``maml_update`` moves the model's own parameters (it
    should move none: theta must stay put while a task adapts)."""
    import traceback

    g = torch.Generator().manual_seed(seed)
    tasks = [(torch.rand(n_way, 3, 32, 32, generator=g), torch.arange(n_way)) for _ in range(max(meta_batch, 1))]
    attempts, applied = [], []
    source = ARTICLE_CODE.replace("random.sample(train_tasks, 32)", f"random.sample(train_tasks, {int(meta_batch)})")
    filename = "<article section 5>"
    with torch_threads(1):
        for patch in (None,) + ARTICLE_PATCHES:
            if patch is not None:
                name, old, new = patch
                if old not in source:
                    raise RuntimeError(f"patch {name!r} does not apply")
                source, applied = source.replace(old, new), applied + [name]
            namespace: dict[str, Any] = {"__name__": "article"}
            torch.manual_seed(seed)
            exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - the point of the demo
            moved = None
            if "F" in namespace:  # measure maml_update's side effect on theta once it can run
                model = namespace["MamlNet"](n_way)
                before = [p.detach().clone() for p in model.parameters()]
                namespace["maml_update"](model, *tasks[0], 0.01, "cpu")
                moved = float(sum((p.detach() - b).norm() ** 2 for p, b in zip(model.parameters(), before)) ** 0.5)
            model = namespace["MamlNet"](n_way)
            try:
                namespace["meta_train"](model, tasks, tasks, 0.01, 1e-3, 1, "cpu")
                error = None
            except Exception as exc:  # noqa: BLE001 - we report whatever the article's code raises
                frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
                where = source.splitlines()[frames[-1].lineno - 1].strip() if frames else "?"
                error = f"{type(exc).__name__}: {exc}  [line: {where}]"
            attempts.append(ArticleAttempt(patches=list(applied), error=error, theta_changed_by_maml_update=moved))
    return attempts


# --------------------------------------------------------------------------------------------------
# command line: the full-scale grid (docs/FULL_SCALE.md)


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


__all__ = [
    "DOWNLOAD_COMMAND",
    "PUBLISHED",
    "DataChoice",
    "cifar100_available",
    "choose_dataset",
    "load_splits",
    "distinct_superclasses",
    "uniform_distinct_probability",
    "stratification_report",
    "Variant",
    "VARIANTS",
    "EXTRA_VARIANTS",
    "ALL_VARIANTS",
    "FAST_SIZES",
    "FULL_SIZES",
    "grid_config",
    "build_variant",
    "torch_threads",
    "ResultRow",
    "GridResult",
    "run_grid",
    "row_from_results",
    "load_project_results",
    "published_rows",
    "project_table",
    "data_label",
    "per_task_std",
    "ShortRun",
    "short_run",
    "hyperparameter_figure",
    "hyperparameter_widget",
    "ARTICLE_CODE",
    "ARTICLE_PATCHES",
    "ArticleAttempt",
    "run_article_code",
    "GridOptions",
    "grid_command",
]
