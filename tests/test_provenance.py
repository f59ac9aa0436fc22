"""One provenance record, made by ``mlcourse.provenance.provenance`` and read back by ``mlcourse.provenance.read``
(which also reads the files committed before the record existed)."""

from __future__ import annotations

import ast
import json

import pytest
import torch

from mlcourse import provenance
from mlcourse.config import REPO_ROOT

PACKAGE = REPO_ROOT / "mlcourse"


def test_record_has_every_key_and_reads_back_unchanged():
    record = provenance.provenance("cpu", command="mlcourse x", wall_time_s=12.34)
    assert set(record) == set(provenance.KEYS)
    assert record["device"] == "cpu" and record["device_name"].startswith("CPU")
    assert record["torch"] == str(torch.__version__) and record["threads"] == torch.get_num_threads()
    assert record["wall_time_s"] == 12.3 and record["command"] == "mlcourse x"
    assert provenance.read(record) == record


def test_files_made_before_the_record_are_read_into_its_keys():
    legacy = {"device": "CPU: Some Xeon (2 cores)", "device_type": "cpu", "torch_version": "2.11.0", "x": 1}
    read = provenance.read(legacy)
    assert read["device"] == "cpu" and read["device_name"] == "CPU: Some Xeon (2 cores)" and read["torch"] == "2.11.0"
    assert read["x"] == 1 and read["threads"] is None and "torch_version" not in read and "device_type" not in read
    # chapter weights saved only the device's name
    assert provenance.read({"device": "an old machine"})["device_name"] == "an old machine"


def test_every_committed_results_file_reads_into_a_full_record():
    files = sorted((REPO_ROOT / "results").glob("*.json")) + sorted((REPO_ROOT / "results").glob("omniglot/*/*.json"))
    assert files
    for path in files:
        read = provenance.read(json.loads(path.read_text()))
        assert read["device_name"] and read["date"], path


def _dict_keys(tree: ast.AST) -> set[str]:
    return {
        k.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict)
        for k in node.keys
        if isinstance(k, ast.Constant)
    }


def test_no_module_writes_a_provenance_record_by_hand():
    """The legacy keys are read (provenance.read), never written: every record comes from provenance()."""
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "provenance.py":
            continue
        keys = _dict_keys(ast.parse(path.read_text()))
        assert not keys & {"torch_version", "device_type"}, (
            f"{path.relative_to(REPO_ROOT)} writes {keys & {'torch_version', 'device_type'}}"
        )


def test_load_measurement_reads_the_newest_file_of_its_kind(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "MEASUREMENTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no x-cpu-\*\.json in .*; make one with mlcourse x"):
        provenance.load_measurement("mlcourse.x", "an x file", "mlcourse x", pattern="x-cpu-*.json")
    for date in ("2026-01-01", "2026-02-01"):
        (tmp_path / f"x-cpu-{date}.json").write_text(json.dumps({"kind": "mlcourse.x", "date": date}))
    newest = provenance.load_measurement("mlcourse.x", "an x file", "mlcourse x", pattern="x-cpu-*.json")
    assert newest["date"] == "2026-02-01" and newest["file"].endswith("x-cpu-2026-02-01.json")
    (tmp_path / "y.json").write_text(json.dumps({"kind": "mlcourse.y"}))
    with pytest.raises(ValueError, match=r"y\.json is not an x file \(kind 'mlcourse\.x', from mlcourse x\)"):
        provenance.load_measurement("mlcourse.x", "an x file", "mlcourse x", pattern="*", path=tmp_path / "y.json")
