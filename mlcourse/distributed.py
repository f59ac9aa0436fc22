"""Data-parallel meta-training with ``torch.distributed`` (scalability: more tasks per step on more processes).

One logical run spread over ``N`` processes, e.g. ``torchrun --nproc-per-node 2 -m mlcourse.cli train ...``:

* every rank seeds the same way and samples the **same** whole meta-batch (identical model, sampler and RNG
  state on every rank, so checkpoints resume the same way whatever the world size), then keeps only its
  slice of the tasks: ``batch.split(world_size)[rank]`` (:func:`local_slice`);
* each rank computes the meta-loss of its tasks and ``backward()``; :func:`allreduce_gradients` then sums the
  meta-gradients weighted by task count, ``g = sum_r (n_r / N) g_r``, which is exactly the single-process
  gradient of the mean meta-loss over all ``N`` tasks (also when ``N`` is not a multiple of the world size);
* every rank applies the same optimiser step to the same gradient, so parameters stay identical;
* rank 0 alone writes checkpoints, results and progress bars (:func:`is_main_process`).

``init_from_env()`` reads torchrun's variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) and joins the group: ``gloo`` on CPU, ``nccl`` on CUDA (one GPU per process, ``cuda:LOCAL_RANK``).
Without ``WORLD_SIZE`` it does nothing, and every helper here falls back to single-process behaviour, so the
same training loop runs unchanged in a notebook.

:func:`launch` starts ``world_size`` local CPU processes (``torch.multiprocessing``, gloo on 127.0.0.1) from
Python — tests and notebooks use it — and :func:`measure_speedup` times one meta-step at 1 vs N processes.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import socket
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
import torch.distributed as dist
from torch import Tensor, nn

from mlcourse.algorithms import MetaOutput, make_learner
from mlcourse.config import resolve_device
from mlcourse.data.tasks import TaskBatch
from mlcourse.models import Conv4

DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size``, its device and backend (``None`` = not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: Optional[str] = None

    @property
    def distributed(self) -> bool:
        return self.backend is not None and self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """Rank 0 (or the only process): the one that writes checkpoints, ``results.json`` and progress bars."""
    return get_rank() == 0


def init_from_env(
    backend: Optional[str] = None,
    device: str | torch.device | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> DistContext:
    """Join the process group torchrun describes in the environment; a no-op without ``WORLD_SIZE``.

    ``backend``: ``None`` picks ``nccl`` when this process will use CUDA and ``gloo`` otherwise.
    ``device``: ``"auto"``/``None`` (CUDA when present, else CPU), ``"cpu"`` or ``"cuda"``; on CUDA each
    process takes ``cuda:LOCAL_RANK``. Calling it again returns the existing group's context.
    """

    spec = "auto" if device is None else str(device)
    if "WORLD_SIZE" not in os.environ:
        chosen = resolve_device(spec)
        if chosen.type == "mps":  # the course's distributed path is CPU/CUDA only
            chosen = torch.device("cpu")
        return DistContext(device=chosen)
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK={rank} is out of range for WORLD_SIZE={world_size}; allowed 0..{world_size - 1}")
    chosen = _rank_device(spec, local_rank)
    backend = backend or ("nccl" if chosen.type == "cuda" else "gloo")
    if not dist.is_available():
        raise RuntimeError("this PyTorch build has no torch.distributed support")
    if not dist.is_initialized():
        _join_group(backend, chosen, world_size, rank, timeout_s)
    return DistContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local_rank,
        device=chosen,
        backend=str(dist.get_backend()),
    )


def _rank_device(spec: str, local_rank: int) -> torch.device:
    """This rank's device: ``cuda:LOCAL_RANK`` when CUDA is asked for (or ``auto`` finds it), else the CPU."""
    if not ((spec == "auto" and torch.cuda.is_available()) or spec.startswith("cuda")):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError(f"device {spec!r} was requested but no CUDA GPU is available; use device 'cpu'")
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise RuntimeError(
            f"LOCAL_RANK={local_rank} needs GPU cuda:{local_rank} but this machine has {count}; "
            f"start at most {count} processes per node (torchrun --nproc-per-node {count})"
        )
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def _join_group(backend: str, device: torch.device, world_size: int, rank: int, timeout_s: float) -> None:
    """``init_process_group`` from torchrun's environment (``MASTER_ADDR``/``MASTER_PORT`` must be set)."""
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise RuntimeError(f"{name} is not set: start the processes with torchrun (or set it yourself)")
    kwargs: dict[str, Any] = {"device_id": device} if backend == "nccl" else {}
    dist.init_process_group(
        backend=backend,
        init_method="env://",
        world_size=world_size,
        rank=rank,
        timeout=_dt.timedelta(seconds=timeout_s),
        **kwargs,
    )


