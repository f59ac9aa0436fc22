"""``mlcourse bench`` (bench.BenchOptions + bench.bench_command) at the tiny CPU shape: it completes, prints every row and writes JSON.
No timing asserts (shared machines); the memory counter and the learn2learn loader are checked exactly."""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mlcourse import bench, peers
from mlcourse.algorithms.batched import BATCHED_ALGORITHMS
from mlcourse.cli import main
from mlcourse.hostmemory import cpu_allocator

REPO = Path(__file__).resolve().parents[1]


def test_main_tiny_prints_all_rows_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--tiny", "--device", "cpu", "--repeats", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    payload = json.loads(out.read_text())
    rows = payload["rows"]
    have_l2l = bench.load_learn2learn() is not None
    have = {name: peers.load_peer(name)[0] is not None for name in peers.PEERS}

    def measured(algo: str, impl: str) -> bool:
        if impl == bench.L2L:
            return algo in bench.L2L_ALGORITHMS and have_l2l
        if impl in peers.PEERS:
            return algo in peers.PEER_ALGORITHMS[impl] and have[impl]
        if impl == bench.BATCHED:
            return algo in BATCHED_ALGORITHMS
        return True

    expected = {(a, i) for a in bench.DEFAULT_ALGORITHMS for i in bench.QUICK_IMPLEMENTATIONS if measured(a, i)}
    assert {(r["algorithm"], r["implementation"]) for r in rows} == expected
    table_lines = [line for line in printed.splitlines() if line.startswith("tiny ")]
    assert len(table_lines) == len(rows)
    for r in rows:
        # the rate is the tasks of one step over the best of the timed rounds, and the ratios are rates' ratios
        assert r["seconds_min"] == min(r["seconds"]) and len(r["seconds"]) == 1
        assert math.isclose(r["rate"], r["tasks"] / r["seconds_min"], rel_tol=1e-12)
        loop = next(x for x in rows if x["algorithm"] == r["algorithm"] and x["implementation"] == bench.LOOP)
        assert math.isclose(r["ratio_to_loop"], r["rate"] / loop["rate"], rel_tol=1e-12)
        assert r["device"] == "cpu" and r["torch"] == str(torch.__version__) and r["date"]
        assert r["allocator"] == cpu_allocator()  # timings depend on how host memory is allocated
        assert r["unit"] == ("episodes/s" if r["algorithm"] in ("protonet", "matchingnet") else "tasks/s")
        assert r["peak_memory_method"]
        if r["implementation"] == bench.VECTORISED:
            assert r["graph_saved_bytes"] is None and "torch.func" in r["graph_saved_method"]
        elif r["implementation"] not in peers.PEERS:  # higher and TorchOpt back-propagate task by task
            assert r["graph_saved_bytes"] > 0
        # achieved GFLOP/s: the algorithm's counted FLOPs over the best round, against this run's matmul rate
        same_algorithm = {x["flops"] for x in rows if x["algorithm"] == r["algorithm"]}
        assert len(same_algorithm) == 1 and r["flops"] > 0
        assert math.isclose(r["gflops"], r["flops"] / r["seconds_min"] / 1e9, rel_tol=1e-12)
        assert math.isclose(r["fraction_of_matmul_peak"], r["gflops"] / r["matmul_peak_gflops"], rel_tol=1e-12)
        peer_rates = [
            x["rate"]
            for x in rows
            if x["algorithm"] == r["algorithm"] and x["implementation"] in bench.PEER_IMPLEMENTATIONS
        ]
        if peer_rates:
            assert math.isclose(r["ratio_to_fastest_peer"], r["rate"] / max(peer_rates), rel_tol=1e-12)
        assert r["ratio_to_loop"] is not None
    assert f"wrote {out}" in printed


def test_unknown_algorithm_is_refused():
    with pytest.raises(ValueError, match="allowed"):
        bench.run_benchmark(["tiny"], ["imaml"], "cpu", 1)
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--algorithms", "nope"])
    assert exc.value.code == 2


def test_graph_memory_counts_saved_storages_exactly():
    w = torch.randn(100, 100, dtype=torch.float64, requires_grad=True)
    x = torch.randn(100, 100, dtype=torch.float64)
    # (x @ w) saves x (excluded: it exists anyway); tanh saves its output (80,000 bytes).
    counts = bench.graph_saved_bytes(lambda: torch.tanh(x @ w).sum(), exclude=[w, x])
    assert counts == {"held": 100 * 100 * 8, "peak": 100 * 100 * 8}
    with bench.GraphMemory() as mem:
        y = torch.tanh(x @ w).sum()
    assert (
        mem.held == 2 * 100 * 100 * 8
    )  # x (w's gradient needs it; x needs no gradient, so w is not saved) + tanh's output
    y.backward()  # frees the graph: nothing held any more
    assert mem.live == 0


def test_graph_memory_releases_a_graph_dropped_without_backward():
    """A saved output (tanh's) must not keep its own graph alive once the loss is dropped: repeated
    measurements would otherwise pile every measured graph up in the process."""
    w = torch.randn(50, 50, dtype=torch.float64, requires_grad=True)
    with bench.GraphMemory() as mem:
        y = torch.tanh(torch.tanh(w) @ w).sum()
    assert mem.held > 0
    del y
    gc.collect()
    assert mem.live == 0 and not mem.refs


