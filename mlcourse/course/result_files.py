"""A chapter's small results as JSON files under ``results/``, each labelled with its provenance record
(:func:`mlcourse.provenance.provenance`) and the mode it ran in.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import torch

from mlcourse.checkpoint import load_results, save_results
from mlcourse.config import REPO_ROOT, fast_mode, resolve_device
from mlcourse.provenance import provenance
from mlcourse.provenance import read as read_provenance

RESULTS_DIR = REPO_ROOT / "results"


def result_path(name: str, directory: str | Path | None = None) -> Path:
    """``results/<name>.json`` (``directory`` overrides ``results/``, e.g. a temporary folder in tests)."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"result name {name!r} must be a plain file name without '/'")
    return Path(directory if directory is not None else RESULTS_DIR) / f"{name}.json"


def save_result(
    name: str,
    payload: Mapping[str, Any],
    device: torch.device | str = "cpu",
    *,
    directory: str | Path | None = None,
    wall_time_s: Optional[float] = None,
) -> Path:
    """Write ``payload`` to ``results/<name>.json`` atomically, labelled with its provenance record (device,
    threads, torch version, allocator, date, wall time) and the mode it ran in."""
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    label = {"name": name, **provenance(device, wall_time_s=wall_time_s), "fast_mode": fast_mode()}
    path = result_path(name, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_results(path, {**label, **dict(payload)})


def load_result(name: str, directory: str | Path | None = None) -> Optional[dict[str, Any]]:
    """The dict saved by :func:`save_result`, its provenance in :func:`mlcourse.provenance.provenance`'s keys, or
    ``None`` when there is no such file (corrupt files raise)."""
    path = result_path(name, directory)
    if not path.exists():
        return None
    return read_provenance(load_results(path))
