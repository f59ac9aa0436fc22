"""Chapter 08's tasks spread over processes (``mlcourse.distributed``): one measurement, the speed-up lines it
prints, and the committed measurements read back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlcourse import distributed
from mlcourse.config import REPO_ROOT
from mlcourse.provenance import provenance

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn (the GPU machine may not have it)
    pass


def distributed_report(**kwargs: Any) -> dict[str, Any]:
    """``mlcourse.distributed.measure_speedup(**kwargs)`` (1 vs 2 local CPU processes by default) with the
    device, torch version and date added (what chapter 08 shows and ``--distributed`` saves)."""
    report = distributed.measure_speedup(**kwargs)
    return {"kind": "mlcourse.distributed", **report, **provenance("cpu")}


def speedup_lines(report: Mapping[str, Any]) -> list[str]:
    """For each process count above one in a distributed measurement (:func:`distributed_report`): its speed-up over
    one process, said in words from the numbers (faster or slower than one process)."""
    results = {int(k): v for k, v in report["results"].items()}
    speedups = {int(k): float(v) for k, v in report["speedup"].items()}
    if 1 not in results:
        raise ValueError(f"the report has no one-process measurement; process counts: {sorted(results)}")
    lines = []
    for world in sorted(w for w in results if w > 1):
        s = speedups[world]
        verdict = "faster than" if s > 1 else "slower than" if s < 1 else "as fast as"
        lines.append(
            f"{world} processes: {1e3 * results[world]['median_s']:.0f} ms against {1e3 * results[1]['median_s']:.0f} ms "
            f"for one: speed-up {s:.2f}x, {verdict} one process"
        )
    return lines


def load_distributed_results(directory: Any = None) -> list[dict[str, Any]]:
    """Every ``distributed-*.json`` in ``directory`` (default ``benchmarks/results``), newest name last."""
    import json
    from pathlib import Path

    folder = Path(directory) if directory is not None else REPO_ROOT / "benchmarks" / "results"
    out = []
    for file in sorted(folder.glob("distributed-*.json")):
        payload = json.loads(file.read_text())
        payload["file"] = str(file)
        out.append(payload)
    return out
