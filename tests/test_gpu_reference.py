"""Chapters 07-08 quote GPU figures only from benchmarks/results/gpu-reference-h200-prototype.json (device, torch
version, date, shape, provenance), printed by the notebooks, never typed into their text or code."""

from __future__ import annotations

import json
import re

import pytest

from mlcourse.config import REPO_ROOT
from mlcourse.course import bench_reports

REFERENCE = REPO_ROOT / "benchmarks" / "results" / "gpu-reference-h200-prototype.json"
NOTEBOOKS = REPO_ROOT / "notebooks"


def _text(name: str) -> str:
    """Every cell's source of one notebook (outputs excluded)."""
    nb = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
    return "\n".join(c["source"] if isinstance(c["source"], str) else "".join(c["source"]) for c in nb["cells"])


def test_reference_file_exists_with_its_provenance() -> None:
    assert REFERENCE.is_file()
    ref = bench_reports.load_gpu_reference()
    assert ref["device"] == "NVIDIA H200" and ref["torch"].startswith("2.11")
    assert re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", ref["date"])
    assert "prototype" in ref["provenance"] and "not yet reproduced with mlcourse bench" in ref["provenance"]
    assert ref["how_measured"] and ref["shape"]["bench_shape"] == "conv4-32" and ref["shape"]["tasks"] == 32
    values = {m["key"]: (m["value"], m["unit"]) for m in ref["measurements"]}
    assert values["learn2learn_maml"] == (16, "tasks/s") and values["vmap_maml"] == (196, "tasks/s")
    assert values["learn2learn_fomaml"] == (45, "tasks/s") and values["vmap_fomaml"] == (483, "tasks/s")
    assert values["protonet_batched"] == (1190, "episodes/s") and values["vmap_maml_peak_memory"] == (17.6, "GiB")
    assert bench_reports.gpu_reference_entry(ref, "h200_fp32_peak")["value"] == 67
    text = bench_reports.format_gpu_reference(ref)
    assert text.startswith("gpu-reference-h200-prototype.json: NVIDIA H200, torch 2.11,") and "196 tasks/s" in text
    with pytest.raises(KeyError, match="allowed"):
        bench_reports.gpu_reference_entry(ref, "nope")


def test_reference_file_is_not_mistaken_for_a_bench_result() -> None:
    from mlcourse import bench

    assert all(not p["file"].endswith(REFERENCE.name) for p in bench.load_reports())


def test_load_gpu_reference_rejects_other_files(tmp_path) -> None:
    other = tmp_path / "x.json"
    other.write_text(json.dumps({"kind": "mlcourse.bench", "rows": []}))
    with pytest.raises(ValueError, match="not a GPU reference file"):
        bench_reports.load_gpu_reference(other)


def typed_forms(reference: dict) -> set[str]:
    """How a figure of the reference file would look typed into a notebook: each value with its unit ("196 tasks/s",
    "17.6 GiB", "67 TFLOP"), the distinctive values (three or more digits) alone, with or without a thousands
    separator, and every ratio of two figures in the same unit to one decimal ("12.2x", "12.2×")."""
    figures = [m for m in reference["measurements"] if isinstance(m.get("value"), (int, float))]
    figures.append(reference["reference_peak"])
    forms: set[str] = set()
    for m in figures:
        value, unit = m["value"], m["unit"]
        forms.add(f"{value:g} {unit.split('/')[0]}")
        if abs(value) >= 100:
            forms |= {f"{value:g}", f"{value:,.0f}"}
    for a in figures:
        for b in figures:
            if a is not b and a["unit"] == b["unit"] and b["value"]:
                ratio = f"{a['value'] / b['value']:.1f}"
                forms |= {f"{ratio}x", f"{ratio}×", f"{ratio} x"}
    return forms


@pytest.mark.parametrize("name", ["07_tools.ipynb", "08_scalability.ipynb"])
def test_chapters_print_the_gpu_figures_instead_of_typing_them(name: str) -> None:
    text = _text(name)
    assert "load_gpu_reference()" in text
    forms = typed_forms(json.loads(REFERENCE.read_text()))
    assert {"196 tasks", "17.6 GiB", "67 TFLOP", "1,190", "12.2x"} <= forms  # the property reaches every kind of figure
    found = sorted(t for t in forms if t in text)
    assert not found, f"{name} types GPU figures {found}: print them from {REFERENCE.name}"


def test_no_chapter_points_to_files_a_student_does_not_have() -> None:
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        text = _text(path.name)
        assert "GPU.md" not in text and "../shared" not in text, path.name
