"""Chapter 08's measurements: exact graph memory (second-order MAML linear in the inner steps, first-order
methods constant), exponent fits, sweeps and the widget's figure (no timing asserts)."""

from __future__ import annotations

from dataclasses import asdict, replace

import matplotlib
import pytest

matplotlib.use("Agg")

from mlcourse.cli import main  # noqa: E402
from mlcourse.course.ch08 import command as ch08_command  # noqa: E402
from mlcourse.course.ch08 import remedies as ch08_remedies
from mlcourse.course.ch08 import sweeps as ch08_sweeps

TINY = ch08_sweeps.Point(n_way=3, k_shot=1, n_query=2, meta_batch=2, inner_steps=1, hidden=4, image_size=8)


def test_fit_exponent_and_line():
    assert ch08_sweeps.fit_exponent([1, 2, 4, 8], [3, 12, 48, 192])[0] == pytest.approx(2.0)
    b, a = ch08_sweeps.fit_linear([1, 2, 3], [5, 7, 9])
    assert (b, a) == (pytest.approx(2.0), pytest.approx(3.0))
    with pytest.raises(ValueError, match="at least 2"):
        ch08_sweeps.fit_exponent([1], [1])


def test_memory_second_order_linear_first_order_constant():
    rows = ch08_sweeps.memory_vs_inner_steps(("maml", "fomaml", "reptile", "anil"), (1, 2, 3, 5), base=TINY)
    mem = {(r["algorithm"], r["value"]): r["graph_held_bytes"] for r in rows}
    step = mem["maml", 2] - mem["maml", 1]
    assert step > 0
    for k in (3, 5):
        assert mem["maml", k] == mem["maml", 1] + (k - 1) * step  # exactly linear
    for algo in ("fomaml", "reptile"):
        assert len({mem[algo, k] for k in (1, 2, 3, 5)}) == 1  # constant
    assert mem["anil", 5] - mem["anil", 1] < 0.05 * mem["anil", 1]  # only the head's tensors grow
    assert mem["fomaml", 1] < mem["maml", 1]


def test_sweep_rows_and_plot():
    rows = ch08_sweeps.sweep(["maml", "protonet"], "inner_steps", [1, 2], base=TINY, repeats=1, progress=False)
    assert {(r["algorithm"], r["value"]) for r in rows} == {("maml", 1), ("maml", 2)}  # protonet has no inner loop
    rows = ch08_sweeps.sweep(["fomaml", "protonet"], "n_way", [2, 3], base=TINY, repeats=1, progress=False)
    assert len(rows) == 4 and all(r["seconds"] > 0 and r["graph_held_bytes"] > 0 for r in rows)
    ex = ch08_sweeps.exponents(rows, "graph_held_bytes")
    assert set(ex["n_way"]) == {"fomaml", "protonet"}
    fig = ch08_sweeps.plot_sweep(rows, "seconds")
    assert len(fig.axes[0].lines) == 2
    with pytest.raises(ValueError, match="allowed"):
        ch08_sweeps.sweep(["maml"], "depth", [1], base=TINY)


def test_implementation_sweep_and_widget_figure():
    rows = ch08_sweeps.implementation_sweep("maml", "meta_batch", [1, 2], base=TINY, repeats=1, progress=False)
    assert {r["implementation"] for r in rows} >= {"vectorised", "batched", "per-task loop"}
    assert "batched" not in {
        r["implementation"]
        for r in ch08_sweeps.implementation_sweep("reptile", "meta_batch", [1], base=TINY, repeats=1, progress=False)
    }  # Reptile has no batched step
    w = ch08_sweeps.scaling_widget(inner_steps=1, k_shot=1, base=TINY, display=False)
    assert w.figure is not None and w.output.draws == 1
    w.controls.children[0].value = 2  # moving the slider re-measures and redraws
    assert w.output.draws == 2


