"""``mlcourse bench``: meta-gradient throughput of the vectorised core vs the per-task loop vs learn2learn
(README's Benchmarks, chapters 07 and 08).

One row per (algorithm, implementation, shape):

* ``vectorised``: ``make_learner(..., vectorise=True)`` (``torch.func.vmap`` over the tasks, eager);
* ``compiled``: the same learner with ``compile=True`` (``torch.compile`` of the vmapped map; its compile time,
  paid once on the first call, is reported as ``compile_seconds`` and not counted in the rate);
* ``per-task loop``: ``make_learner(..., vectorise=False)`` (our reference loop, ``torch.autograd.grad``);
* ``compiled loop``: ``make_learner(..., vectorise=False, compile=True)`` (one task's function compiled once,
  ``torch.func.grad`` inside, called task after task; compile time reported like ``compiled``);
* ``batched``: ``make_learner(..., batched=True)`` (every task in one call of the Conv-4: per-task weights as grouped
  convolutions, channels last, fused batch norm; :mod:`mlcourse.algorithms.batched`), for the algorithms it has;
* ``learn2learn``: ``l2l.algorithms.MAML`` / ``MetaSGD`` with ``clone()`` / ``adapt()`` in a Python loop over
  tasks, the way its examples are written (ANIL: ``MAML`` around the head, features from the body).

Each timed unit is one meta-gradient: ``zero_grad``, the meta-loss of a whole meta-batch, ``backward()``
(no optimiser step: it costs the same everywhere). Implementations of one (algorithm, shape) are timed
in interleaved rounds in the same process, so shared-machine noise hits them alike; the rate is
``tasks / min(seconds)`` over the rounds (the least disturbed run; the median is kept in the row too;
ProtoNets and Matching Networks: episodes/s). Ratios: ``rate / rate(learn2learn)``, ``rate / rate(per-task loop)`` and
``rate / rate(vectorised)`` (compiled over eager).

Memory, labelled in every row (``peak_memory_method``):

* CUDA: ``torch.cuda.max_memory_allocated()`` during the step minus the memory allocated before it;
* CPU: the peak resident-set growth during the step (``VmHWM`` reset through ``/proc/self/clear_refs``;
  allocator-dependent, a rough figure), and, where autograd's saved-tensor hooks work (the loop and
  learn2learn; ``torch.func`` transforms refuse them), ``graph_saved_bytes``: the exact bytes of the
  tensors the autograd graph holds for ``backward()`` at the end of the forward pass (device-independent,
  see :class:`GraphMemory`).

Shapes (``SHAPES``): ``tiny`` (CI, ``--tiny``), ``small`` (the CPU comparison), ``conv4-32`` and
``conv4-84`` (the GPU shapes: Conv-4 with 64 filters on 32x32 RGB, 5-way 5-shot, 15 queries, 32 tasks,
5 inner steps; and 84x84 with 32 filters, 16 tasks).

``mlcourse bench --tiny`` (:class:`BenchOptions`, :func:`bench_command`) prints the table and writes the rows as JSON.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib
import io
import json
import os
import statistics
import sys
import time
import types
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import torch
import torch.nn.functional as F
import tyro
from torch import Tensor, nn

from mlcourse import atomic
from mlcourse.algorithms import make_learner
from mlcourse.algorithms.batched import BATCHED_ALGORITHMS
from mlcourse.cliparse import Command, Flag, arg, require
from mlcourse.config import REPO_ROOT, resolve_device, runs_dir
from mlcourse.data.tasks import TaskBatch
from mlcourse.hostmemory import keep_freed_memory, release_freed_memory
from mlcourse.models import Conv4
from mlcourse.peers import HIGHER, PEER_ALGORITHMS, PEERS, TORCHOPT, load_peer, peer_note, peer_step
from mlcourse.provenance import provenance

VECTORISED, COMPILED, LOOP, L2L, BATCHED = "vectorised", "compiled", "per-task loop", "learn2learn", "batched"
COMPILED_LOOP = "compiled loop"
IMPLEMENTATIONS = (VECTORISED, COMPILED, LOOP, COMPILED_LOOP, BATCHED, L2L, HIGHER, TORCHOPT)
COMPILED_IMPLEMENTATIONS = (COMPILED, COMPILED_LOOP)
PEER_IMPLEMENTATIONS = (L2L, HIGHER, TORCHOPT)  # the other libraries (mlcourse.peers)
QUICK_IMPLEMENTATIONS = (VECTORISED, LOOP, BATCHED, L2L, HIGHER, TORCHOPT)  # --tiny (CI): no 30-60 s compilations
#: algorithms the benchmark knows; learn2learn has no ProtoNets class (its examples write one by hand).
BENCH_ALGORITHMS = ("maml", "fomaml", "reptile", "anil", "metasgd", "protonet", "matchingnet")
DEFAULT_ALGORITHMS = ("maml", "fomaml", "reptile", "metasgd", "protonet", "matchingnet")
L2L_ALGORITHMS = ("maml", "fomaml", "anil", "metasgd")
METRIC_ALGORITHMS = ("protonet", "matchingnet")  # measured in episodes/s


@dataclass(frozen=True)
class Shape:
    """One benchmark configuration: the episode, the meta-batch, the inner loop and the Conv-4."""

    n_way: int
    k_shot: int
    n_query: int
    tasks: int
    inner_steps: int
    hidden: int
    image_size: int
    channels: int

    def describe(self) -> str:
        return (
            f"Conv4({self.hidden}) {self.channels}x{self.image_size}x{self.image_size}, {self.n_way}-way "
            f"{self.k_shot}-shot {self.n_query}q, {self.tasks} tasks, {self.inner_steps} step(s)"
        )


SHAPES: dict[str, Shape] = {
    "tiny": Shape(n_way=5, k_shot=1, n_query=2, tasks=4, inner_steps=1, hidden=8, image_size=16, channels=1),
    "small": Shape(n_way=5, k_shot=1, n_query=5, tasks=8, inner_steps=1, hidden=16, image_size=28, channels=1),
    "small-5step": Shape(n_way=5, k_shot=1, n_query=5, tasks=8, inner_steps=5, hidden=16, image_size=28, channels=1),
    # chapter 03's shipped Omniglot runs: 5-way 1-shot, 5 queries, 8 tasks, Conv-4 with 64 filters on 28x28
    "ch03": Shape(n_way=5, k_shot=1, n_query=5, tasks=8, inner_steps=1, hidden=64, image_size=28, channels=1),
    "conv4-32": Shape(n_way=5, k_shot=5, n_query=15, tasks=32, inner_steps=5, hidden=64, image_size=32, channels=3),
    "conv4-84": Shape(n_way=5, k_shot=5, n_query=15, tasks=16, inner_steps=5, hidden=32, image_size=84, channels=3),
}
ShapeName = Literal[tuple(SHAPES)]  # type: ignore[valid-type]  (the options' choices)
BenchAlgorithm = Literal[BENCH_ALGORITHMS]  # type: ignore[valid-type]
Implementation = Literal[IMPLEMENTATIONS]  # type: ignore[valid-type]
TINY_SHAPES = ("tiny",)
CPU_SHAPES = ("ch03",)
GPU_SHAPES = ("conv4-32", "conv4-84")


# --------------------------------------------------------------------------------------------------
# learn2learn: the installed package, or its pure-Python algorithm modules from a source tree
# --------------------------------------------------------------------------------------------------
def _quiet_import(name: str) -> Any:
    """Import ``name`` without gym's deprecation banner (learn2learn's ``__init__`` imports gym)."""
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stderr(io.StringIO()),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        return importlib.import_module(name)


#: How to install learn2learn, the optional `compare` extra (said where it is missing: `mlcourse bench`, chapter 07).
L2L_INSTALL_HINT = (
    "to install it, run `make setup` in a clone of the repository (it builds learn2learn 0.2.0 with Cython), "
    'or `pip install "mlcourse[compare]"` on Python 3.10 (with a C compiler)'
)


def load_learn2learn(source: str | os.PathLike | None = None) -> Optional[types.ModuleType]:
    """learn2learn with at least ``.algorithms.MAML`` and ``.algorithms.MetaSGD``, or ``None``.

    ``source=None``: ``import learn2learn`` (quietly), else ``$MLCOURSE_L2L_SRC`` as below. ``source`` (or
    ``$MLCOURSE_L2L_SRC``): a learn2learn package folder (the one holding ``algorithms/maml.py``). Only
    its pure-Python ``algorithms.maml``, ``algorithms.meta_sgd`` and ``utils`` are loaded: empty package
    modules are registered for ``learn2learn`` and ``learn2learn.algorithms`` so that neither its
    ``__init__`` (gym, the Cython data extensions) nor ``algorithms/__init__`` (lightning) runs. This is how
    the GPU machine (Python 3.12, no learn2learn install) benchmarks it; see ``benchmarks/run_gpu.sh``.
    """
    if source is None:
        try:
            return _quiet_import("learn2learn")
        except Exception:  # noqa: BLE001 - not installed or broken (gym, Cython extensions)
            source = os.environ.get("MLCOURSE_L2L_SRC")
            if not source:
                return None
    pkg = Path(source).expanduser().resolve()
    if (pkg / "learn2learn" / "algorithms" / "maml.py").is_file():
        pkg = pkg / "learn2learn"
    if not (pkg / "algorithms" / "maml.py").is_file():
        raise FileNotFoundError(f"no learn2learn source at {source}: expected {pkg / 'algorithms' / 'maml.py'}")
    existing = sys.modules.get("learn2learn")
    if existing is not None and hasattr(existing, "algorithms") and hasattr(existing.algorithms, "MAML"):
        return existing
    root = types.ModuleType("learn2learn")
    root.__path__ = [str(pkg)]  # type: ignore[attr-defined]
    root.__file__ = str(pkg / "__init__.py")
    algorithms = types.ModuleType("learn2learn.algorithms")
    algorithms.__path__ = [str(pkg / "algorithms")]  # type: ignore[attr-defined]
    sys.modules["learn2learn"], sys.modules["learn2learn.algorithms"] = root, algorithms
    root.algorithms = algorithms  # type: ignore[attr-defined]
    maml = importlib.import_module("learn2learn.algorithms.maml")
    meta_sgd = importlib.import_module("learn2learn.algorithms.meta_sgd")
    algorithms.MAML, algorithms.MetaSGD = maml.MAML, meta_sgd.MetaSGD  # type: ignore[attr-defined]
    root.__version__ = "source tree " + str(pkg)  # type: ignore[attr-defined]
    try:
        version = (pkg / "_version.py").read_text()
        root.__version__ = version.split("=")[-1].strip().strip("'\"") + f" (algorithms loaded from {pkg})"  # type: ignore[attr-defined]
    except OSError:
        pass
    return root


# --------------------------------------------------------------------------------------------------
# data, models, steps
# --------------------------------------------------------------------------------------------------
def synthetic_batch(
    shape: Shape, *, seed: int = 0, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> TaskBatch:
    """Random images in the one task format (class-major labels); timings do not depend on pixel values."""
    g = torch.Generator().manual_seed(seed)
    img = (shape.channels, shape.image_size, shape.image_size)
    sy = torch.arange(shape.n_way).repeat_interleave(shape.k_shot).repeat(shape.tasks, 1)
    qy = torch.arange(shape.n_way).repeat_interleave(shape.n_query).repeat(shape.tasks, 1)
    batch = TaskBatch(
        torch.rand(shape.tasks, shape.n_way * shape.k_shot, *img, generator=g, dtype=dtype),
        sy,
        torch.rand(shape.tasks, shape.n_way * shape.n_query, *img, generator=g, dtype=dtype),
        qy,
        torch.arange(shape.n_way).repeat(shape.tasks, 1),
    )
    return batch.to(device)


def make_model(
    shape: Shape, *, seed: int = 0, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> nn.Module:

    torch.manual_seed(seed)
    return Conv4(in_channels=shape.channels, n_out=shape.n_way, hidden=shape.hidden, image_size=shape.image_size).to(
        device=device, dtype=dtype
    )


def mlcourse_step(
    algorithm: str,
    model: nn.Module,
    shape: Shape,
    batch: TaskBatch,
    *,
    vectorise: bool,
    inner_lr: float = 0.1,
    compile: bool = False,
    batched: bool = False,
) -> tuple[Callable[[], Tensor], nn.Module]:
    """``step()`` = one meta-gradient with ``make_learner(algorithm, ..., vectorise=vectorise)``; returns
    ``(step, learner)``. ``step`` returns the (detached) meta-loss."""

    learner = make_learner(
        algorithm,
        model,
        inner_lr=inner_lr,
        inner_steps=shape.inner_steps,
        vectorise=vectorise,
        compile=compile,
        batched=batched,
    )
    return learner_step(learner, batch), learner


def learner_step(learner: nn.Module, batch: TaskBatch) -> Callable[[], Tensor]:
    """``step()`` = one meta-gradient of ``learner`` on ``batch`` (zero_grad, meta-loss, backward); returns the
    detached meta-loss."""

    def step() -> Tensor:
        learner.zero_grad(set_to_none=True)
        loss = learner(batch).loss
        loss.backward()
        return loss.detach()

    return step


def l2l_meta_loss(
    l2l: types.ModuleType, wrapper: nn.Module, algorithm: str, model: nn.Module, batch: TaskBatch, inner_steps: int
) -> Tensor:
    """The mean query loss over tasks, learn2learn style: ``clone()``, ``adapt()`` on the support set."""
    total = 0.0
    for t in range(batch.num_tasks):
        sx, sy, qx, qy = batch.support_x[t], batch.support_y[t], batch.query_x[t], batch.query_y[t]
        if algorithm == "anil":  # the body is meta-trained, only the head adapts (learn2learn's ANIL example)
            sx, qx = model.body(sx), model.body(qx)
        learner = wrapper.clone()
        for _ in range(inner_steps):
            learner.adapt(F.cross_entropy(learner(sx), sy))
        total = total + F.cross_entropy(learner(qx), qy)
    return total / batch.num_tasks


def l2l_wrapper(l2l: types.ModuleType, algorithm: str, model: nn.Module, inner_lr: float = 0.1) -> nn.Module:
    if algorithm not in L2L_ALGORITHMS:
        raise ValueError(f"learn2learn has no {algorithm!r} wrapper here; allowed: {', '.join(L2L_ALGORITHMS)}")
    if algorithm == "metasgd":
        return l2l.algorithms.MetaSGD(model, lr=inner_lr)
    if algorithm == "anil":
        return l2l.algorithms.MAML(model.head, lr=inner_lr)
    return l2l.algorithms.MAML(model, lr=inner_lr, first_order=algorithm == "fomaml")


def l2l_step(
    l2l: types.ModuleType, algorithm: str, model: nn.Module, shape: Shape, batch: TaskBatch, inner_lr: float = 0.1
) -> tuple[Callable[[], Tensor], nn.Module]:
    """``step()`` = one meta-gradient with learn2learn's wrappers on ``model`` (use a copy)."""
    wrapper = l2l_wrapper(l2l, algorithm, model, inner_lr)
    owner = nn.ModuleList([model, wrapper])  # zero_grad over the model and MetaSGD's learning rates

    def step() -> Tensor:
        owner.zero_grad(set_to_none=True)
        loss = l2l_meta_loss(l2l, wrapper, algorithm, model, batch, shape.inner_steps)
        loss.backward()
        return loss.detach()

    return step, owner