def cleanup() -> None:
    """Leave the process group (end of training); a no-op when none was joined."""
    if dist.is_available() and dist.is_initialized():
        # every rank must arrive before the group is torn down: a rank that destroys it while its peer is
        # still talking to it aborts gloo ("terminate called without an active exception")
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


# --------------------------------------------------------------------------------------------------
# The meta-batch across ranks
# --------------------------------------------------------------------------------------------------
def split_sizes(total_tasks: int, world_size: int) -> list[int]:
    """Tasks per rank as ``TaskBatch.split`` (``torch.tensor_split``) hands them out: the first ranks get one more."""
    if not 1 <= world_size <= total_tasks:
        raise ValueError(
            f"cannot share {total_tasks} tasks among {world_size} processes; allowed 1..{total_tasks} processes "
            "(raise meta_batch_size or start fewer processes)"
        )
    base, extra = divmod(total_tasks, world_size)
    return [base + (1 if r < extra else 0) for r in range(world_size)]


def local_slice(batch: TaskBatch) -> TaskBatch:
    """This rank's tasks, ``batch.split(world_size)[rank]``; the whole batch when not distributed."""
    world = get_world_size()
    if world == 1:
        return batch
    return batch.split(world)[get_rank()]


def broadcast_parameters(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers to every rank (after building the model, as a guard:
    the same seed already makes them equal)."""
    if not is_distributed():
        return
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=src)


def _flat_allreduce(tensors: list[Tensor]) -> None:
    """Sum-all-reduce ``tensors`` in place, one collective per (device, dtype) bucket."""
    buckets: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}
    for t in tensors:
        buckets.setdefault((t.device, t.dtype), []).append(t)
    for group in buckets.values():
        flat = torch.cat([t.reshape(-1) for t in group])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for t in group:
            n = t.numel()
            t.copy_(flat[offset : offset + n].view_as(t))
            offset += n


def allreduce_gradients(module: nn.Module, local_tasks: int, total_tasks: int) -> None:
    """Turn each rank's ``.grad`` (of its mean meta-loss over ``local_tasks``) into the meta-gradient of the
    mean over all ``total_tasks``: ``g = sum_r (n_r / N) g_r``, the same on every rank. A no-op when not
    distributed. Parameters without a gradient on every rank keep ``grad=None`` (the optimiser skips them,
    as in one process); one that has a gradient on some ranks only counts zero on the others.
    """
    if not is_distributed():
        return
    if not 0 <= local_tasks <= total_tasks or total_tasks < 1:
        raise ValueError(f"local_tasks={local_tasks}, total_tasks={total_tasks}: need 0 <= local <= total, total >= 1")
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        return
    device = next((p.grad.device for p in params if p.grad is not None), params[0].device)
    has_grad = torch.tensor([float(p.grad is not None) for p in params], device=device)
    dist.all_reduce(has_grad, op=dist.ReduceOp.MAX)
    weight = local_tasks / total_tasks
    reduced = []
    for p, flag in zip(params, has_grad.tolist()):
        if not flag:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        p.grad.mul_(weight)
        reduced.append(p.grad)
    _flat_allreduce(reduced)


def allreduce_mean(value: Tensor | float, local_tasks: int, total_tasks: int) -> Tensor:
    """The mean over all tasks of a per-rank mean (the meta-loss for logging and the finiteness check,
    so that every rank takes the same decision). Returns ``value`` itself when not distributed."""
    value = torch.as_tensor(value).detach()
    if not is_distributed():
        return value
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    buf = (value.to(device=device, dtype=torch.float64) * (local_tasks / total_tasks)).reshape(1)
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    return buf[0].to(device=value.device, dtype=value.dtype)


def gather_task_metrics(metrics: Mapping[str, Tensor], total_tasks: int) -> dict[str, Tensor]:
    """All-gather per-task metrics ``[n_r]`` into ``[N]`` in task order (the order of the whole batch)."""
    if not is_distributed():
        return dict(metrics)
    sizes = split_sizes(total_tasks, get_world_size())
    width = max(sizes)
    backend = dist.get_backend()
    out: dict[str, Tensor] = {}
    for key in sorted(metrics):  # same order on every rank
        local = metrics[key].detach()
        comm = local.to(torch.device("cuda", torch.cuda.current_device())) if backend == "nccl" else local.cpu()
        padded = torch.zeros((width, *comm.shape[1:]), dtype=comm.dtype, device=comm.device)
        padded[: comm.shape[0]] = comm
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        out[key] = torch.cat([part[:n] for part, n in zip(parts, sizes)]).to(local.device)
    return out


def distributed_meta_step(
    learner: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: TaskBatch,
    *,
    lr: Optional[float] = None,
    check_loss: Optional[Callable[[float], None]] = None,
) -> MetaOutput:
    """One meta-step on the whole meta-batch ``batch`` (the same on every rank): this rank's slice, forward,
    ``backward``, task-weighted all-reduce of the meta-gradient, ``optimizer.step()`` (at learning rate ``lr``
    when given). ``check_loss(value)`` sees the whole batch's meta-loss before ``backward`` and may raise (a
    non-finite loss never reaches the parameters).

    Returns a ``MetaOutput`` with the meta-loss of the **whole** batch (detached) and per-task metrics of
    every task. In one process it is the plain step ``zero_grad; loss.backward(); step``; ``mlcourse.train.Trainer``
    calls it for every outer step of the course.
    """

    local = local_slice(batch)
    optimizer.zero_grad(set_to_none=True)
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    out = learner(local)
    loss = allreduce_mean(out.loss.detach(), local.num_tasks, batch.num_tasks)
    if check_loss is not None:
        check_loss(float(loss))
    out.loss.backward()
    allreduce_gradients(learner, local.num_tasks, batch.num_tasks)
    optimizer.step()
    return MetaOutput(loss, gather_task_metrics(out.metrics, batch.num_tasks))


# --------------------------------------------------------------------------------------------------
# Local launcher (tests, notebooks): N CPU processes, gloo on 127.0.0.1
# --------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launch_entry(rank: int, world_size: int, port: int, fn: Callable, args: tuple, out_dir: str, threads: int) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo" if os.path.exists("/sys/class/net/lo") else "lo0")
    if threads > 0:
        torch.set_num_threads(threads)
    init_from_env(backend="gloo", device="cpu", timeout_s=120)
    try:
        result = fn(*args)
        torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    finally:
        cleanup()


def launch(fn: Callable, world_size: int, *args: Any, threads_per_process: int = 0) -> list[Any]:
    """Run ``fn(*args)`` in ``world_size`` fresh local CPU processes joined in a gloo group (as torchrun
    would) and return each rank's result, rank 0 first. ``fn`` must be importable (a module-level function,
    not one defined in a notebook cell), and a script that calls ``launch`` needs the
    ``if __name__ == "__main__":`` guard (processes are started with ``spawn``; notebooks need nothing).
    ``threads_per_process > 0`` sets ``torch.set_num_threads``. An exception in any rank is raised here
    (the other ranks are stopped)."""
    import torch.multiprocessing as mp

    if world_size < 1:
        raise ValueError(f"world_size={world_size} is not allowed; allowed >= 1")
    out_dir = tempfile.mkdtemp(prefix="mlcourse-dist-")
    try:
        mp.spawn(
            _launch_entry,
            args=(world_size, free_port(), fn, args, out_dir, threads_per_process),
            nprocs=world_size,
            join=True,
        )
        return [torch.load(Path(out_dir) / f"rank{r}.pt", weights_only=False) for r in range(world_size)]
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------
def synthetic_image_batch(
    num_tasks: int,
    n_way: int = 5,
    k_shot: int = 1,
    n_query: int = 5,
    image_size: int = 28,
    channels: int = 1,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> TaskBatch:
    """Random images in the one task format (class-major labels): for timings and tests, no data needed."""
    g = torch.Generator().manual_seed(seed)
    shape = (channels, image_size, image_size)
    sy = torch.arange(n_way).repeat_interleave(k_shot).expand(num_tasks, -1).contiguous()
    qy = torch.arange(n_way).repeat_interleave(n_query).expand(num_tasks, -1).contiguous()
    return TaskBatch(
        support_x=torch.rand((num_tasks, n_way * k_shot, *shape), generator=g, dtype=dtype),
        support_y=sy,
        query_x=torch.rand((num_tasks, n_way * n_query, *shape), generator=g, dtype=dtype),
        query_y=qy,
        classes=torch.arange(n_way).expand(num_tasks, -1).contiguous(),
    )


def _timed_meta_steps(spec: dict[str, Any]) -> list[tuple[float, float]]:
    """``(wall, cpu)`` seconds per meta-step (after warm-up) on this rank; runs in every process of :func:`launch`."""

    torch.manual_seed(spec["seed"])
    model = Conv4(in_channels=1, n_out=spec["n_way"], hidden=spec["hidden"], image_size=spec["image_size"])
    learner = make_learner(
        spec["algo"], model, inner_lr=spec["inner_lr"], inner_steps=spec["inner_steps"], vectorise=True
    )
    broadcast_parameters(learner)
    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-3)
    batch = synthetic_image_batch(
        spec["meta_batch_size"], spec["n_way"], spec["k_shot"], spec["n_query"], spec["image_size"], seed=spec["seed"]
    )
    times = []
    for i in range(spec["warmup"] + spec["steps"]):
        barrier()
        start, cpu = time.perf_counter(), time.process_time()
        distributed_meta_step(learner, optimizer, batch)
        cpu = time.process_time() - cpu  # this process's CPU time (all its threads), before waiting for the others
        barrier()
        if i >= spec["warmup"]:
            times.append((time.perf_counter() - start, cpu))
    return times


def _step_statistics(per_rank: Sequence[Sequence[tuple[float, float]]]) -> dict[str, Any]:
    """Per-step wall time (a step ends with its slowest rank) and CPU time (all ranks together) from each rank's
    ``[(wall_s, cpu_s)]``: median, minimum and every step's wall time."""
    step_times = [max(wall for wall, _ in ts) for ts in zip(*per_rank)]
    cpu_times = [sum(cpu for _, cpu in ts) for ts in zip(*per_rank)]
    return {
        "median_s": statistics.median(step_times),
        "min_s": min(step_times),
        "times_s": step_times,
        "cpu_s": statistics.median(cpu_times),
    }