def test_main_writes_json(tmp_path, monkeypatch):
    monkeypatch.setattr(ch08_command, "FAST_GRID", {**ch08_sweeps.FAST_GRID, "hidden": [4, 8]})
    monkeypatch.setattr(ch08_command, "FAST_BASE", replace(TINY))
    out = tmp_path / "s.json"
    assert (
        main(
            [
                "scaling",
                "--device",
                "cpu",
                "--algorithms",
                "fomaml",
                "--axes",
                "hidden",
                "--repeats",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    import json

    payload = json.loads(out.read_text())
    assert payload["kind"] == "mlcourse.scaling" and payload["device"] == "cpu" and len(payload["rows"]) == 2
    assert payload["command"] == "mlcourse scaling --repeats 1" and payload["wall_time_s"] >= 0
    # chapter 08 reads it back: where it was measured, and the exponents as a table (nan where none was fitted)
    loaded = ch08_sweeps.load_scaling(out)
    assert "s.json (mlcourse scaling --repeats 1)" in ch08_sweeps.scaling_source(
        loaded
    ) and "4 filters" in ch08_sweeps.scaling_source(loaded)
    table = ch08_sweeps.exponent_table(loaded["exponents_seconds"], ["fomaml", "maml"], ["hidden"]).splitlines()
    assert table[0].split("|")[1:] == ["   fomaml ", "     maml"] and table[1].endswith("nan")
    out.write_text('{"kind": "mlcourse.remedies"}')
    with pytest.raises(ValueError, match="not a scaling sweep"):
        ch08_sweeps.load_scaling(out)


@pytest.mark.slow  # checkpointed MAML and iMAML at six inner steps: about a minute on 2 cores
def test_remedies_sweep_memory_properties_and_file(tmp_path, monkeypatch):
    """The remedies sweep at a tiny shape: checkpointed and truncated MAML hold less than MAML, iMAML's graph does not
    grow with the inner steps; the command writes a file chapter 08 reads back into a table and a figure."""
    monkeypatch.setattr(ch08_command, "FAST_BASE", replace(TINY))
    monkeypatch.setattr(ch08_command, "FAST_GRID", {**ch08_sweeps.FAST_GRID, "inner_steps": [1, 6]})
    out = tmp_path / "remedies.json"
    assert main(["scaling", "--remedies", "--device", "cpu", "--repeats", "1", "--out", str(out)]) == 0
    payload = ch08_remedies.load_remedies(out)
    peak = {(r["variant"], r["inner_steps"]): r["graph_peak_bytes"] for r in payload["rows"]}
    assert set(payload["summary"]) == set(ch08_remedies.REMEDY_VARIANTS)
    assert peak["maml", 6] > 2 * peak["maml", 1]  # linear in K
    for variant in ("checkpointed", "truncated-1", "fomaml", "imaml"):
        assert peak[variant, 6] < peak["maml", 6] / 2, variant
    assert peak["imaml", 6] == peak["imaml", 1]  # nothing of the inner loop is kept
    assert peak["truncated-5", 1] == peak["maml", 1]  # k >= K: MAML
    assert payload["summary"]["imaml"]["graph_growth"] == 1.0
    assert payload["command"] == "mlcourse scaling --remedies --repeats 1" and payload["threads"] >= 1
    table = ch08_remedies.remedies_table(payload)
    assert table.count("\n") == 1 + len(ch08_remedies.REMEDY_VARIANTS) and "| imaml |" in table
    assert "remedies.json" in ch08_remedies.remedies_source(payload)
    assert len(ch08_remedies.plot_remedies(payload).axes[0].lines) == len(ch08_remedies.REMEDY_VARIANTS)
    out.write_text('{"kind": "mlcourse.scaling"}')
    with pytest.raises(ValueError, match="not a remedies sweep"):
        ch08_remedies.load_remedies(out)


@pytest.mark.slow  # dense Hessians and six iMAML meta-gradients at 100 inner steps
def test_imaml_cg_errors_fall_to_rounding():
    errors = ch08_remedies.imaml_cg_errors((1, 3, 10, 20))
    assert errors[1] > errors[3] > errors[10] > errors[20] and errors[20] < 1e-10, errors


def test_committed_full_size_sweep_is_complete_at_chapter_03s_shape_with_exact_memory_laws():
    """The sweep chapter 08 reads in both modes: Conv-4 at 64 filters on 28 px, every algorithm on every point of the
    full grid, and the graph memory obeying the laws section 2 derives (independent of timing noise)."""
    payload = ch08_sweeps.load_scaling()
    assert payload["base"] == asdict(ch08_sweeps.FULL_BASE) and payload["base"]["hidden"] == 64
    assert payload["base"]["image_size"] == 28
    for axis in ch08_sweeps.AXES:
        for algo in ch08_sweeps.SCALING_ALGORITHMS:
            values = [r["value"] for r in ch08_sweeps.axis_rows(payload, axis, [algo])]
            expected = [] if (algo == "protonet" and axis == "inner_steps") else ch08_sweeps.FULL_GRID[axis]
            assert values == expected, (axis, algo)
    mem = {(r["algorithm"], r["value"]): r["graph_held_bytes"] for r in ch08_sweeps.axis_rows(payload, "inner_steps")}
    steps = ch08_sweeps.FULL_GRID["inner_steps"]
    per_step = mem["maml", 2] - mem["maml", 1]
    assert per_step > 0 and all(mem["maml", k] == mem["maml", 1] + (k - 1) * per_step for k in steps)
    assert len({mem["fomaml", k] for k in steps}) == 1 and len({mem["reptile", k] for k in steps}) == 1
    assert mem["fomaml", 1] < mem["maml", 1]
    shots = {r["value"]: r["graph_held_bytes"] for r in ch08_sweeps.axis_rows(payload, "k_shot", ["fomaml"])}
    assert len(set(shots.values())) == 1  # first order keeps only the query pass
    # the stored exponents are the fit of the stored rows
    assert payload["exponents_seconds"] == ch08_sweeps.exponents(payload["rows"], "seconds")


def test_axis_rows_and_memory_table():
    rows = [
        {"algorithm": "maml", "axis": "inner_steps", "value": k, "graph_held_bytes": (1 + k) * 2**20} for k in (1, 2, 4)
    ] + [{"algorithm": "fomaml", "axis": "k_shot", "value": 1, "graph_held_bytes": 2**20}]
    payload = {"rows": rows}
    assert [r["value"] for r in ch08_sweeps.axis_rows(payload, "inner_steps")] == [1, 2, 4]
    assert ch08_sweeps.axis_rows(payload, "inner_steps", ["fomaml"]) == []
    with pytest.raises(ValueError, match="unknown axis 'depth'"):
        ch08_sweeps.axis_rows(payload, "depth")
    table = ch08_sweeps.memory_table(ch08_sweeps.axis_rows(payload, "inner_steps"), ["maml"]).splitlines()
    assert table[0].split("|")[1].strip() == "K=1" and table[1].split("|")[1].strip() == "2.00"
    assert table[1].endswith("1.000 MiB")  # one MiB more per inner step