# --------------------------------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------------------------------
class GraphMemory:
    """Exact bytes of the tensors the autograd graph saves for ``backward()``, counted with
    ``torch.autograd.graph.saved_tensors_hooks`` (device-independent; chapter 08).

    Each saved tensor's *storage* is counted once while some graph node holds it (a view of a parameter
    or of an input is not new memory: storages of ``exclude`` are skipped). ``live`` is what is held now,
    ``peak`` the most held at once, ``held`` what was held when the block ended (what ``backward()``
    needs). ``torch.func`` transforms refuse these hooks, so measure the per-task loop
    (``vectorise=False``): the vectorised graph saves the same tensors, batched.
    """

    def __init__(self, exclude: Sequence[Tensor] = ()) -> None:
        self.excluded = {t.untyped_storage().data_ptr() for t in exclude if t.device.type != "meta"}
        self.refs: dict[int, int] = {}
        self.live = self.peak = self.held = 0
        self._ctx: Any = None

    class _Holder:
        __slots__ = ("tensor", "key", "owner", "__weakref__")

        def __init__(self, tensor: Tensor, key: Optional[int], owner: GraphMemory) -> None:
            # Detached: a saved *output* carries its grad_fn, which holds this holder, a cycle through C++
            # that Python's collector cannot see. Autograd restores the edge itself when it unpacks.
            self.tensor, self.key, self.owner = tensor.detach(), key, owner

        def __del__(self) -> None:
            if self.key is not None:
                self.owner._release(self.key, self.tensor)

    def _pack(self, tensor: Tensor) -> Any:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key in self.excluded or storage.nbytes() == 0:
            return GraphMemory._Holder(tensor, None, self)
        if key not in self.refs:
            self.refs[key] = 0
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
        self.refs[key] += 1
        return GraphMemory._Holder(tensor, key, self)

    def _release(self, key: int, tensor: Tensor) -> None:
        self.refs[key] -= 1
        if self.refs[key] == 0:
            del self.refs[key]
            self.live -= tensor.untyped_storage().nbytes()

    @staticmethod
    def _unpack(holder: Any) -> Tensor:
        return holder.tensor

    def __enter__(self) -> GraphMemory:
        self._ctx = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)
        self.held = self.live