def measure_speedup(
    algo: str = "maml",
    world_sizes: Sequence[int] = (1, 2),
    *,
    meta_batch_size: int = 8,
    n_way: int = 5,
    k_shot: int = 1,
    n_query: int = 5,
    image_size: int = 28,
    hidden: int = 32,
    inner_steps: int = 1,
    inner_lr: float = 0.4,
    steps: int = 5,
    warmup: int = 1,
    threads_per_process: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Time one data-parallel meta-step (CPU, gloo) for each world size in ``world_sizes``.

    Every configuration runs in fresh processes started by :func:`launch` (so 1 process is measured the
    same way), with ``threads_per_process`` torch threads each (1: the processes do not fight over cores;
    0: torch's default). Returns ``{"config": ..., "results": {world_size: {"median_s", "min_s",
    "times_s", "cpu_s"}}, "speedup": {world_size: median(1) / median(world_size)}}`` (speed-up relative to
    the smallest world size measured). ``median_s`` is wall-clock per step (the slowest rank); ``cpu_s`` is
    the CPU time of all ranks together per step: ``cpu_s`` well below ``median_s * world_size * threads``
    means the processes waited for cores (a shared machine) or for each other.
    """
    spec = dict(
        algo=algo,
        meta_batch_size=meta_batch_size,
        n_way=n_way,
        k_shot=k_shot,
        n_query=n_query,
        image_size=image_size,
        hidden=hidden,
        inner_steps=inner_steps,
        inner_lr=inner_lr,
        steps=steps,
        warmup=warmup,
        seed=seed,
    )
    results: dict[int, dict[str, Any]] = {}
    for world in world_sizes:
        split_sizes(meta_batch_size, world)  # clear error before starting processes
        per_rank = launch(_timed_meta_steps, world, spec, threads_per_process=threads_per_process)
        results[world] = _step_statistics(per_rank)
    base = results[min(results)]["median_s"]
    return {
        "config": {
            **spec,
            "threads_per_process": threads_per_process,
            "cpu_count": os.cpu_count(),
            "torch": str(torch.__version__),
        },
        "results": results,
        "speedup": {w: base / r["median_s"] for w, r in results.items()},
    }
