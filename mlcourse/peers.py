"""The other meta-learning libraries ``mlcourse bench`` measures beside learn2learn: **higher** (Grefenstette et al.,
2019: a differentiable copy of a module and its optimiser) and **TorchOpt** (Ren et al., 2023: differentiable
optimisers that update a module's parameters in place). Each is written the way its own MAML example is written,
on the same model, data and shape as this project's learners, so that a row compares libraries, not setups.

* higher: ``innerloop_ctx`` per task, ``diffopt.step`` on the support loss, the query loss back-propagated task by
  task; first-order MAML with ``track_higher_grads=False`` (the adapted weights' gradient copied onto the
  meta-parameters); Meta-SGD with one parameter group per tensor whose learning rate is a learned tensor
  (``override``).
* TorchOpt: ``torchopt.MetaSGD`` on the module, ``extract_state_dict`` / ``recover_state_dict`` around each task.
  TorchOpt's examples write second-order MAML only: its other rows are absent, with the reason in the row's note.

Each loss is divided by the number of tasks, so that every step's gradient is the mean over tasks, as ours.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import types
import warnings
from collections.abc import Callable
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlcourse.data.tasks import TaskBatch

HIGHER, TORCHOPT = "higher", "torchopt"
PEERS = (HIGHER, TORCHOPT)
PEER_ALGORITHMS = {HIGHER: ("maml", "fomaml", "metasgd"), TORCHOPT: ("maml",)}
ABSENT = {TORCHOPT: "TorchOpt's examples write second-order MAML only"}

Step = Callable[[], Tensor]


def load_peer(name: str) -> tuple[Optional[types.ModuleType], str]:
    """``(module, "")``, or ``(None, why)`` when the library does not install or import here (one line, no
    traceback: the benchmark goes on without it)."""
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; allowed: {', '.join(PEERS)}")
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            return importlib.import_module(name), ""
    except Exception as exc:  # noqa: BLE001 - any import failure of an optional peer is reported, not raised
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"{name} is not available here ({type(exc).__name__}: {text[:160]})"


def peer_note(name: str, algorithm: str) -> str:
    """Why ``name`` has no row for ``algorithm`` (empty when it has one)."""
    if algorithm in PEER_ALGORITHMS[name]:
        return ""
    return f"{name}: no {algorithm} row ({ABSENT.get(name, f'no {algorithm} in its examples')})"


def peer_step(
    library: types.ModuleType, name: str, algorithm: str, model: nn.Module, batch: TaskBatch, steps: int, lr: float
) -> tuple[Step, nn.Module]:
    """``step()`` = one meta-gradient of ``algorithm`` written with library ``name`` on ``model`` (use a copy): it
    zeroes the gradients, runs every task and back-propagates; returns ``(step, owner)``, ``owner`` holding every
    meta-parameter (the model, Meta-SGD's learning rates)."""
    if algorithm not in PEER_ALGORITHMS[name]:
        raise ValueError(f"{name} has no {algorithm!r} here; allowed: {', '.join(PEER_ALGORITHMS[name])}")
    if name == HIGHER:
        return _higher_step(library, algorithm, model, batch, steps, lr)
    return _torchopt_step(library, model, batch, steps, lr)


def _higher_step(
    higher: types.ModuleType, algorithm: str, model: nn.Module, batch: TaskBatch, steps: int, lr: float
) -> tuple[Step, nn.Module]:
    params = list(model.parameters())
    rates = nn.ParameterList([nn.Parameter(torch.full_like(p.detach(), lr)) for p in params])
    if algorithm == "metasgd":  # one group per tensor, each with its learned per-element rate
        inner_opt = torch.optim.SGD([{"params": [p]} for p in params], lr=lr)
        override: Optional[dict[str, Any]] = {"lr": list(rates)}
    else:
        inner_opt, override = torch.optim.SGD(params, lr=lr), None
    owner = nn.ModuleList([model, rates]) if algorithm == "metasgd" else nn.ModuleList([model])
    first_order = algorithm == "fomaml"

    def step() -> Tensor:
        owner.zero_grad(set_to_none=True)
        total: Any = 0.0  # a tensor on the model's device after the first task
        for t in range(batch.num_tasks):
            context = higher.innerloop_ctx(
                model, inner_opt, copy_initial_weights=False, track_higher_grads=not first_order, override=override
            )
            with context as (fmodel, diffopt):
                for _ in range(steps):
                    diffopt.step(F.cross_entropy(fmodel(batch.support_x[t]), batch.support_y[t]))
                loss = F.cross_entropy(fmodel(batch.query_x[t]), batch.query_y[t]) / batch.num_tasks
                if first_order:  # the adapted weights' gradient is the first-order meta-gradient
                    for p, g in zip(params, torch.autograd.grad(loss, list(fmodel.parameters()))):
                        p.grad = g if p.grad is None else p.grad + g
                else:
                    loss.backward()
            total = total + loss.detach()
        return total

    return step, owner


def _torchopt_step(
    torchopt: types.ModuleType, model: nn.Module, batch: TaskBatch, steps: int, lr: float
) -> tuple[Step, nn.Module]:
    inner_opt = torchopt.MetaSGD(model, lr=lr)
    owner = nn.ModuleList([model])

    def step() -> Tensor:
        owner.zero_grad(set_to_none=True)
        model_state = torchopt.extract_state_dict(model)
        optimiser_state = torchopt.extract_state_dict(inner_opt)
        total: Any = 0.0  # a tensor on the model's device after the first task
        for t in range(batch.num_tasks):
            for _ in range(steps):
                inner_opt.step(F.cross_entropy(model(batch.support_x[t]), batch.support_y[t]))
            loss = F.cross_entropy(model(batch.query_x[t]), batch.query_y[t]) / batch.num_tasks
            loss.backward()
            total = total + loss.detach()
            torchopt.recover_state_dict(model, model_state)
            torchopt.recover_state_dict(inner_opt, optimiser_state)
        return total

    return step, owner