def graph_saved_bytes(forward: Callable[[], Tensor], exclude: Sequence[Tensor] = ()) -> dict[str, int]:
    """Run ``forward()`` (returns the meta-loss, graph attached) under :class:`GraphMemory`; return
    ``{"held": bytes held for backward at the end, "peak": most held at once}``; the graph is freed after."""
    with GraphMemory(exclude) as mem:
        loss = forward()
    result = {"held": int(mem.held), "peak": int(mem.peak)}
    del loss
    return result


def _read_status(field: str) -> Optional[int]:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_memory(step: Callable[[], Any], device: torch.device) -> tuple[Optional[int], str]:
    """Run ``step()`` once and return ``(bytes, method)``: CUDA peak allocated above the baseline, or on CPU
    the growth of the peak resident set (Linux ``VmHWM``, reset first, after the freed memory malloc keeps for reuse
    is handed back: see ``mlcourse.hostmemory``), or ``(None, reason)``."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base), "cuda max_memory_allocated - baseline"
    if device.type == "cpu":
        release_freed_memory()
        if _reset_peak_rss():
            base = _read_status("VmRSS")
            step()
            peak = _read_status("VmHWM")
            if base is not None and peak is not None:
                return max(0, peak - base), "CPU peak RSS growth (VmHWM reset; allocator-dependent)"
    step()
    return None, f"not measured on {device.type}"


# --------------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(
    steps: dict[str, Callable[[], Any]], repeats: int, device: torch.device, warmup: int = 1
) -> dict[str, list[float]]:
    """Seconds per call of each ``steps[name]``, timed in ``repeats`` interleaved rounds after ``warmup``."""
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, fn in steps.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def run_benchmark(
    shapes: Sequence[str | Shape] = TINY_SHAPES,
    algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
    device: str | torch.device = "cpu",
    repeats: int = 5,
    *,
    implementations: Sequence[str] = IMPLEMENTATIONS,
    learn2learn: Optional[types.ModuleType] | bool = True,
    memory: bool = True,
    warmup: int = 1,
    inner_lr: float = 0.1,
    progress: Optional[Callable[[str], None]] = None,
) -> list[dict[str, Any]]:
    """Benchmark rows (see the module docstring), one per (shape, algorithm, implementation).

    ``shapes``: names in ``SHAPES`` or ``Shape`` objects. ``learn2learn``: ``True`` loads it with
    :func:`load_learn2learn` (rows skipped, with a note, when it is missing), ``False`` skips it, or a
    module. Row keys: ``algorithm, implementation, shape, shape_detail, second_order, tasks, rate, unit,
    seconds_min, seconds_median, seconds, ratio_to_learn2learn, ratio_to_loop, peak_memory_bytes, peak_memory_method,
    graph_saved_bytes, device, device_name, torch, learn2learn, threads, dtype, date, note``.
    """

    dev = resolve_device(device)
    _check_choices(algorithms, implementations)
    l2l = load_learn2learn() if learn2learn is True else (None if learn2learn is False else learn2learn)
    libraries = {name: load_peer(name) for name in PEERS if name in implementations}
    common = _common_fields(dev, getattr(l2l, "__version__", None) if l2l is not None else None)
    common.update(_peer_versions(libraries), matmul_peak_gflops=matmul_peak_gflops(dev))
    rows: list[dict[str, Any]] = []
    for shape_spec in shapes:
        shape_name, shape = (shape_spec, SHAPES[shape_spec]) if isinstance(shape_spec, str) else ("custom", shape_spec)
        batch = synthetic_batch(shape, device=dev)
        for algo in algorithms:
            say = (lambda text: progress(f"{shape_name}: {text}")) if progress is not None else None
            steps, graph_fns, compile_seconds = _mlcourse_steps(algo, shape, batch, dev, implementations, inner_lr, say)
            notes = []
            if L2L in implementations and algo in L2L_ALGORITHMS:
                notes.append(_add_learn2learn(l2l, algo, shape, batch, dev, inner_lr, steps, graph_fns))
            notes += [_add_peer(libraries[n], n, algo, shape, batch, dev, inner_lr, steps) for n in libraries]
            note = "; ".join(n for n in notes if n)
            if say is not None:
                say(f"{algo} ({', '.join(steps)})")
            times = time_interleaved(steps, repeats, dev, warmup=warmup)
            flops = meta_gradient_flops(algo, shape, batch, dev, inner_lr)
            measured = _Measured(
                algo, shape_name, shape, times, compile_seconds, note, flops, common["matmul_peak_gflops"]
            )
            for impl in steps:
                peak, method = peak_memory(steps[impl], dev) if memory else (None, "not measured")
                graph = None
                if memory and impl in graph_fns:
                    fn, exclude = graph_fns[impl]
                    graph = graph_saved_bytes(fn, exclude)["held"]
                rows.append({**_row(measured, impl, peak, method, graph), **common, "note": note})
            del steps, graph_fns
    return rows


def _peer_versions(libraries: dict[str, tuple[Optional[types.ModuleType], str]]) -> dict[str, Optional[str]]:
    """``{"higher": version or None, "torchopt": ...}`` for the rows (None: not available here)."""
    from importlib import metadata

    return {name: metadata.version(name) if module is not None else None for name, (module, _) in libraries.items()}


def _add_peer(
    loaded: tuple[Optional[types.ModuleType], str],
    name: str,
    algo: str,
    shape: Shape,
    batch: TaskBatch,
    dev: torch.device,
    inner_lr: float,
    steps: dict[str, Callable[[], Any]],
) -> str:
    """Add peer ``name``'s step for ``algo`` to ``steps``; the rows' note (why it is absent) otherwise."""
    module, why = loaded
    if module is None:
        return why
    if algo not in PEER_ALGORITHMS[name]:
        return peer_note(name, algo)
    steps[name], _ = peer_step(module, name, algo, make_model(shape, device=dev), batch, shape.inner_steps, inner_lr)
    return ""


def meta_gradient_flops(algo: str, shape: Shape, batch: TaskBatch, dev: torch.device, inner_lr: float = 0.1) -> int:
    """Floating-point operations of one meta-gradient of ``algo`` (meta-loss and ``backward()``), counted by
    ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions) on the per-task loop: the
    algorithm's work, the same whichever library runs it."""
    from torch.utils.flop_counter import FlopCounterMode

    step, _ = mlcourse_step(algo, make_model(shape, device=dev), shape, batch, vectorise=False, inner_lr=inner_lr)
    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def matmul_peak_gflops(dev: torch.device, size: int = 2048, repeats: int = 5) -> float:
    """The machine's measured fp32 matrix-product rate in GFLOP/s (best of ``repeats`` ``size``-square products):
    the ceiling each row's achieved rate is compared with."""
    a, b = torch.rand(size, size, device=dev), torch.rand(size, size, device=dev)
    times = time_interleaved({"mm": lambda: a @ b}, repeats, dev, warmup=1)["mm"]
    return 2 * size**3 / min(times) / 1e9


