"""Host memory: how this process's C library allocates it (chapter 07; every results file records it).

No torch here (the package's light modules ``atomic``, ``tables``, ``cliparse`` stay light to import). Importing
changes nothing: :func:`keep_freed_memory` is called where long work starts (``train``, ``mlcourse bench``).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from typing import Optional

MALLOC_ENV = "MLCOURSE_MALLOC"
KEEP_FREED_BYTES = 1 << 30  # free memory glibc may keep for reuse before it hands any back to the system

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
_allocator = "the system's malloc, as configured"


@functools.lru_cache(maxsize=1)
def _glibc() -> Optional[ctypes.CDLL]:
    """This process's C library when it is glibc (it has ``mallopt``, ``malloc_trim``), else ``None``."""
    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):  # Windows has no "this process" library handle
        return None
    if not all(hasattr(libc, name) for name in ("mallopt", "malloc_trim", "gnu_get_libc_version")):
        return None
    libc.gnu_get_libc_version.restype = ctypes.c_char_p
    return libc


def keep_freed_memory() -> str:
    """Let glibc's malloc keep freed memory for the next allocation instead of handing it back to the system.

    A meta-training step frees and allocates hundreds of MB of activations; by default glibc serves large blocks
    with fresh ``mmap`` pages and returns them on ``free``, so every step page-faults them in (and zero-fills them)
    again; with freed memory kept, eager steps get faster (README's Benchmarks compares two ``mlcourse bench`` files)
    and the arithmetic is untouched: trained weights are bit-identical. The cost: memory the process frees stays with
    it for reuse (its resident size stays near its peak; at most ``KEEP_FREED_BYTES`` free at the top of the heap).
    Called where long work starts (:func:`mlcourse.train.train`, ``mlcourse bench``), never on import;
    ``MLCOURSE_MALLOC=default`` leaves malloc alone. Elsewhere than glibc (macOS, Windows, musl) nothing changes.
    Returns the label :func:`cpu_allocator` gives (recorded in results files and benchmark rows, chapter 07).
    """
    global _allocator
    choice = os.environ.get(MALLOC_ENV, "keep").strip().lower() or "keep"
    if choice not in ("keep", "default"):
        # a clear line, not a traceback: the work goes on with malloc as it is
        print(
            f"mlcourse: {MALLOC_ENV}={choice!r} is not understood (allowed: keep, default); malloc left as it is",
            file=sys.stderr,
        )
        choice = "default"
    if choice == "default":
        _allocator = f"the system's malloc ({MALLOC_ENV}=default)"
        return _allocator
    libc = _glibc()
    if libc is None:
        return _allocator  # not glibc: nothing to tune
    if libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES) == 1:
        version = libc.gnu_get_libc_version().decode()
        _allocator = f"glibc {version} malloc keeping up to {KEEP_FREED_BYTES >> 30} GiB of freed memory"
    return _allocator


def release_freed_memory() -> bool:
    """Hand the freed memory glibc keeps (:func:`keep_freed_memory`) back to the system now (``malloc_trim``), so that
    the growth of the resident set measures what comes next (``mlcourse.bench.peak_memory``). False if not glibc."""
    libc = _glibc()
    return libc is not None and libc.malloc_trim(0) >= 0


def cpu_allocator() -> str:
    """How host memory is allocated in this process (see :func:`keep_freed_memory`); results files record it."""
    return _allocator
