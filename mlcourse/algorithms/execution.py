"""How a learner runs a per-task function over the tasks of a batch: the inner loop's two gradient functions, and
the task map (``torch.func.vmap``, a Python loop, or either compiled with ``torch.compile``) that owns the compiled
functions and falls back to eager execution where the compiler cannot run. Apart from the algorithms, which only
write per-task functions (``mlcourse.algorithms.core``).

* ``grad_func`` (``torch.func.grad``): used inside ``torch.func.vmap`` over tasks. It builds the graph the outer
  ``loss.backward()`` needs automatically (create_graph semantics), so first order = detach.
* ``grad_autograd`` (``torch.autograd.grad(create_graph=...)``): the plain per-task reference loop.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Optional

import torch
from torch import Tensor
from torch.utils._pytree import tree_leaves, tree_map

Params = dict[str, Tensor]


def grad_func(loss_fn: Callable[[Params], Tensor], params: Params, create_graph: bool) -> Params:
    """Gradient with ``torch.func.grad`` (vmap-able). The outer autograd graph is kept unless ``create_graph=False``."""
    grads = torch.func.grad(loss_fn)(params)
    return grads if create_graph else {k: g.detach() for k, g in grads.items()}


def grad_autograd(loss_fn: Callable[[Params], Tensor], params: Params, create_graph: bool) -> Params:
    """Reference gradient with ``torch.autograd.grad`` (one task at a time); works under ``torch.no_grad()``."""
    with torch.enable_grad():
        # a fresh node per tensor (a view), so that each gradient is the *partial* derivative even when one tensor
        # is computed from another (Proto-MAML's head from the body's prototypes), as torch.func.grad computes it
        leaves = {k: v.view_as(v) if v.requires_grad else v.detach().requires_grad_() for k, v in params.items()}
        grads = torch.autograd.grad(
            loss_fn(leaves), list(leaves.values()), create_graph=create_graph, allow_unused=True
        )
    return {k: torch.zeros_like(v) if g is None else g for (k, v), g in zip(leaves.items(), grads)}


def compiler_available(device: Optional[torch.device | str] = None) -> tuple[bool, str]:
    """``(True, "")`` when ``torch.compile`` can build kernels for ``device`` here, else ``(False, why)``.

    On a CPU the Inductor backend compiles C++: it needs a C++ compiler on the PATH (a laptop may lack
    one). Chapters 03/08 and ``mlcourse train --compile`` ask this before compiling.
    """
    if sys.platform == "win32":
        return False, "torch.compile is not supported by this course on Windows"
    kind = torch.device(device).type if device is not None else "cpu"
    if kind == "cpu":
        found = next((c for c in ("g++", "c++", "clang++") if shutil.which(c)), None)
        if found is None:
            return False, "no C++ compiler (g++, c++ or clang++) on the PATH"
    elif kind == "mps":
        return False, "torch.compile is not used on Apple MPS here"
    return True, ""


class CompiledCall:
    """``fn`` compiled with ``torch.compile`` on its first call, or ``fn`` itself where the compiler cannot run
    here (no C++ compiler on a CPU machine, or the first compilation fails): then one line on stderr says why,
    never a traceback, and every call runs eagerly. ``seconds``: the first call (compilation + one run);
    ``notice``: why it runs eagerly, if it does."""

    def __init__(self, fn: Callable, device: Optional[torch.device | str] = None) -> None:
        self.fn, self.device = fn, device
        self.compiled: Optional[Callable] = None
        self.calls, self.seconds = 0, 0.0
        self.notice: Optional[str] = None

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        if self.notice is not None:
            return self.fn(*args)
        if self.compiled is not None:
            return self.compiled(*args)
        ok, why = compiler_available(self.device)
        if not ok:
            return self._give_up(why, args)
        # torch's C++ builder warns about a missing CUDA runtime on CPU-only machines: not our business
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        compiled = torch.compile(self.fn, dynamic=False)
        start = time.perf_counter()
        try:
            out = compiled(*args)
        except Exception as exc:  # noqa: BLE001 - any compiler failure: the eager function is the reference
            return self._give_up(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, args)
        self.compiled, self.seconds = compiled, time.perf_counter() - start
        return out

    def _give_up(self, why: str, args: tuple) -> Any:
        self.notice = why[:200]
        print(
            f"mlcourse: torch.compile is not available here ({self.notice}); running eagerly, which is slower "
            "but gives the same results",
            file=sys.stderr,
        )
        return self.fn(*args)


def _stack(outs: list[Any]) -> Any:
    """Stack per-task outputs (tensors, dicts, tuples of them) along a new leading task dimension."""
    if isinstance(outs[0], dict):
        return {k: _stack([o[k] for o in outs]) for k in outs[0]}
    if isinstance(outs[0], tuple):
        return tuple(_stack([o[i] for o in outs]) for i in range(len(outs[0])))
    return torch.stack(outs)


class TaskMap:
    """Applies ``fn(meta, task, grad_fn=...)`` to every task of a batch and stacks the results along a leading task
    dimension: ``vmap`` (``vectorise=True``, gradients by :func:`grad_func`) or a loop over the tasks (the reference,
    gradients by :func:`grad_autograd`). With ``compile=True`` the vmapped map, or in the loop the one-task
    function, is compiled once per ``key`` (the function's static arguments) and reused; if the compiler cannot run
    here, one line says why (``compile_notice``) and everything runs eagerly from then on. ``loop_only``: always
    the eager loop, whatever is asked (an algorithm that neither vectorises nor compiles)."""

    def __init__(self, *, vectorise: bool = True, compile: bool = False, loop_only: bool = False) -> None:
        self.loop_only = loop_only
        self._vectorise, self._compile = bool(vectorise), bool(compile)
        self.compiled: dict[tuple, CompiledCall] = {}
        self.compile_seconds = 0.0  # time spent in first calls of compiled maps (compilation + one step)
        self.compile_notice: Optional[str] = None  # why compilation was given up, if it was

    @property
    def vectorise(self) -> bool:
        return self._vectorise and not self.loop_only

    @vectorise.setter
    def vectorise(self, value: bool) -> None:
        self._vectorise = bool(value)

    @property
    def use_compile(self) -> bool:
        return self._compile and not self.loop_only

    @use_compile.setter
    def use_compile(self, value: bool) -> None:
        self._compile = bool(value)

    def __call__(self, fn: Callable, meta: dict[str, Params], task: dict[str, Tensor], key: tuple) -> Any:
        if self.vectorise:
            mapped = torch.func.vmap(partial(fn, grad_fn=grad_func), in_dims=(None, 0), randomness="error")
            return self._run_compiled(key, mapped, meta, task) if self.use_compile else mapped(meta, task)
        num_tasks = len(tree_leaves(task)[0])
        tasks = [tree_map(lambda v, i=i: v[i], task) for i in range(num_tasks)]
        if self.use_compile:
            # one task's function compiled once (torch.func.grad inside: autograd.grad(create_graph=True) cannot run
            # in a compiled region) and called task after task; on a CPU this beats the compiled vmap for the MAML
            # family, whose convolutions with every task's own weights become grouped ones
            # (benchmarks/results/bench-cpu-compiled-2026-12-03.json). use_compile turns False if the first call
            # gives up compiling: the remaining tasks then run eagerly.
            one = partial(fn, grad_fn=grad_func)
            return _stack([self._run_compiled(key, one, meta, t) if self.use_compile else one(meta, t) for t in tasks])
        return _stack([partial(fn, grad_fn=grad_autograd)(meta, t) for t in tasks])

    def _run_compiled(self, key: tuple, mapped: Callable, meta: dict[str, Params], task: dict[str, Tensor]) -> Any:
        """Call the compiled version of ``mapped`` (a :class:`CompiledCall`, built on first use)."""
        call = self.compiled.get(key)
        if call is None:
            call = self.compiled[key] = CompiledCall(mapped, next(iter(meta["model"].values())).device)
        first = call.calls == 0
        out = call(meta, task)
        if call.notice is not None:
            self.use_compile, self.compiled, self.compile_notice = False, {}, call.notice
        elif first:
            self.compile_seconds += call.seconds
        return out
