"""Where, when and with what a measurement was made: one record for every file the library and the course write
(benchmarks, sweeps, training results, chapter results, checkpoints, book builds), and one reader for it."""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import torch

from mlcourse.config import REPO_ROOT, device_name
from mlcourse.hostmemory import cpu_allocator

MEASUREMENTS_DIR = REPO_ROOT / "benchmarks" / "results"  # the committed benchmark, sweep and frontier files
KEYS = ("device", "device_name", "threads", "torch", "allocator", "date", "command", "wall_time_s")


def provenance(
    device: torch.device | str, *, command: Optional[str] = None, wall_time_s: Optional[float] = None
) -> dict[str, Any]:
    """``{"device", "device_name", "threads", "torch", "allocator", "date"}`` plus ``command`` and ``wall_time_s``
    where given: what a reader needs to compare a number with another (timings depend on each of them)."""
    dev = torch.device(device)
    record: dict[str, Any] = {
        "device": str(dev),
        "device_name": device_name(dev),
        "threads": torch.get_num_threads(),
        "torch": str(torch.__version__),
        "allocator": cpu_allocator(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if command is not None:
        record["command"] = command
    if wall_time_s is not None:
        record["wall_time_s"] = round(float(wall_time_s), 1)
    return record


def read(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with its provenance in :func:`provenance`'s keys (absent ones ``None``).

    Files written before this record existed (training results, chapter results and weights, book builds, committed
    and kept as made) named the device's name ``device``, its type ``device_type`` and the torch version
    ``torch_version``; a record without ``device_name`` is read that way."""
    out = dict(record)
    if "device_name" not in out and "device" in out:
        out["device_name"] = out["device"]
        out["device"] = out.pop("device_type", None)
    if "torch_version" in out:
        out.setdefault("torch", out.pop("torch_version"))
    for key in KEYS:
        out.setdefault(key, None)
    return out


def load_measurement(
    kind: str, what: str, command: str, *, pattern: str, path: str | os.PathLike | None = None
) -> dict[str, Any]:
    """A measurement file of ``kind`` (``what`` in words, written by ``command``): ``path``, else the newest
    ``benchmarks/results/<pattern>`` (file names carry the date); with ``file`` set. A missing file says which command
    makes one; a file of another kind is a ValueError naming both."""
    if path is None:
        found = sorted(MEASUREMENTS_DIR.glob(pattern))
        if not found:
            raise FileNotFoundError(f"no {pattern} in {MEASUREMENTS_DIR}; make one with {command}")
        path = found[-1]
    payload = json.loads(Path(path).read_text())
    if payload.get("kind") != kind:
        raise ValueError(f"{path} is not {what} (kind {kind!r}, from {command})")
    return {**payload, "file": str(path)}
