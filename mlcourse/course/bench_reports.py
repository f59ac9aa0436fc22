"""The committed benchmark files read back for the chapters (07 and 08): each file's rows ranked, the rows two
files share compared, and the GPU reference figures printed with their source.

Nothing here measures; ``mlcourse bench`` writes the files (``benchmarks/results/``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlcourse import bench
from mlcourse.config import REPO_ROOT

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn (the GPU machine may not have it)
    pass


GPU_REFERENCE_FILE = "gpu-reference-h200-prototype.json"

GPU_REFERENCE_FIELDS = ("kind", "device", "torch", "date", "provenance", "how_measured", "shape", "measurements")


def load_gpu_reference(path: Any = None) -> dict[str, Any]:
    """The GPU reference figures that chapters 07-08 quote (``benchmarks/results/gpu-reference-h200-prototype.json``):
    measured on a lent H200 with a prototype before ``mlcourse bench`` existed, each labelled in the file with
    its device, torch version, date, shape and provenance. The chapters print them from here, never typed in."""
    import json
    from pathlib import Path

    file = Path(path) if path is not None else REPO_ROOT / "benchmarks" / "results" / GPU_REFERENCE_FILE
    payload = json.loads(file.read_text())
    missing = [k for k in GPU_REFERENCE_FIELDS if k not in payload]
    if missing or payload.get("kind") != "mlcourse.gpu-reference":
        raise ValueError(
            f"{file} is not a GPU reference file (kind 'mlcourse.gpu-reference'); missing fields: {missing}"
        )
    payload["file"] = str(file)
    return payload


def gpu_reference_entry(reference: Mapping[str, Any], key: str) -> dict[str, Any]:
    """One measurement (or observation, or the data-sheet peak) of :func:`load_gpu_reference` by its ``key``."""
    entries = list(reference["measurements"]) + list(reference.get("observations", []))
    if "reference_peak" in reference:
        entries.append(reference["reference_peak"])
    for entry in entries:
        if entry["key"] == key:
            return dict(entry)
    raise KeyError(
        f"{key!r} is not in {reference.get('file', 'the GPU reference')}; allowed: {[e['key'] for e in entries]}"
    )


def gpu_reference_source(reference: Mapping[str, Any]) -> str:
    """One line: file, device, torch version, date and provenance of the reference figures."""
    return (
        f"{reference.get('file', GPU_REFERENCE_FILE).split('/')[-1]}: {reference['device']}, torch {reference['torch']}, "
        f"{reference['date']} — {reference['provenance']}"
    )


def format_gpu_reference(reference: Mapping[str, Any]) -> str:
    """The reference figures as text, headed by their source line and shape (chapters 07-08 print this)."""
    shape = reference["shape"]
    lines = [
        gpu_reference_source(reference),
        f"shape: {shape['model']} with {shape['hidden']} filters, {shape['channels']}x{shape['image_size']}x"
        f"{shape['image_size']}, {shape['n_way']}-way {shape['k_shot']}-shot, {shape['n_query']} queries, "
        f"{shape['tasks']} tasks, {shape['inner_steps']} inner steps, {shape['dtype']}",
    ]
    for m in reference["measurements"]:
        lines.append(f"  {m['label']:<52} {m['value']:>8g} {m['unit']}")
    for o in reference.get("observations", []):
        value = f"{o['value']:g} {o.get('unit', '')}" if isinstance(o["value"], (int, float)) else o["value"]
        lines.append(f"  {o['label']}: {value}")
    return "\n".join(lines)


def gpu_results_table(results: Sequence[Mapping[str, Any]]) -> str:
    """A text table of the benchmark JSON files (``bench.load_reports()``), each labelled with its device."""
    lines = []
    for payload in results:
        rows = payload.get("rows", [])
        if payload.get("kind") != "mlcourse.bench" or not rows:
            continue
        lines.append(
            f"== {payload['file'].split('/')[-1]}: {rows[0]['device_name']} [{rows[0]['device']}], "
            f"torch {rows[0]['torch']}, {rows[0]['date']}"
        )
        lines.append(bench.report_table(rows).rsplit("\ndevice:", 1)[0])
    return "\n".join(lines) if lines else "no benchmark results found"


EAGER_ROWS = (
    "vectorised",
    "per-task loop",
    "batched",
    "learn2learn",
    "higher",
    "torchopt",
)  # rows run without torch.compile


def bench_rankings(payload: Mapping[str, Any]) -> list[str]:
    """One line per shape and algorithm of a benchmark file (``bench.load_reports()``): its rows from the fastest
    to the slowest with their rates, so that chapter 07 prints each comparison instead of typing it."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in payload.get("rows", []):
        groups.setdefault((row["shape"], row["algorithm"]), []).append(row)
    name = str(payload.get("file", "this run")).split("/")[-1]
    lines = []
    for (shape, algo), rows in groups.items():
        ordered = sorted(rows, key=lambda r: -r["rate"])
        ranking = " > ".join(f"{r['implementation']} {r['rate']:.1f}" for r in ordered)
        top = ordered[0]
        achieved = (
            f", {top['gflops']:.1f} GFLOP/s = {100 * top['fraction_of_matmul_peak']:.0f} % of the measured matmul peak"
            if top.get("gflops") is not None
            else ""
        )
        lines.append(f"{name} {shape} {algo}: {ranking} {rows[0]['unit']} (fastest: {top['implementation']}{achieved})")
    return lines


def bench_changes(before: Mapping[str, Any], after: Mapping[str, Any], *, same_within: float = 0.05) -> list[str]:
    """Rows measured in both benchmark files at the same shape, one line per algorithm: each implementation's rate
    in ``before`` and ``after`` and whether it rose or fell (a change below ``same_within``, as a fraction, reads
    "about the same"; chapter 07: before and after keeping freed memory)."""
    if not 0 <= same_within < 1:
        raise ValueError(f"same_within={same_within!r} is not allowed; allowed: 0 <= same_within < 1")
    old = {(r["shape"], r["algorithm"], r["implementation"]): r["rate"] for r in before.get("rows", [])}
    per_algo: dict[tuple[str, str], list[str]] = {}
    for r in after.get("rows", []):
        was = old.get((r["shape"], r["algorithm"], r["implementation"]))
        if was is None:
            continue
        change = r["rate"] / was - 1
        word = "about the same" if abs(change) < same_within else "faster" if change > 0 else "slower"
        kind = "eager" if r["implementation"] in EAGER_ROWS else "compiled"
        per_algo.setdefault((r["shape"], r["algorithm"]), []).append(
            f"{r['implementation']} ({kind}) {was:.1f} -> {r['rate']:.1f} {r['unit']} ({word}, {100 * change:+.0f} %)"
        )
    return [f"{shape} {algo}: " + "; ".join(parts) for (shape, algo), parts in per_algo.items()]