def test_graph_memory_leaves_second_order_gradients_unchanged():
    w = torch.randn(6, 6, dtype=torch.float64, requires_grad=True)
    x = torch.randn(4, 6, dtype=torch.float64)

    def meta_loss() -> torch.Tensor:
        (g,) = torch.autograd.grad(torch.tanh(x @ w).pow(2).sum(), w, create_graph=True)
        return torch.tanh(x @ (w - 0.1 * g)).sum()

    (plain,) = torch.autograd.grad(meta_loss(), w)
    with bench.GraphMemory():
        loss = meta_loss()
    (measured,) = torch.autograd.grad(loss, w)
    assert torch.equal(plain, measured)


def test_learn2learn_loads_from_a_source_tree_without_its_init(tmp_path):
    """The GPU machine's path: only the pure-Python algorithm modules, no gym, no Cython extensions."""
    l2l = bench.load_learn2learn()
    assert l2l is not None, "learn2learn is missing: scripts/install_learn2learn.sh installs it (make setup)"
    source = Path(l2l.__file__).parent
    code = (
        "import sys; sys.modules['gym'] = None\n"  # importing gym would now fail
        "from mlcourse import bench\n"
        f"l2l = bench.load_learn2learn({str(source)!r})\n"
        "print(l2l.algorithms.MAML.__name__, l2l.algorithms.MetaSGD.__name__, 'learn2learn.data' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["MAML", "MetaSGD", "False"]


def test_l2l_step_gives_the_same_meta_gradient_as_ours():
    l2l = bench.load_learn2learn()
    assert l2l is not None, "learn2learn is missing: scripts/install_learn2learn.sh installs it (make setup)"
    shape = bench.Shape(n_way=3, k_shot=1, n_query=2, tasks=2, inner_steps=2, hidden=4, image_size=8, channels=1)
    batch = bench.synthetic_batch(shape, dtype=torch.float64)
    for algo in bench.L2L_ALGORITHMS:
        ours_model = bench.make_model(shape, dtype=torch.float64)
        theirs_model = bench.make_model(shape, dtype=torch.float64)
        ours, _ = bench.mlcourse_step(algo, ours_model, shape, batch, vectorise=True)
        theirs, _ = bench.l2l_step(l2l, algo, theirs_model, shape, batch)
        assert torch.allclose(ours(), theirs(), atol=1e-12)
        for p, q in zip(ours_model.parameters(), theirs_model.parameters()):
            assert torch.allclose(p.grad, q.grad, atol=1e-10, rtol=1e-8), algo


def test_load_results_reads_written_files(tmp_path):
    rows = [
        {
            "algorithm": "maml",
            "implementation": bench.VECTORISED,
            "ratio_to_learn2learn": 2.0,
            "ratio_to_loop": 2.0,
            "shape": "tiny",
        }
    ]
    bench.write_report(rows, tmp_path / "a.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.warns(UserWarning, match="broken"):
        found = bench.load_reports(tmp_path)
    assert len(found) == 1 and found[0]["summary"]["tiny/maml"]["vectorised_vs_learn2learn"] == 2.0


def test_committed_results_are_labelled_with_their_device():
    for payload in bench.load_reports():
        for r in payload["rows"]:
            assert r["device"] and r["device_name"] and r["torch"] and r["date"]


def _timed_row(implementation: str, rate: float, loop_rate: float, eager_rate: float) -> dict:
    return {
        "shape": "s",
        "algorithm": "maml",
        "implementation": implementation,
        "rate": rate,
        "ratio_to_learn2learn": None,
        "ratio_to_loop": rate / loop_rate,
        "ratio_to_eager": rate / eager_rate,
    }


@pytest.mark.parametrize(
    ("rates", "winner", "reason"),
    [
        ({"vectorised": 12.0, "compiled loop": 15.0}, "compiled loop", "compiled loop / loop 1.50x"),
        ({"vectorised": 12.0, "compiled loop": 9.0}, "vectorised", "compiling did not pay more (compiled loop / eager"),
        ({"vectorised": 8.0, "compiled loop": 9.0}, "per-task loop", "neither batching"),
        (
            {"vectorised": 12.0, "compiled loop": 15.0, "batched": 18.0},
            "batched",
            "(batched / eager vmap 1.50x) than compiling each task's function (compiled loop / eager vmap 1.25x)",
        ),
    ],
)
def test_winner_lines_name_the_fastest_path_and_the_measured_reason(rates, winner, reason):
    loop, peer = 10.0, 6.0
    rows = [_timed_row(impl, rate, loop, rates["vectorised"]) for impl, rate in rates.items()]
    rows += [_timed_row(bench.LOOP, loop, loop, rates["vectorised"]), _timed_row(bench.L2L, peer, loop, 1.0)]
    (line,) = bench.winner_lines(rows)
    best = max([*rates.values(), loop])
    assert line.startswith(f"s/maml: the {winner} path is fastest here")
    assert reason in line and f"{best / peer:.2f}x the fastest other library (learn2learn)" in line


def test_the_ratio_to_the_fastest_peer_is_given_by_medians_too():
    rows = [_timed_row("batched", 20.0, 10.0, 10.0), _timed_row(bench.L2L, 10.0, 10.0, 10.0)]
    rows[0]["seconds_median"], rows[1]["seconds_median"] = 0.5, 0.9  # 8 tasks: best 0.4 s and 0.8 s
    summary = bench.summarise(rows)["s/maml"]
    assert summary["best_vs_fastest_peer"] == 2.0 and summary["best_vs_fastest_peer_median"] == pytest.approx(1.8)
    assert "2.00x the fastest other library (learn2learn; 1.80x by the rounds' medians)" in bench.winner_lines(rows)[0]
