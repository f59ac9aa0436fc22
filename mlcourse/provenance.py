"""Where, when and with what a measurement was made: one record for every file the benchmarks and sweeps write."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Optional

import torch

from mlcourse.config import device_name
from mlcourse.hostmemory import cpu_allocator


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