def _check_choices(algorithms: Sequence[str], implementations: Sequence[str]) -> None:
    """Raise ``ValueError`` naming an unknown algorithm or implementation and the allowed ones."""
    for name in algorithms:
        if name not in BENCH_ALGORITHMS:
            raise ValueError(f"unknown algorithm {name!r} for the benchmark; allowed: {', '.join(BENCH_ALGORITHMS)}")
    for impl in implementations:
        if impl not in IMPLEMENTATIONS:
            raise ValueError(f"unknown implementation {impl!r}; allowed: {', '.join(IMPLEMENTATIONS)}")


def _common_fields(dev: torch.device, l2l_version: Optional[str]) -> dict[str, Any]:
    """What every row of one benchmark run shares: where, with what and when it was measured."""
    return {**provenance(dev), "learn2learn": l2l_version, "dtype": "float32"}


GraphFns = dict[str, tuple[Callable[[], Tensor], list[Tensor]]]


def _learner_graph(learner: nn.Module, batch: TaskBatch) -> tuple[Callable[[], Tensor], list[Tensor]]:
    """What :func:`graph_saved_bytes` measures for one of this project's learners: its meta-loss on ``batch``, and
    the tensors not to count (its parameters and the images)."""
    return (lambda: learner(batch).loss), list(learner.parameters()) + [batch.support_x, batch.query_x]


