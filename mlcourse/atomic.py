"""Atomic file writes: a file is either its old content or its complete new content, never half-written.

The one helper of the package for it (checkpoints and results of ``mlcourse.checkpoint``, downloads and split
files of ``mlcourse.data``, benchmark and scaling reports): write to a temporary file beside the target, flush
and ``fsync`` it, ``os.replace`` it over the target, then ``fsync`` the directory so that the rename survives
a power loss.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

TMP_MARK = ".tmp-"  # temporary files are named ".<target name>.tmp-<random>"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file (mkstemp gives 0600)
DIR_MODE = 0o777 & ~_umask()  # what mkdir would give a new folder (mkdtemp gives 0700)


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make a rename inside ``directory`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``dest`` (its folder is created); write it, and on leaving the block it
    replaces ``dest`` atomically. On any exception (``KeyboardInterrupt`` included) the temporary file is
    removed and ``dest`` keeps its previous content."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}{TMP_MARK}", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(dest.parent)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(file)`` on a temporary binary file beside ``path`` and atomically move it over ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            write(handle)
    return Path(path)


def write_json(path: str | os.PathLike, payload: Any, *, indent: int = 1) -> Path:
    """Write ``payload`` as JSON (``default=str`` for dates and paths) atomically; returns the path."""
    text = json.dumps(payload, indent=indent, default=str) + "\n"
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def stale_temporaries(directory: str | os.PathLike, name: str) -> list[Path]:
    """Temporary files of ``name`` left in ``directory`` by a write that was killed (SIGKILL, power loss)."""
    return sorted(Path(directory).glob(f".{name}{TMP_MARK}*"))


__all__ = [
    "atomic_path",
    "atomic_write",
    "write_json",
    "fsync_dir",
    "stale_temporaries",
    "TMP_MARK",
    "FILE_MODE",
    "DIR_MODE",
]
