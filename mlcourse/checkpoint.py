"""Safe checkpoints and results files (``mlcourse.train``, the CLI, and the notebooks that reload runs:
chapters 03-08 read ``results.json`` with :func:`load_results`).

Every file is written atomically: a temporary file in the same directory, ``fsync``, then
``os.replace`` over the target, then ``fsync`` of the directory. A crash or an error while writing
therefore leaves the previous file intact. Reading a corrupt, truncated or foreign file raises
:class:`CheckpointError` / :class:`ResultsError` with a one-line message naming the file, never a
deep ``torch``/``pickle`` traceback.

Checkpoints are loaded with ``torch.load(weights_only=True)``: they hold only tensors and plain Python
values (RNG states are converted to tensors/tuples), so loading never runs pickled code.
"""

from __future__ import annotations

import errno
import json
import math
import os
import random
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import atomic_write, stale_temporaries

CHECKPOINT_NAME = "checkpoint.pt"
WEIGHTS_NAME = "weights.pt"  # a finished run's fp32 learner weights without optimiser state (results/omniglot/*)
RESULTS_NAME = "results.json"
CHECKPOINT_FORMAT = "mlcourse-checkpoint"
RESULTS_FORMAT = "mlcourse-results"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written, read, or does not match the experiment (message names the file)."""


class ResultsError(RuntimeError):
    """A ``results.json`` file is missing, corrupt or not an mlcourse results file."""


class OutputDirError(RuntimeError):
    """The output directory cannot hold checkpoints (unwritable, not a directory, or full)."""


# --------------------------------------------------------------------------------------------------
# stale temporaries (the writes themselves: mlcourse.atomic)


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Delete temporary files left by a write that was killed (``SIGKILL``, power loss)."""
    removed = []
    directory = Path(directory)
    if not directory.is_dir():
        return removed
    for name in (CHECKPOINT_NAME, RESULTS_NAME):
        for tmp in stale_temporaries(directory, name):
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


def prepare_output_dir(directory: str | os.PathLike, needed_bytes: int = 0) -> Path:
    """Create ``directory`` and prove it is writable by writing, syncing and deleting a small file.

    ``needed_bytes`` (an estimate of two checkpoints) is compared with the free space. Raises
    :class:`OutputDirError` naming the directory before any training starts.
    """
    directory = Path(directory).expanduser()
    if directory.exists() and not directory.is_dir():
        raise OutputDirError(f"output directory {str(directory)!r} exists but is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputDirError(f"cannot create output directory {str(directory)!r}: {exc.strerror or exc}") from None
    if not directory.is_dir():
        raise OutputDirError(f"output directory {str(directory)!r} exists but is not a directory")
    probe = directory / f".write-probe-{os.getpid()}"
    try:
        with open(probe, "wb") as handle:
            handle.write(b"\0" * 4096)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        reason = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))
        raise OutputDirError(f"cannot write to output directory {str(directory)!r}: {reason}") from None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
    if needed_bytes > 0:
        try:
            free = shutil.disk_usage(directory).free
        except OSError:  # pragma: no cover
            free = None
        if free is not None and free < needed_bytes:
            raise OutputDirError(
                f"output directory {str(directory)!r} has {free / 2**20:.1f} MiB free but checkpoints need about "
                f"{needed_bytes / 2**20:.1f} MiB; free some space or choose another --out"
            )
    remove_stale_temporaries(directory)
    return directory


# --------------------------------------------------------------------------------------------------
# RNG states (exact resume)


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA generator states as tensors / plain values."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64).copy()),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (CUDA states are restored when a GPU is present)."""
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    npy = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            npy["keys"].numpy().astype(np.uint32),
            int(npy["pos"]),
            int(npy["has_gauss"]),
            float(npy["cached_gaussian"]),
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


