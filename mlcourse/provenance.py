"""Where, when and with what a measurement was made: one record for every file the library and the course write
(benchmarks, sweeps, training results, chapter results, checkpoints, book builds), and one reader for it."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any, Optional

import torch

from mlcourse.config import device_name
from mlcourse.hostmemory import cpu_allocator

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