def _mlcourse_steps(
    algo: str,
    shape: Shape,
    batch: TaskBatch,
    dev: torch.device,
    implementations: Sequence[str],
    inner_lr: float,
    say: Optional[Callable[[str], None]],
) -> tuple[dict[str, Callable[[], Any]], GraphFns, dict[str, float]]:
    """This project's meta-gradient steps, one per implementation asked for (a compiled one is compiled here, and
    dropped when the compiler gives up), the autograd graphs to measure and the compile times."""
    steps: dict[str, Callable[[], Any]] = {}
    graph_fns: GraphFns = {}
    compile_seconds: dict[str, float] = {}
    if VECTORISED in implementations:
        steps[VECTORISED], _ = mlcourse_step(
            algo, make_model(shape, device=dev), shape, batch, vectorise=True, inner_lr=inner_lr
        )
    if BATCHED in implementations and algo in BATCHED_ALGORITHMS:
        steps[BATCHED], learner = mlcourse_step(
            algo, make_model(shape, device=dev), shape, batch, vectorise=True, inner_lr=inner_lr, batched=True
        )
        graph_fns[BATCHED] = _learner_graph(learner, batch)
    for impl in (COMPILED, LOOP, COMPILED_LOOP):
        if impl not in implementations:
            continue
        model = make_model(shape, device=dev)
        compiled = impl in COMPILED_IMPLEMENTATIONS
        step, learner = mlcourse_step(
            algo, model, shape, batch, vectorise=impl == COMPILED, inner_lr=inner_lr, compile=compiled
        )
        if impl == LOOP:
            steps[LOOP] = step
            graph_fns[LOOP] = _learner_graph(learner, batch)
            continue
        if say is not None:
            say(f"compiling {algo} ({impl})")
        start = time.perf_counter()
        step()  # the first call compiles
        compile_seconds[impl] = time.perf_counter() - start
        if learner.compile_notice is None:
            steps[impl] = step
    return steps, graph_fns, compile_seconds


def _add_learn2learn(
    l2l: Optional[types.ModuleType],
    algo: str,
    shape: Shape,
    batch: TaskBatch,
    dev: torch.device,
    inner_lr: float,
    steps: dict[str, Callable[[], Any]],
    graph_fns: GraphFns,
) -> str:
    """Add learn2learn's step and graph for ``algo`` to ``steps``/``graph_fns``; the rows' note (why it is absent)."""
    if l2l is None:
        return "learn2learn not available: its rows are skipped"
    model = make_model(shape, device=dev)
    steps[L2L], owner = l2l_step(l2l, algo, model, shape, batch, inner_lr=inner_lr)
    wrapper = owner[1]
    graph_fns[L2L] = (
        lambda w=wrapper, m=model: l2l_meta_loss(l2l, w, algo, m, batch, shape.inner_steps),
        list(owner.parameters()) + [batch.support_x, batch.query_x],
    )
    return ""


@dataclass(frozen=True)
class _Measured:
    """One (shape, algorithm)'s timings: ``times[implementation]`` holds the seconds of each round."""

    algo: str
    shape_name: str
    shape: Shape
    times: dict[str, list[float]]
    compile_seconds: dict[str, float]
    note: str
    flops: int
    peak_gflops: float


