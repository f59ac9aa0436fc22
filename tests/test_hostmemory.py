"""mlcourse.hostmemory.keep_freed_memory: glibc keeps freed memory for reuse (set where training starts, never on
import)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # a fresh Python process per probe: `make test` only, not `make test-fast`

# 64 MB allocated and freed 30 times; prints the page faults of the last 20 and the allocator's label
PROBE = """
import resource, sys, torch, mlcourse, mlcourse.train, mlcourse.algorithms
from mlcourse.hostmemory import cpu_allocator, keep_freed_memory
if sys.argv[1] == "keep":
    keep_freed_memory()  # what train() and `mlcourse bench` call when they start
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.empty(64 << 20, dtype=torch.uint8).fill_(1)
start = faults()
for _ in range(20):
    torch.empty(64 << 20, dtype=torch.uint8).fill_(1)
print(faults() - start)
print(cpu_allocator())
"""


def probe(setting: str | None, call: bool = True) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLCOURSE_MALLOC"}
    if setting is not None:
        env["MLCOURSE_MALLOC"] = setting
    argv = [sys.executable, "-c", PROBE, "keep" if call else "import-only"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    faults, label = done.stdout.strip().splitlines()
    return int(faults), label, done.stderr


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's (elsewhere nothing is changed)")
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    kept, label, _ = probe(None)
    default, default_label, _ = probe("default")
    # 20 x 64 MB is 327,680 pages of 4 KiB: kept, freed blocks are reused and (after the first rounds) nothing
    # faults in again; by default each block is a fresh mapping, faulted in page by page
    assert kept < 16_384, (kept, label)
    assert default > 10 * 16_384, (default, kept)
    assert label.startswith("glibc ") and "keeping up to 1 GiB" in label
    assert default_label == "the system's malloc (MLCOURSE_MALLOC=default)"


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's (elsewhere nothing is changed)")
def test_importing_the_library_leaves_the_allocator_alone():
    """A library import changes nothing in its host process: freed blocks still fault in again until a training
    run or a benchmark starts."""
    faults, label, stderr = probe(None, call=False)
    assert label == "the system's malloc, as configured" and not stderr
    assert faults > 10 * 16_384, faults


def test_unknown_setting_is_named_in_one_line_and_changes_nothing():
    _, label, stderr = probe("fast")
    assert label == "the system's malloc (MLCOURSE_MALLOC=default)"
    assert stderr.strip() == (
        "mlcourse: MLCOURSE_MALLOC='fast' is not understood (allowed: keep, default); malloc left as it is"
    )


def test_importing_mlcourse_light_modules_does_not_import_torch():
    """The torch-free modules stay light: importing them does not pay torch's import."""
    code = "import sys, mlcourse.atomic, mlcourse.tables, mlcourse.cliparse; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