# --------------------------------------------------------------------------------------------------
# checkpoints


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file + fsync + ``os.replace``).

    A failure while writing raises :class:`CheckpointError`; the previous checkpoint stays intact.
    """
    path = Path(path)
    payload = dict(state)
    payload.setdefault("format", CHECKPOINT_FORMAT)
    payload.setdefault("version", FORMAT_VERSION)
    try:
        return atomic_write(path, lambda handle: torch.save(payload, handle))
    except Exception as exc:
        reason = (
            "the disk is full"
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
            else f"{type(exc).__name__}: {exc}"
        )
        previous = "the previous checkpoint is intact" if path.exists() else "no checkpoint was written"
        raise CheckpointError(f"could not write checkpoint {str(path)!r} ({reason}); {previous}") from exc


def resolve_checkpoint_path(path: str | os.PathLike) -> Path:
    """A run directory (``runs/NAME``) resolves to its ``checkpoint.pt``; a shipped run's directory
    (``results/omniglot/NAME``, no checkpoint) to its ``weights.pt``."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / (
            WEIGHTS_NAME
            if not (path / CHECKPOINT_NAME).exists() and (path / WEIGHTS_NAME).exists()
            else CHECKPOINT_NAME
        )
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`; ``path`` may be the run directory.

    Raises :class:`CheckpointError` naming the file when it is missing, truncated, corrupt, or not an
    mlcourse checkpoint.
    """
    path = resolve_checkpoint_path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # zip/pickle/EOF errors of every kind
        text = str(exc)
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if found:
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds Python objects mlcourse does not load ({found.group(1)}); "
                "it was not written by mlcourse.save_checkpoint"
            ) from None
        if "Weights only load failed" in text:
            detail = "invalid pickle data"
        else:
            detail = text.strip().splitlines()[0][:160] if text.strip() else type(exc).__name__
        raise CheckpointError(
            f"{str(path)!r} cannot be read as an mlcourse checkpoint ({detail}): it is another kind of file, or a "
            "damaged one; to train afresh, give the run a new --out directory"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{str(path)!r} is not an mlcourse checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    if state.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {state.get('version')!r}; this mlcourse reads version {FORMAT_VERSION}"
        )
    missing = [key for key in ("algo", "config", "learner", "shapes", "step") if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {str(path)!r} is incomplete: missing {', '.join(missing)}")
    return state


def parameter_shapes(state_dict: Mapping[str, torch.Tensor]) -> dict[str, list[int]]:
    return {name: list(tensor.shape) for name, tensor in state_dict.items()}


def check_compatible(
    checkpoint: Mapping[str, Any],
    path: str | os.PathLike,
    algo: str,
    state_dict: Mapping[str, torch.Tensor],
) -> None:
    """Raise :class:`CheckpointError` when ``checkpoint`` comes from another algorithm or model shape."""
    path = str(path)
    if checkpoint["algo"] != algo:
        raise CheckpointError(
            f"checkpoint {path!r} was written by algorithm {checkpoint['algo']!r}, but this run uses {algo!r}; "
            "choose another output directory or the matching --algo"
        )
    saved: dict[str, list[int]] = dict(checkpoint["shapes"])
    current = parameter_shapes(state_dict)
    extra = sorted(set(saved) - set(current))
    absent = sorted(set(current) - set(saved))
    if extra or absent:
        parts = []
        if extra:
            parts.append(
                f"it has parameters this model lacks ({', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''})"
            )
        if absent:
            parts.append(
                f"it lacks parameters of this model ({', '.join(absent[:3])}{', ...' if len(absent) > 3 else ''})"
            )
        raise CheckpointError(f"checkpoint {path!r} holds a different model: {'; '.join(parts)}")
    for name in current:
        if list(saved[name]) != current[name]:
            raise CheckpointError(
                f"checkpoint {path!r} holds a model of another shape: parameter {name!r} is {list(saved[name])} "
                f"in the checkpoint but {current[name]} in this model (check n_way, hidden, image_size)"
            )


# --------------------------------------------------------------------------------------------------
# results.json


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _json_safe(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, float) and not math.isfinite(value):
        return value  # json writes NaN/Infinity, which Python's json reads back
    return value


def save_results(path: str | os.PathLike, results: Mapping[str, Any]) -> Path:
    """Write ``results.json`` atomically (``path`` may be the run directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_NAME
    payload = {"format": RESULTS_FORMAT, "version": FORMAT_VERSION, **_json_safe(dict(results))}
    text = json.dumps(payload, indent=2, sort_keys=False) + "\n"
    try:
        return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))
    except OSError as exc:
        raise ResultsError(f"could not write results file {str(path)!r}: {exc.strerror or exc}") from exc


def load_results(path: str | os.PathLike) -> dict[str, Any]:
    """Load a run's ``results.json`` (``path`` may be the run directory), as written.

    A training run's holds ``config``, ``history`` (list of dicts), ``test`` (``mean``, ``ci95``, ``metric``,
    ``num_tasks``, ...), ``iterations`` and its provenance record (``mlcourse.provenance``); files made before that
    record existed name the device and the torch version otherwise, which ``mlcourse.provenance.read`` maps.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / RESULTS_NAME
    if not path.exists():
        raise ResultsError(f"results file {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"results file {str(path)!r} is corrupt or truncated ({exc})") from None
    except OSError as exc:
        raise ResultsError(f"cannot read results file {str(path)!r}: {exc.strerror or exc}") from None
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise ResultsError(f"{str(path)!r} is not an mlcourse results file (no '{RESULTS_FORMAT}' marker)")
    return data