def _row(m: _Measured, impl: str, peak: Optional[int], method: str, graph: Optional[int]) -> dict[str, Any]:
    """One benchmark row: rates (the best round: least disturbed by other load), ratios, memory."""
    best = {k: min(v) for k, v in m.times.items()}
    rate = {k: m.shape.tasks / v for k, v in best.items()}
    peer_rates = [rate[p] for p in PEER_IMPLEMENTATIONS if p in rate]
    peer_medians = {p: statistics.median(m.times[p]) for p in PEER_IMPLEMENTATIONS if p in m.times}
    fastest = min(peer_medians, key=peer_medians.__getitem__) if peer_medians else None
    achieved = m.flops / best[impl] / 1e9
    graph_method = (
        "autograd saved_tensors_hooks, bytes held for backward"
        if graph is not None
        else "n/a (torch.func transforms refuse saved-tensor hooks)"
        if impl == VECTORISED
        else "not measured"
    )
    return {
        "algorithm": m.algo,
        "implementation": impl,
        "shape": m.shape_name,
        "shape_detail": asdict(m.shape),
        "second_order": m.algo in ("maml", "anil", "metasgd"),
        "tasks": m.shape.tasks,
        "rate": rate[impl],
        "unit": "episodes/s" if m.algo in METRIC_ALGORITHMS else "tasks/s",
        "seconds_min": best[impl],
        "seconds_median": statistics.median(m.times[impl]),
        "seconds": m.times[impl],
        "ratio_to_learn2learn": rate[impl] / rate[L2L] if L2L in rate else None,
        "ratio_to_loop": rate[impl] / rate[LOOP] if LOOP in rate else None,
        "ratio_to_eager": rate[impl] / rate[VECTORISED] if VECTORISED in rate else None,
        "ratio_to_fastest_peer_median": (
            statistics.median(m.times[fastest]) / statistics.median(m.times[impl]) if fastest else None
        ),
        "ratio_to_fastest_peer": rate[impl] / max(peer_rates) if peer_rates else None,
        "flops": m.flops,
        "gflops": achieved,
        "fraction_of_matmul_peak": achieved / m.peak_gflops,
        "compile_seconds": m.compile_seconds.get(impl),
        "peak_memory_bytes": peak,
        "peak_memory_method": method,
        "graph_saved_bytes": graph,
        "graph_saved_method": graph_method,
    }


# --------------------------------------------------------------------------------------------------
# table, JSON, CLI
# --------------------------------------------------------------------------------------------------
def _mib(value: Optional[int]) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def _gflops(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1f}"


def _percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _ratio(value: Optional[float], missing: str = "-") -> str:
    return missing if value is None else f"{value:.2f}x"


