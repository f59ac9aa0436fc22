"""Chapter 01's from-scratch baseline: a fresh Conv-4 fitted to each test task's support set, nothing
meta-trained, evaluated on the same 600 test tasks as the shipped runs (``mlcourse scratch-baseline``; resumable).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import torch
import tyro
from torch import Tensor, nn
from torch.func import functional_call
from tqdm.auto import tqdm

from mlcourse import shipped
from mlcourse.algorithms.core import check_inner, sgd_steps, task_metrics
from mlcourse.algorithms.execution import CompiledCall, grad_func
from mlcourse.atomic import write_json
from mlcourse.checkpoint import load_results, save_results
from mlcourse.cliparse import arg
from mlcourse.config import resolve_device, seed_everything
from mlcourse.course.omniglot import load_omniglot_splits
from mlcourse.data import EpisodeSampler
from mlcourse.models import Conv4
from mlcourse.provenance import provenance
from mlcourse.stats import confidence_interval, mean_ci
from mlcourse.train import (
    TEST_SEED,
)


def _resumed(partial_path: str | Path | None, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The finished tasks of an interrupted from-scratch run with the same ``settings`` (else none)."""
    if partial_path is not None and Path(partial_path).exists():
        saved = json.loads(Path(partial_path).read_text())
        if saved.get("settings") == settings:
            return saved
    return {"per_task": [], "wall_time_s": 0.0}


def _fit_and_test(model: nn.Module, step: Callable, init: dict[str, Tensor], steps: int, batch: Any, t: int) -> float:
    """Task ``t`` of ``batch``: ``steps`` SGD steps from ``init`` on its support set, then its query accuracy."""
    params = init  # detached: torch.func.grad builds the only graph, inside the step
    for _ in range(steps):
        params = step(params, batch.support_x[t], batch.support_y[t])
    with torch.no_grad():
        out = functional_call(model, params, (batch.query_x[t],))
    return task_metrics(out, batch.query_y[t], True)[1]["query_accuracy"].item()


def _sgd_step(model: nn.Module, lr: float, compile_on: Optional[torch.device]) -> Callable:
    """``step(params, x, y)``: one plain SGD step of ``lr`` on the cross-entropy of ``model`` with ``params``,
    compiled for ``compile_on`` where it is given."""

    def sgd_step(params: dict[str, Tensor], x: Tensor, y: Tensor) -> dict[str, Tensor]:
        loss_fn = lambda p: task_metrics(functional_call(model, p, (x,)), y, True)[0]  # noqa: E731
        return sgd_steps(loss_fn, params, lr, 1, create_graph=False, grad_fn=grad_func)

    return CompiledCall(sgd_step, compile_on) if compile_on is not None else sgd_step


def scratch_baseline(
    test_sampler,
    num_tasks: int = 100,
    *,
    steps: int = 100,
    lr: float = 0.1,
    hidden: int = 32,
    image_size: int = 28,
    seed: int = 0,
    batch_size: int = 25,
    compile: bool = False,
    progress: bool = False,
    partial_path: str | Path | None = None,
) -> dict[str, Any]:
    """Train a fresh Conv4 on each task's support set only (no prior experience), then test on its queries.

    Every task starts from the same random initialisation (seeded) and takes ``steps`` plain SGD steps of
    size ``lr`` on the N*K support images (MAML's inner loop, :func:`~mlcourse.algorithms.core.sgd_steps`, from
    a random init), one task after another. ``compile=True`` compiles that one SGD step
    (:class:`~mlcourse.algorithms.execution.CompiledCall`: faster than eager on a CPU, and ``vmap`` over the tasks is
    slower, because every task has its own weights); where it cannot compile it says so in one line and runs
    eagerly. Tasks are drawn ``batch_size`` at a time; with ``partial_path`` the accuracies of every
    finished batch are written there atomically and a restarted call with the same settings resumes after
    them. Returns ``{"mean", "ci95", "per_task", "compile_seconds", "wall_time_s"}`` (chapter 01).
    """
    settings = dict(num_tasks=num_tasks, steps=steps, lr=lr, hidden=hidden, image_size=image_size, seed=seed)
    settings.update(batch_size=batch_size, n_way=test_sampler.n_way)
    check_inner(lr, steps)
    seed_everything(seed)
    model = Conv4(in_channels=1, n_out=test_sampler.n_way, hidden=hidden, image_size=image_size)
    model = model.to(test_sampler.device)
    init = {k: v.detach() for k, v in model.named_parameters()}
    step = _sgd_step(model, lr, test_sampler.device if compile else None)
    done = _resumed(partial_path, settings)
    accs: list[float] = list(done["per_task"])
    start, elapsed = time.perf_counter(), float(done["wall_time_s"])
    bar = tqdm(total=num_tasks, initial=len(accs), desc="from scratch", unit="task", disable=not progress)
    for first in range(0, num_tasks, batch_size):
        batch = test_sampler.sample(min(batch_size, num_tasks - first))  # drawn even when resumed: same tasks
        if first < len(accs):
            continue
        for t in range(len(batch.support_x)):
            accs.append(_fit_and_test(model, step, init, steps, batch, t))
            bar.update(1)
        if partial_path is not None:
            seconds = elapsed + time.perf_counter() - start
            write_json(partial_path, {"settings": settings, "per_task": accs, "wall_time_s": seconds})
    bar.close()
    m, c = mean_ci(accs)
    return {
        "mean": m,
        "ci95": c,
        "per_task": accs,
        "compile_seconds": round(step.seconds if isinstance(step, CompiledCall) else 0.0, 1),
        "wall_time_s": round(elapsed + time.perf_counter() - start, 1),
    }


