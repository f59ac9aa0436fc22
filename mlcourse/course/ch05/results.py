"""Chapter 05's table: the published numbers with their sources and protocols, the full-scale ``results.json``
files found under ``results/`` or ``runs/`` (``mlcourse train``, ``mlcourse cifar-grid``) with their device and wall
time, and the table that sets them side by side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from mlcourse.checkpoint import RESULTS_NAME, ResultsError, load_results
from mlcourse.commands import train_command
from mlcourse.config import REPO_ROOT, runs_dir
from mlcourse.data.cifar100 import CIFAR100_SCHEMES
from mlcourse.provenance import read as read_provenance
from mlcourse.shipped import AS_PUBLISHED, TRANSDUCTIVE, protocol_label
from mlcourse.tables import format_table
from mlcourse.train import (
    TrainConfig,
)

RESULT_DIRS = (REPO_ROOT / "results", runs_dir())

#: runs with at most this many iterations count as fast-mode runs (``TrainConfig.fast()`` uses 200)
FAST_RUN_ITERATIONS = 200

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


def data_label(data: str, split_scheme: Optional[str]) -> str:
    if data == "omniglot":
        return "Omniglot"
    return {"article": "CIFAR-100 article 80/20", "cifar-fs": "CIFAR-FS", "fc100": "FC100"}.get(
        split_scheme or "", f"CIFAR-100 {split_scheme}"
    )


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
