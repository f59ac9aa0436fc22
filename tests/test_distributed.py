"""Issue 7, part 1: data-parallel meta-training with torch.distributed (mlcourse.distributed, chapter 08).

One distributed meta-step over 2 CPU processes (gloo on 127.0.0.1) must give the same updated parameters as
the single-process step on the same meta-batch (float64, relative error < 1e-10), for second-order MAML and
for Prototypical Networks, also when the tasks do not split evenly (5 tasks -> 3 + 2). Processes are started
with torch.multiprocessing (mlcourse.distributed.launch) and once with torchrun itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from mlcourse import distributed as D
from mlcourse.algorithms import make_learner
from mlcourse.models import Conv4

pytestmark = pytest.mark.slow  # torchrun processes: `make test` only, not `make test-fast`

ROOT = Path(__file__).resolve().parents[1]
F64 = torch.float64
TOL = 1e-10
# (algorithm, inner steps, tasks in the meta-batch): 5 tasks split 3 + 2 checks the task-count weighting.
CASES = [("maml", 2, 4), ("maml", 1, 5), ("protonet", 1, 4), ("protonet", 1, 5)]


def build(algo: str, inner_steps: int, seed: int = 0):
    torch.manual_seed(seed)
    model = Conv4(in_channels=1, n_out=3, hidden=4, image_size=12).to(F64)
    learner = make_learner(algo, model, inner_lr=0.1, inner_steps=inner_steps, first_order=False, vectorise=True)
    return learner, torch.optim.SGD(learner.parameters(), lr=0.5)


def batch_for(tasks: int, seed: int = 1):
    return D.synthetic_image_batch(tasks, n_way=3, k_shot=2, n_query=2, image_size=12, seed=seed, dtype=F64)


def flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def single_process_step(algo: str, inner_steps: int, tasks: int) -> dict:
    learner, opt = build(algo, inner_steps)
    before = flat(learner).clone()
    opt.zero_grad(set_to_none=True)
    out = learner(batch_for(tasks))
    out.loss.backward()
    opt.step()
    return {
        "before": before,
        "after": flat(learner),
        "loss": float(out.loss.detach()),
        "metrics": {k: v.clone() for k, v in out.metrics.items()},
    }


def _distributed_worker(cases) -> dict:
    """Runs in every rank (launch / spawn): one distributed meta-step per case (+ the gradient-presence check)."""
    results = {"presence": _presence_check()}
    for algo, inner_steps, tasks in cases:
        learner, opt = build(algo, inner_steps)
        D.broadcast_parameters(learner)
        local = D.local_slice(batch_for(tasks))
        out = D.distributed_meta_step(learner, opt, batch_for(tasks))
        results[(algo, inner_steps, tasks)] = {
            "after": flat(learner),
            "loss": float(out.loss),
            "local_tasks": local.num_tasks,
            "metrics": {k: v.clone() for k, v in out.metrics.items()},
            "rank": D.get_rank(),
            "world": D.get_world_size(),
            "main": D.is_main_process(),
        }
    return results


@pytest.fixture(scope="module")
def two_ranks():
    return D.launch(_distributed_worker, 2, CASES, threads_per_process=1)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


@pytest.mark.parametrize("case", CASES, ids=[f"{a}-steps{s}-tasks{t}" for a, s, t in CASES])
def test_distributed_step_equals_single_process(two_ranks, case):
    ref = single_process_step(*case)
    update_ref = ref["after"] - ref["before"]
    assert update_ref.norm() > 0
    sizes = D.split_sizes(case[2], 2)
    for rank, results in enumerate(two_ranks):
        got = results[case]
        assert (got["rank"], got["world"], got["main"]) == (rank, 2, rank == 0)
        assert got["local_tasks"] == sizes[rank]
        # The update (hence the meta-gradient: plain SGD) and the parameters themselves.
        assert rel(got["after"] - ref["before"], update_ref) < TOL, (
            case,
            rank,
            rel(got["after"] - ref["before"], update_ref),
        )
        assert rel(got["after"], ref["after"]) < TOL
        assert abs(got["loss"] - ref["loss"]) <= TOL * abs(ref["loss"])
        assert set(got["metrics"]) == set(ref["metrics"])
        for key, value in ref["metrics"].items():
            assert got["metrics"][key].shape == value.shape == (case[2],)
            assert torch.allclose(got["metrics"][key], value, rtol=1e-10, atol=1e-12), key
    # Both ranks hold bit-identical parameters (one logical run).
    assert torch.equal(two_ranks[0][case]["after"], two_ranks[1][case]["after"])


def test_single_process_fallbacks(monkeypatch):
    """Without WORLD_SIZE nothing is initialised and every helper is the single-process identity."""
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    ctx = D.init_from_env(device="cpu")
    assert (ctx.rank, ctx.world_size, ctx.distributed, ctx.is_main) == (0, 1, False, True)
    assert not D.is_distributed() and D.is_main_process() and D.get_world_size() == 1
    batch = batch_for(3)
    assert D.local_slice(batch) is batch
    # distributed_meta_step in one process == the plain step.
    ref = single_process_step("maml", 1, 3)
    learner, opt = build("maml", 1)
    out = D.distributed_meta_step(learner, opt, batch)
    assert torch.equal(flat(learner), ref["after"]) and float(out.loss) == ref["loss"]


def test_split_sizes_match_taskbatch_split():
    for total in range(1, 9):
        for world in range(1, total + 1):
            assert D.split_sizes(total, world) == [b.num_tasks for b in batch_for(total).split(world)]
    with pytest.raises(ValueError, match="cannot share 2 tasks among 3 processes"):
        D.split_sizes(2, 3)


def test_torchrun_two_processes(tmp_path):
    """The real launcher: torchrun --nproc-per-node 2 runs init_from_env + distributed_meta_step; rank 0 alone
    writes its result (the checkpoint rule), which equals the single-process step."""
    script = tmp_path / "step.py"
    script.write_text(
        textwrap.dedent(f"""
        import json, sys, torch
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from mlcourse import distributed as D
        import test_distributed as T
        ctx = D.init_from_env(device="cpu", timeout_s=120)
        assert ctx.distributed and ctx.world_size == 2 and ctx.backend == "gloo", ctx
        learner, opt = T.build("maml", 2)
        D.broadcast_parameters(learner)
        out = D.distributed_meta_step(learner, opt, T.batch_for(5))
        if D.is_main_process():
            torch.save({{"after": T.flat(learner), "loss": float(out.loss)}}, {str(tmp_path)!r} + "/rank0.pt")
        with open({str(tmp_path)!r} + f"/seen{{ctx.rank}}.json", "w") as f:
            json.dump({{"rank": ctx.rank, "main": D.is_main_process()}}, f)
        D.cleanup()
    """)
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": os.environ.get("GLOO_SOCKET_IFNAME", "lo")}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(D.free_port()),
        str(script),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.glob("rank*.pt")) == ["rank0.pt"]
    seen = [json.loads((tmp_path / f"seen{r}.json").read_text()) for r in range(2)]
    assert [s["main"] for s in seen] == [True, False]
    got = torch.load(tmp_path / "rank0.pt")
    ref = single_process_step("maml", 2, 5)
    assert rel(got["after"] - ref["before"], ref["after"] - ref["before"]) < TOL
    assert abs(got["loss"] - ref["loss"]) <= TOL * abs(ref["loss"])


def test_measure_speedup_reports_each_world_size():
    report = D.measure_speedup(
        "protonet", (1, 2), meta_batch_size=4, hidden=4, image_size=12, n_query=2, steps=2, warmup=1
    )
    assert set(report["results"]) == {1, 2} and report["speedup"][1] == 1.0
    for r in report["results"].values():
        assert len(r["times_s"]) == 2 and all(t > 0 for t in r["times_s"]) and r["cpu_s"] > 0
    assert report["config"]["algo"] == "protonet"


def test_uneven_gradient_presence_is_handled(two_ranks):
    """A parameter with a gradient on one rank only counts zero on the other (no hang, no mismatch)."""
    for results in two_ranks:
        r = results["presence"]
        assert r["a"] == pytest.approx(0.5 * 1.0 + 0.5 * 3.0)  # weights 1/2, 1/2 of grads 1 and 3
        assert r["b"] == pytest.approx(0.5 * 2.0)  # only rank 0 had one
        assert r["c"] is None  # nobody had one: stays None (the optimiser skips it)


def _presence_check() -> dict:
    rank = D.get_rank()
    m = torch.nn.Module()
    m.a, m.b, m.c = (torch.nn.Parameter(torch.zeros(1, dtype=F64)) for _ in range(3))
    m.a.grad = torch.tensor([1.0 if rank == 0 else 3.0], dtype=F64)
    if rank == 0:
        m.b.grad = torch.tensor([2.0], dtype=F64)
    D.allreduce_gradients(m, 1, 2)
    return {"a": float(m.a.grad), "b": float(m.b.grad), "c": None if m.c.grad is None else float(m.c.grad)}


def test_mlcourse_train_under_torchrun_matches_one_process(tmp_path):
    """`mlcourse train` unchanged under torchrun (gloo, 2 CPU processes): one logical run — rank 0 alone
    writes the checkpoint and results, and the final parameters equal a single-process run's."""
    from mlcourse.checkpoint import load_checkpoint

    common = [
        "train",
        "--algo",
        "maml",
        "--data",
        "sinusoid",
        "--iterations",
        "3",
        "--meta-batch",
        "4",
        "--val-tasks",
        "0",
        "--test-tasks",
        "4",
        "--device",
        "cpu",
        "--no-progress",
        "--seed",
        "3",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    single = tmp_path / "single"
    subprocess.run(
        [sys.executable, "-m", "mlcourse.cli", *common, "--out", str(single)],
        check=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    multi = tmp_path / "multi"
    port = D.free_port()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(port),
            "-m",
            "mlcourse.cli",
            *common,
            "--out",
            str(multi),
        ],
        check=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    a = load_checkpoint(single / "checkpoint.pt")["learner"]
    b = load_checkpoint(multi / "checkpoint.pt")["learner"]
    assert sorted(p.name for p in multi.iterdir() if not p.name.startswith(".")) == ["checkpoint.pt", "results.json"]
    for name in a:
        err = (a[name] - b[name]).abs().max().item() / max(a[name].abs().max().item(), 1e-12)
        assert err < 1e-5, f"{name}: relative difference {err:.2e} between torchrun x2 and one process"