def report_table(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of benchmark rows (what ``main`` prints)."""
    header = (
        f"{'shape':<12} {'algorithm':<11} {'implementation':<14} {'rate':>9} {'unit':<10} {'vs l2l':>7} "
        f"{'vs peer':>7} {'vs loop':>7} {'vs eager':>8} {'GFLOP/s':>8} {'of peak':>7} {'peak MiB':>9} "
        f"{'graph MiB':>9} {'compile s':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['shape']:<12} {r['algorithm']:<11} {r['implementation']:<14} {r['rate']:>9.1f} {r['unit']:<10} "
            f"{_ratio(r['ratio_to_learn2learn']):>7} {_ratio(r.get('ratio_to_fastest_peer')):>7} "
            f"{_ratio(r['ratio_to_loop']):>7} {_ratio(r.get('ratio_to_eager')):>8} {_gflops(r.get('gflops')):>8} "
            f"{_percent(r.get('fraction_of_matmul_peak')):>7} {_mib(r['peak_memory_bytes']):>9} "
            f"{_mib(r['graph_saved_bytes']):>9} "
            f"{'-' if r.get('compile_seconds') is None else format(r['compile_seconds'], '.0f'):>9}"
        )
    if rows:
        r = rows[0]
        peers = " | ".join(f"{name} {r.get(name)}" for name in PEERS if name in r)
        lines.append(
            f"device: {r['device_name']} [{r['device']}] | torch {r['torch']} | learn2learn {r['learn2learn']} | "
            f"{peers + ' | ' if peers else ''}{r['date']}"
        )
        if r.get("matmul_peak_gflops"):
            lines.append(
                f"vs peer: rate / the fastest other library's (learn2learn, higher, TorchOpt); GFLOP/s: the "
                f"algorithm's FLOPs (FlopCounterMode) / seconds; of peak: / the fp32 matrix-product rate measured in "
                f"this run, {r['matmul_peak_gflops']:.0f} GFLOP/s"
            )
        lines.append(
            f"peak MiB: {r['peak_memory_method']}; graph MiB: autograd saved tensors held for backward "
            "(per-task loop, batched and learn2learn)"
        )
    return "\n".join(lines)


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Optional[float]]]:
    """``{"shape/algorithm": {"vectorised_vs_learn2learn": x, "vectorised_vs_loop": y, "compiled_vs_eager": z,
    "compiled_vs_learn2learn": w, "compile_seconds": s, "compiled_loop_vs_eager": ..., "compiled_loop_vs_loop": ...,
    "compiled_loop_vs_learn2learn": ..., "compiled_loop_compile_seconds": ..., "batched_vs_eager": ...,
    "batched_vs_loop": ...}}`` (``None`` where a row is missing;
    "eager" is the eager vectorised path, "loop" the eager per-task loop)."""
    out: dict[str, dict[str, Optional[float]]] = {}
    for r in rows:
        entry = out.setdefault(
            f"{r['shape']}/{r['algorithm']}",
            {
                "vectorised_vs_learn2learn": None,
                "vectorised_vs_loop": None,
                "compiled_vs_eager": None,
                "compiled_vs_learn2learn": None,
                "compile_seconds": None,
                "compiled_loop_vs_eager": None,
                "compiled_loop_vs_loop": None,
                "compiled_loop_vs_learn2learn": None,
                "compiled_loop_compile_seconds": None,
                "batched_vs_eager": None,
                "batched_vs_loop": None,
            },
        )
        if r["implementation"] == VECTORISED:
            entry.update(vectorised_vs_learn2learn=r["ratio_to_learn2learn"], vectorised_vs_loop=r["ratio_to_loop"])
        elif r["implementation"] == COMPILED:
            entry.update(
                compiled_vs_eager=r.get("ratio_to_eager"),
                compiled_vs_learn2learn=r["ratio_to_learn2learn"],
                compile_seconds=r.get("compile_seconds"),
            )
        elif r["implementation"] == BATCHED:
            entry.update(batched_vs_eager=r.get("ratio_to_eager"), batched_vs_loop=r["ratio_to_loop"])
        elif r["implementation"] == COMPILED_LOOP:
            entry.update(
                compiled_loop_vs_eager=r.get("ratio_to_eager"),
                compiled_loop_vs_loop=r["ratio_to_loop"],
                compiled_loop_vs_learn2learn=r["ratio_to_learn2learn"],
                compiled_loop_compile_seconds=r.get("compile_seconds"),
            )
    for key, entry in _against_peers(rows).items():
        out[key].update(entry)
    return out


def _against_peers(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per ``shape/algorithm``: this project's fastest implementation, the fastest other library, and their ratio (by
    the best rounds, as the rates, and by the rounds' medians)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("rate") is not None:  # rows written before rates were kept have nothing to compare
            groups.setdefault(f"{r['shape']}/{r['algorithm']}", []).append(r)
    out = {}
    for key, group in groups.items():
        ours = [r for r in group if r["implementation"] not in PEER_IMPLEMENTATIONS]
        theirs = [r for r in group if r["implementation"] in PEER_IMPLEMENTATIONS]
        best = max(ours, key=lambda r: r["rate"]) if ours else None
        peer = max(theirs, key=lambda r: r["rate"]) if theirs else None
        medians = [r["seconds_median"] for r in theirs if r.get("seconds_median")]
        out[key] = {
            "best_mlcourse": best["implementation"] if best else None,
            "fastest_peer": peer["implementation"] if peer else None,
            "best_vs_fastest_peer": best["rate"] / peer["rate"] if best and peer else None,
            "best_vs_fastest_peer_median": (
                min(medians) / best["seconds_median"] if best and medians and best.get("seconds_median") else None
            ),
        }
    return out


def write_report(
    rows: Sequence[dict[str, Any]], path: str | os.PathLike, extra: Optional[dict[str, Any]] = None
) -> Path:
    """Write ``{"rows": rows, "summary": ..., **extra}`` atomically; returns the path."""
    payload = {"kind": "mlcourse.bench", "rows": list(rows), "summary": summarise(rows), **(extra or {})}
    return atomic.write_json(path, payload)


def load_reports(directory: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Every benchmark report (:func:`write_report`, ``kind: mlcourse.bench``) in ``directory`` (default
    ``benchmarks/results``), each with ``"file"`` added; sorted by file name. Unreadable files are skipped with a
    warning; the other files there (chapter 08's sweeps, the frontier) have their own readers."""

    folder = Path(directory) if directory is not None else REPO_ROOT / "benchmarks" / "results"
    found = []
    for file in sorted(folder.glob("*.json")):
        try:
            payload = json.loads(file.read_text())
        except (OSError, ValueError) as exc:
            warnings.warn(f"skipping {file}: {exc}", stacklevel=2)
            continue
        if isinstance(payload, dict) and payload.get("kind") == "mlcourse.bench":
            payload["file"] = str(file)
            found.append(payload)
    return found


DESCRIPTION = (
    "Meta-gradient throughput: mlcourse (vectorised, compiled, per-task loop) against learn2learn, higher and TorchOpt."
)


@dataclass(frozen=True)
class BenchOptions:
    """The options of ``mlcourse bench``."""

    tiny: Annotated[Flag, arg("the tiny CPU shape only (CI; seconds)", default="")] = False
    shapes: Annotated[
        Optional[tuple[ShapeName, ...]],
        tyro.conf.DisallowNone,
        arg("the shapes", default="tiny with --tiny, conv4-32 and conv4-84 on CUDA, ch03 on CPU"),
    ] = None
    algorithms: Annotated[tuple[BenchAlgorithm, ...], arg("the algorithms")] = DEFAULT_ALGORITHMS
    implementations: Annotated[
        Optional[tuple[Implementation, ...]],
        tyro.conf.DisallowNone,
        arg("the implementations", default="all; with --tiny none compiled"),
    ] = None
    device: Annotated[str, arg("auto, cpu, cuda, cuda:N")] = "auto"
    repeats: Annotated[
        Optional[int],
        tyro.conf.DisallowNone,
        arg("timed rounds per implementation (>= 1)", default="3 tiny, 7 otherwise"),
    ] = None
    threads: Annotated[int, arg("torch intra-op threads on CPU (0: torch's default)")] = 0
    no_memory: Annotated[Flag, arg("skip the memory measurements", default="")] = False
    no_learn2learn: Annotated[Flag, arg("skip the learn2learn rows", default="")] = False
    l2l_source: Annotated[
        Optional[str],
        tyro.conf.DisallowNone,
        arg("a learn2learn source folder (when it is not installed)", metavar="DIR", default="none"),
    ] = None
    out: Annotated[
        Optional[str],
        tyro.conf.DisallowNone,
        arg("JSON path", metavar="FILE", default="runs/bench/bench-<device>-<time>.json"),
    ] = None


def _learn2learn_for(args: BenchOptions) -> Any:
    """learn2learn for ``mlcourse bench``: a module, or ``False`` (skipped; a missing install says so in one line)."""
    if args.no_learn2learn:
        return False
    if args.l2l_source:
        return load_learn2learn(args.l2l_source)
    l2l = load_learn2learn()
    if l2l is None:
        print(f"learn2learn is not installed, so its rows are skipped; {L2L_INSTALL_HINT}", flush=True)
        return False
    return l2l


RATIO_LABELS = (
    ("vectorised_vs_learn2learn", "vectorised / learn2learn"),
    ("compiled_vs_eager", "compiled / eager"),
    ("compiled_vs_learn2learn", "compiled / learn2learn"),
    ("compiled_loop_vs_eager", "compiled loop / eager"),
    ("compiled_loop_vs_loop", "compiled loop / loop"),
    ("compiled_loop_vs_learn2learn", "compiled loop / learn2learn"),
    ("batched_vs_eager", "batched / eager vmap"),
    ("best_vs_fastest_peer", "fastest mlcourse path / fastest other library"),
    ("best_vs_fastest_peer_median", "the same by the rounds' medians"),
)


def summary_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per (shape, algorithm) of :func:`summarise`: its ratios and compile times."""
    lines = []
    for key, s in summarise(rows).items():
        parts = [f"{label} = {s[field]:.2f}x" for field, label in RATIO_LABELS if s.get(field) is not None]
        if s.get("fastest_peer") is not None:
            parts.append(f"fastest mlcourse path: {s['best_mlcourse']}, fastest other library: {s['fastest_peer']}")
        for field, label in (("compile_seconds", "compiled"), ("compiled_loop_compile_seconds", "compiled loop")):
            if s[field] is not None:
                parts.append(f"{label}: compile time {s[field]:.0f} s (once per run)")
        if parts:
            lines.append(f"{key}: " + ", ".join(parts))
    return lines


_NOT_MEASURED = "not measured"


def _why(best: str, s: Mapping[str, Optional[float]]) -> str:
    """Why ``best`` is this project's fastest path, read from the ratios of :func:`summarise`."""
    batching, per_task = s.get("vectorised_vs_loop"), s.get("compiled_loop_vs_loop")
    if best == COMPILED_LOOP:
        return (
            f"compiling each task's function paid more (compiled loop / loop {_ratio(per_task, _NOT_MEASURED)}) than batching "
            f"the tasks with vmap (vectorised / loop {_ratio(batching, _NOT_MEASURED)})"
        )
    if best == VECTORISED:
        compiled = [
            f"{label} {_ratio(value)}"
            for label, value in (
                ("compiled / eager", s.get("compiled_vs_eager")),
                ("compiled loop / eager", s.get("compiled_loop_vs_eager")),
            )
            if value is not None
        ]
        tail = f"compiling did not pay more ({', '.join(compiled)})" if compiled else "no compiled path was measured"
        return f"batching the tasks with vmap paid (vectorised / loop {_ratio(batching, _NOT_MEASURED)}) and {tail}"
    if best == BATCHED:
        compiled = s.get("compiled_loop_vs_eager")
        return (
            f"one grouped-convolution call for every task did more for it (batched / eager vmap "
            f"{_ratio(s.get('batched_vs_eager'), _NOT_MEASURED)}) than compiling each task's function (compiled loop / "
            f"eager vmap {_ratio(compiled, _NOT_MEASURED)})"
        )
    if best == COMPILED:
        return f"compiling the batched path paid on top of batching (compiled / eager {_ratio(s.get('compiled_vs_eager'), _NOT_MEASURED)})"
    return "neither batching the tasks nor compiling paid at this shape"


def winner_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One sentence per (shape, algorithm): which of this project's paths is fastest, why (from the measured
    ratios), and how it compares with the fastest other library."""
    lines = []
    for key, s in summarise(rows).items():
        best = s.get("best_mlcourse")
        if best is None:
            continue
        line = f"{key}: the {best} path is fastest here, because {_why(str(best), s)}"
        if s.get("fastest_peer") is not None:
            median = s.get("best_vs_fastest_peer_median")
            by_median = f"; {median:.2f}x by the rounds' medians" if median is not None else ""
            line += f"; it runs at {s['best_vs_fastest_peer']:.2f}x the fastest other library ({s['fastest_peer']}{by_median})"
        lines.append(line + ".")
    return lines


def bench_command(args: BenchOptions) -> int:
    """``mlcourse bench [--tiny] [--shapes ...] [--algorithms ...] [--device ...] [--out FILE]``: print the
    table, write the JSON, return 0 (the CLI's exit code)."""
    require(args.repeats is None or args.repeats >= 1, "--repeats", args.repeats, "an integer >= 1")
    require(args.threads >= 0, "--threads", args.threads, "0 (default) or more")
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()  # the setting training runs with (mlcourse.hostmemory), recorded in every row
    dev = resolve_device(args.device)
    shapes = args.shapes or (list(TINY_SHAPES) if args.tiny else list(GPU_SHAPES if dev.type == "cuda" else CPU_SHAPES))
    repeats = args.repeats or (3 if args.tiny else 7)
    l2l = _learn2learn_for(args)
    implementations = args.implementations or list(QUICK_IMPLEMENTATIONS if args.tiny else IMPLEMENTATIONS)
    rows = run_benchmark(
        shapes,
        args.algorithms,
        dev,
        repeats,
        implementations=implementations,
        learn2learn=l2l,
        memory=not args.no_memory,
        progress=lambda s: print(f"  measuring {s}", flush=True),
    )
    print(report_table(rows))
    for line in summary_lines(rows) + winner_lines(rows):
        print(line)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else runs_dir() / "bench" / f"bench-{dev.type}-{stamp}.json"
    path = write_report(
        rows,
        out,
        {
            "argv": list(getattr(args, "argv", None) or sys.argv[1:]),
            "repeats": repeats,
            "shapes": {s if isinstance(s, str) else "custom": asdict(SHAPES[s]) for s in shapes},
        },
    )
    print(f"wrote {path}")
    return 0


COMMAND = Command(
    "benchmark the vectorised core vs the per-task loop vs learn2learn and its peers",
    BenchOptions,
    bench_command,
    DESCRIPTION,
)
