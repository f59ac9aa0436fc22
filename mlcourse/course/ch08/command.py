"""``mlcourse scaling``: chapter 08's sweeps at full size, written as a measurement file the chapter reads back:
the time and memory sweep (``benchmarks/results/scaling-*.json``), ``--remedies`` (checkpointed, truncated and
implicit MAML against MAML as the inner loop grows) and ``--distributed`` (tasks spread over processes).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional

import torch
import tyro

from mlcourse.atomic import write_json
from mlcourse.cliparse import Flag, arg, require
from mlcourse.config import resolve_device, runs_dir
from mlcourse.course.ch08.processes import distributed_report
from mlcourse.course.ch08.remedies import CH03_POINT, REMEDY_STEPS, REMEDY_VARIANTS, remedies_sweep, remedy_summary
from mlcourse.course.ch08.sweeps import (
    AXES,
    FAST_BASE,
    FAST_GRID,
    FULL_BASE,
    FULL_GRID,
    SCALING_ALGORITHMS,
    exponents,
    sweep,
)
from mlcourse.hostmemory import keep_freed_memory
from mlcourse.provenance import provenance

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn (the GPU machine may not have it)
    pass


Algorithm = Literal[SCALING_ALGORITHMS]  # type: ignore[valid-type]

Axis = Literal[AXES]  # type: ignore[valid-type]


@dataclass(frozen=True)
class ScalingOptions:
    """Chapter 08: time and memory of one meta-iteration along five axes, written as JSON for the chapter
    (or, with --remedies, MAML and its memory remedies against the inner steps; with --distributed, one meta-step
    at 1 vs 2 local CPU processes)."""

    device: Annotated[str, arg("auto, cpu, cuda, cuda:N")] = "auto"
    full: Annotated[Flag, arg("chapter 03's network and the full grid (default: the tiny fast grid)", default="")] = (
        False
    )
    algorithms: Annotated[tuple[Algorithm, ...], arg("the algorithms")] = SCALING_ALGORITHMS
    axes: Annotated[tuple[Axis, ...], arg("the axes")] = AXES
    repeats: Annotated[int, arg("timed meta-iterations per point, after one warm-up (>= 1)")] = 3
    threads: Annotated[int, arg("torch CPU threads (0: torch's choice)")] = 0
    out: Annotated[
        Optional[str],
        tyro.conf.DisallowNone,
        arg("JSON path", metavar="FILE", default="runs/bench/scaling-<device>-<date>.json"),
    ] = None
    distributed: Annotated[Flag, arg("instead: time one meta-step at 1 vs 2 local CPU processes", default="")] = False
    remedies: Annotated[
        Flag,
        arg(
            f"instead: memory and time of MAML and its remedies ({', '.join(REMEDY_VARIANTS)}) against the inner "
            f"steps; with --full at chapter 03's shape and inner steps {', '.join(map(str, REMEDY_STEPS))}",
            default="",
        ),
    ] = False


def _remedies_command(a: ScalingOptions) -> str:
    return (
        "mlcourse scaling --remedies"
        + (" --full" if a.full else "")
        + (f" --threads {a.threads}" if a.threads else "")
        + (f" --repeats {a.repeats}" if a.repeats != 3 else "")
    )


def run_remedies(a: ScalingOptions, dev: torch.device) -> int:
    """``mlcourse scaling --remedies``: :func:`remedies_sweep` at chapter 03's shape, written as JSON
    (``kind: mlcourse.remedies``) for chapter 08."""
    keep_freed_memory()  # the setting training runs with (mlcourse.hostmemory), recorded in the file
    start = time.perf_counter()
    base, steps = (CH03_POINT, REMEDY_STEPS) if a.full else (FAST_BASE, FAST_GRID["inner_steps"])
    rows = remedies_sweep(steps=steps, base=base, repeats=a.repeats, device=dev, progress=True)
    payload = {
        "kind": "mlcourse.remedies",
        "rows": rows,
        "summary": remedy_summary(rows),
        "point": asdict(base),
        "inner_steps": list(steps),
        "variants": {k: {"algorithm": v[0], **v[1]} for k, v in REMEDY_VARIANTS.items()},
        "how_measured": "graph: exact bytes the autograd graph holds (per-task loop, saved-tensor hooks); process: "
        "peak RSS growth of one meta-iteration; seconds: best and median of --repeats eager meta-iterations "
        "(zero_grad + loss + backward) on random images, after one warm-up",
        **provenance(dev, command=_remedies_command(a), wall_time_s=time.perf_counter() - start),
    }
    out = Path(a.out) if a.out else runs_dir() / "bench" / f"remedies-{dev.type}-{payload['date'][:10]}.json"
    write_json(out, payload)
    for variant, summary in payload["summary"].items():
        print(variant, {k: None if v is None else round(v, 3) for k, v in summary.items()})
    print(f"wrote {out}")
    return 0


def scaling_command(a: ScalingOptions) -> int:
    """``mlcourse scaling [--device cuda] [--full] [--out FILE]``: every sweep of chapter 08 (the full grid with
    ``--full``), printed and written as JSON (``kind: mlcourse.scaling``) for the notebook to load; ``--distributed``
    times one meta-step at 1 vs 2 local CPU processes instead."""
    require(a.repeats >= 1, "--repeats", a.repeats, "an integer >= 1")
    require(a.threads >= 0, "--threads", a.threads, "0 (torch's choice) or more")
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.distributed:
        report = distributed_report()
        out = Path(a.out) if a.out else runs_dir() / "bench" / f"distributed-cpu-{report['date'][:10]}.json"
        write_json(out, report)
        print(json.dumps(report["speedup"]), f"wrote {out}")
        return 0
    dev = resolve_device(a.device)
    if a.remedies:
        return run_remedies(a, dev)
    grid, base = (FULL_GRID, FULL_BASE) if a.full else (FAST_GRID, FAST_BASE)
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    for axis in a.axes:
        rows += sweep(a.algorithms, axis, grid[axis], base=base, repeats=a.repeats, device=dev, progress=False)
        print(
            f"{axis}: time exponents "
            + ", ".join(f"{k} {v:.2f}" for k, v in exponents(rows, "seconds").get(axis, {}).items()),
            flush=True,
        )
    command = "mlcourse scaling" + (" --full" if a.full else "") + f" --repeats {a.repeats}"
    command += f" --threads {a.threads}" if a.threads else ""
    record = provenance(dev, command=command, wall_time_s=time.perf_counter() - start)
    payload = {
        "kind": "mlcourse.scaling",
        "rows": rows,
        "base": asdict(base),
        "grid": {k: grid[k] for k in a.axes},
        "exponents_seconds": exponents(rows, "seconds"),
        "exponents_graph_bytes": exponents(rows, "graph_held_bytes"),
        **record,
    }
    out = Path(a.out) if a.out else runs_dir() / "bench" / f"scaling-{dev.type}-{record['date'][:10]}.json"
    write_json(out, payload)
    print(f"wrote {out}")
    return 0
