"""Course-wide settings: fast mode, the data directory, devices and seeds.

Used by every notebook's setup cell (``from mlcourse.config import ...``) and by the CLI.
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Optional, TypeVar

import numpy as np
import torch

T = TypeVar("T")

FAST_ENV = "MLCOURSE_FAST"
DATA_ENV = "MLCOURSE_DATA_DIR"
#: The repository's address, the one place it is written: `pip install` from it, the "Open in Colab" and Binder links
#: of the README and the book, and `[project.urls]` (a fork changes it here; tests/test_launch.py checks the rest).
REPOSITORY_URL = "https://github.com/mlcourse-org/mlcourse"
#: What a chapter's setup cell installs when `mlcourse` is not importable (a notebook service); overridable (tests).
INSTALL_SOURCE_ENV = "MLCOURSE_INSTALL_SOURCE"
PACKAGE_DIR = Path(__file__).resolve().parent


def _project_root(package_dir: Path = PACKAGE_DIR) -> Path:
    """The checkout the package runs from; in a pip install, the committed results, benchmark files and split lists
    that the wheel carries inside the package (``mlcourse/_project``, pyproject.toml's ``package-dir``)."""
    checkout = package_dir.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "results").is_dir():
        return checkout
    return package_dir / "_project"


REPO_ROOT = _project_root()
INSTALLED_COPY = REPO_ROOT.parent == PACKAGE_DIR  # True in a pip install (no checkout around the package)
NOTEBOOKS = REPO_ROOT / "notebooks"


def chapter_notebooks(directory: Path = NOTEBOOKS) -> list[Path]:
    """The chapters ``NN_name.ipynb`` of ``directory``, in order (the graded exercises and the built book)."""
    return sorted(directory.glob("[0-9][0-9]_*.ipynb"))


def fast_mode() -> bool:
    """True when ``MLCOURSE_FAST=1``: small data, few iterations, the same code path (CI default)."""
    value = os.environ.get(FAST_ENV, "0").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{FAST_ENV}={value!r} is not understood; use 1 (fast mode) or 0 (full scale)")


def pick(fast: T, full: T) -> T:
    """Return ``fast`` in fast mode and ``full`` otherwise (notebooks size their experiments with it)."""
    return fast if fast_mode() else full


def data_dir() -> Path:
    """The one directory that caches every data set: ``$MLCOURSE_DATA_DIR``, else ``<repo>/data`` in a checkout and
    ``$XDG_CACHE_HOME/mlcourse/data`` (``~/.cache/...``) in a pip install (never inside site-packages)."""
    override = os.environ.get(DATA_ENV)
    if override:
        return Path(override).expanduser()
    return _user_cache() / "data" if INSTALLED_COPY else REPO_ROOT / "data"


def runs_dir() -> Path:
    """Where training runs, benchmarks and experiments write what they make: ``<repo>/runs`` in a checkout,
    ``$XDG_CACHE_HOME/mlcourse/runs`` (``~/.cache/...``) in a pip install (never inside site-packages)."""
    return _user_cache() / "runs" if INSTALLED_COPY else REPO_ROOT / "runs"


def _user_cache() -> Path:
    """``$XDG_CACHE_HOME/mlcourse`` (``~/.cache/mlcourse``): what a pip install writes, outside site-packages."""
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "mlcourse"


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """Turn ``auto``/``cpu``/``cuda``/``cuda:N``/``mps`` into a device that exists, or say why not."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {spec!r} was requested but no CUDA GPU is available on this machine; "
                "use --device cpu or --device auto"
            )
        device = torch.device(spec)
        count = torch.cuda.device_count()
        if device.index is not None and not 0 <= device.index < count:
            raise RuntimeError(
                f"device {spec!r} does not exist: this machine has {count} CUDA device(s), 0..{count - 1}"
            )
        return device
    if spec == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise RuntimeError("device 'mps' was requested but Apple's MPS backend is not available here")
        return torch.device("mps")
    raise ValueError(f"unknown device {spec!r}; allowed: auto, cpu, cuda, cuda:N, mps")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU ``torch.Generator`` seeded the same way."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def device_name(device: torch.device) -> str:
    """A human label for results files and benchmark rows (train, bench, chapters 00/02/05/08): the GPU's name, or the CPU model and core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU: {cpu} ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


@contextlib.contextmanager
def torch_threads(n: Optional[int]) -> Iterator[None]:
    """Set torch's intra-op CPU threads for a block and restore them afterwards (chapters 02, 04, 05: one thread is
    much faster for tiny networks on a busy 2-core machine). ``None`` leaves the setting alone."""
    if n is not None and (not isinstance(n, int) or n < 1):
        raise ValueError(f"threads={n!r} is not allowed; allowed: an integer >= 1 or None")
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