SCRATCH_RUN = "scratch-5w5s"  # chapter 01's from-scratch baseline, saved beside the shipped runs


def _scratch_results(config: dict[str, Any], result: Mapping[str, Any], dev: torch.device, device: str) -> dict:
    """The from-scratch baseline's results file, in the format of the shipped runs (``weights`` null)."""
    mean, ci95, std = confidence_interval(result["per_task"])
    c = config
    command = (
        f"mlcourse scratch-baseline --tasks {c['test_tasks']} --n-way {c['n_way']} --k-shot {c['k_shot']} "
        f"--n-query {c['n_query']} --steps {c['inner_steps']} --lr {c['inner_lr']} --hidden {c['hidden']} "
        f"--image-size {c['image_size']} --{'' if c['compile'] else 'no-'}compile --device {device}"
    )
    return {
        "config": config,
        "test": {
            "metric": "accuracy",
            "mean": mean,
            "ci95": ci95,
            "std": std,
            "num_tasks": c["test_tasks"],
            "inner_steps": c["inner_steps"],
            "protocol": "transductive",  # each task's queries go through the network as one batch (its statistics)
            "per_task": result["per_task"],
        },
        "iterations": 0,
        **provenance(dev, command=command, wall_time_s=result["wall_time_s"]),
        "compile_seconds": result["compile_seconds"],
        "weights": None,
        "note": "a fresh Conv-4 (one seeded initialisation) trained by SGD on each task's support set alone",
    }


def scratch_run(
    num_tasks: int = 600,
    *,
    n_way: int = 5,
    k_shot: int = 5,
    n_query: int = 5,
    steps: int = 100,
    lr: float = 0.1,
    hidden: int = 64,
    image_size: int = 28,
    device: str = "cpu",
    compile: bool = True,
    out_dir: str | Path | None = None,
) -> Path:
    """Chapter 01's from-scratch baseline at full scale: :func:`scratch_baseline` on ``num_tasks`` tasks of unseen
    characters (the protocol's fixed test tasks), saved as ``results/omniglot/scratch-5w5s/results.json`` in the
    format of the shipped runs (no weights: nothing is meta-trained). ``mlcourse scratch-baseline``. Finished batches of
    tasks are kept in ``partial.json`` beside it, so an interrupted run resumes where it stopped."""
    dev = resolve_device(device)
    out = Path(out_dir) if out_dir is not None else shipped.SHIPPED_DIR / SCRATCH_RUN
    partial = out / "partial.json"
    out.mkdir(parents=True, exist_ok=True)
    sampler = EpisodeSampler(
        load_omniglot_splits(image_size, device=dev)["test"], n_way, k_shot, n_query, seed=TEST_SEED
    )
    result = scratch_baseline(
        sampler,
        num_tasks,
        steps=steps,
        lr=lr,
        hidden=hidden,
        image_size=image_size,
        compile=compile,
        progress=True,
        partial_path=partial,
    )
    config = {
        "algo": "scratch",
        "data": "omniglot",
        "split_scheme": "vinyals",
        "n_way": n_way,
        "k_shot": k_shot,
        "n_query": n_query,
        "inner_steps": steps,
        "test_inner_steps": steps,
        "inner_lr": lr,
        "hidden": hidden,
        "image_size": image_size,
        "test_tasks": num_tasks,
        "compile": compile,
    }
    results = _scratch_results(config, result, dev, device)
    path = save_results(out / "results.json", results)
    partial.unlink(missing_ok=True)
    return path


@dataclass(frozen=True)
class ScratchOptions:
    """Chapter 01: a fresh Conv-4 trained by SGD on each test task's support set alone (no meta-learning)."""

    tasks: Annotated[int, arg("test tasks")] = 600
    n_way: Annotated[int, arg("classes per task")] = 5
    k_shot: Annotated[int, arg("support examples per class")] = 5
    n_query: Annotated[int, arg("query examples per class")] = 5
    steps: Annotated[int, arg("SGD steps on each support set")] = 100
    lr: Annotated[float, arg("SGD step size")] = 0.1
    hidden: Annotated[int, arg("Conv-4 filters")] = 64
    image_size: Annotated[int, arg("image side in pixels")] = 28
    device: Annotated[str, arg("auto, cpu, cuda, cuda:N")] = "cpu"
    compile: Annotated[bool, arg("compile the SGD step with torch.compile (eager without a C++ compiler)")] = True
    out: Annotated[
        Optional[str], tyro.conf.DisallowNone, arg("run folder", metavar="DIR", default="results/omniglot/scratch-5w5s")
    ] = None


def scratch_command(args: ScratchOptions) -> int:
    """``mlcourse scratch-baseline``: write chapter 01's from-scratch baseline (see :func:`scratch_run`)."""
    path = scratch_run(
        args.tasks,
        n_way=args.n_way,
        k_shot=args.k_shot,
        n_query=args.n_query,
        steps=args.steps,
        lr=args.lr,
        hidden=args.hidden,
        image_size=args.image_size,
        device=args.device,
        compile=args.compile,
        out_dir=args.out,
    )
    test = load_results(path)["test"]
    print(
        f"from scratch: {100 * test['mean']:.2f} % ± {100 * test['ci95']:.2f} % on {test['num_tasks']} tasks; wrote {path}"
    )
    return 0
