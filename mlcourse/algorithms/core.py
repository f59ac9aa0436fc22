"""The functional core every learner shares (ch03 algorithms, ch04 bilevel optimisation, ch08 scalability).

Parameters travel as plain dicts ``{name: Tensor}`` and models are called with
``torch.func.functional_call``. Two interchangeable gradient functions drive the inner loop:

* ``grad_func`` (``torch.func.grad``): used inside ``torch.func.vmap`` over tasks. It builds the graph the
  outer ``loss.backward()`` needs automatically (create_graph semantics), so first order = detach.
* ``grad_autograd`` (``torch.autograd.grad(create_graph=...)``): the plain per-task reference loop.

``Learner`` is the ``nn.Module`` base class: ``forward(batch) -> MetaOutput`` maps a per-task function over
the tasks (``vmap`` or a Python loop) and averages; ``evaluate(batch)`` adapts without a meta-gradient.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, NamedTuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from mlcourse.data.tasks import TaskBatch

Params = dict[str, Tensor]
GradFn = Callable[[Callable[[Params], Tensor], Params, bool], Params]
LR = Union[float, Params]


class MetaOutput(NamedTuple):
    """What ``learner(batch)`` returns: the meta-loss to ``backward()`` and detached per-task metrics ``[T]``."""

    loss: Tensor
    metrics: dict[str, Tensor]


def check_inner(inner_lr: float, inner_steps: int) -> None:
    """Raise ``ValueError`` naming the bad value and the allowed range."""
    if not isinstance(inner_steps, int) or isinstance(inner_steps, bool) or inner_steps < 0:
        raise ValueError(f"inner_steps={inner_steps!r} is not allowed; allowed: an integer >= 0 (0 = no adaptation)")
    if not float(inner_lr) > 0:
        raise ValueError(f"inner_lr={inner_lr!r} is not allowed; allowed: a float > 0")


def subdict(params: Params, prefix: str) -> Params:
    """``{"head.weight": w, "body.0.x": b}, "head." -> {"weight": w}`` (to call a submodule functionally)."""
    return {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}


def features(model: nn.Module, params: Params, x: Tensor) -> Tensor:
    """``model.features(x)`` with the parameters ``params`` (names as in ``model.named_parameters()``)."""
    return functional_call(model.body, subdict(params, "body."), (x,))


def task_metrics(out: Tensor, y: Tensor, classification: bool, prefix: str = "query") -> tuple[Tensor, dict[str, Tensor]]:
    """Cross-entropy + accuracy (classification) or MSE (regression) of one task's predictions."""
    if classification:
        loss = F.cross_entropy(out, y)
        acc = (out.argmax(dim=-1) == y).to(out.dtype).mean()
        return loss, {f"{prefix}_loss": loss.detach(), f"{prefix}_accuracy": acc.detach()}
    loss = F.mse_loss(out, y)
    return loss, {f"{prefix}_loss": loss.detach()}


def grad_func(loss_fn: Callable[[Params], Tensor], params: Params, create_graph: bool) -> Params:
    """Gradient with ``torch.func.grad`` (vmap-able). The outer autograd graph is kept unless ``create_graph=False``."""
    grads = torch.func.grad(loss_fn)(params)
    return grads if create_graph else {k: g.detach() for k, g in grads.items()}


def grad_autograd(loss_fn: Callable[[Params], Tensor], params: Params, create_graph: bool) -> Params:
    """Reference gradient with ``torch.autograd.grad`` (one task at a time); works under ``torch.no_grad()``."""
    with torch.enable_grad():
        leaves = {k: v if v.requires_grad else v.detach().requires_grad_() for k, v in params.items()}
        grads = torch.autograd.grad(loss_fn(leaves), list(leaves.values()), create_graph=create_graph, allow_unused=True)
    return {k: torch.zeros_like(v) if g is None else g for (k, v), g in zip(leaves.items(), grads)}


def sgd_steps(loss_fn: Callable[[Params], Tensor], params: Params, lr: LR, steps: int, *, create_graph: bool, grad_fn: GradFn) -> Params:
    """``steps`` inner SGD steps ``p <- p - lr * dL/dp``; ``lr`` is a float or a per-parameter dict (Meta-SGD)."""
    for _ in range(steps):
        grads = grad_fn(loss_fn, params, create_graph)
        params = {k: p - (lr[k] if isinstance(lr, dict) else lr) * grads[k] for k, p in params.items()}
    return params


def _stack(outs: list[Any]) -> Any:
    """Stack per-task outputs (tensors, dicts, tuples of them) along a new leading task dimension."""
    if isinstance(outs[0], dict):
        return {k: _stack([o[k] for o in outs]) for k in outs[0]}
    if isinstance(outs[0], tuple):
        return tuple(_stack([o[i] for o in outs]) for i in range(len(outs[0])))
    return torch.stack(outs)


class Learner(nn.Module):
    """Base class: owns ``model`` (and any extra meta-parameters); subclasses write per-task functions.

    Subclasses implement ``task_train(meta, task, *, grad_fn, classification, n_way) -> (loss, metrics)``
    and ``task_eval(meta, task, *, grad_fn, classification, n_way, steps) -> metrics`` where ``meta`` is
    ``self.meta_state()`` (dict of parameter dicts) and ``task`` a dict of one task's tensors.
    """

    algorithm_name = "base"

    def __init__(self, model: nn.Module, *, inner_lr: float = 0.4, inner_steps: int = 1, first_order: bool = False, vectorise: bool = True) -> None:
        super().__init__()
        check_inner(inner_lr, inner_steps)
        self.model = model
        self.inner_lr, self.inner_steps = float(inner_lr), int(inner_steps)
        self.first_order, self.vectorise = bool(first_order), bool(vectorise)

    # --- hooks -----------------------------------------------------------------------------------------
    def meta_state(self) -> dict[str, Params]:
        """Every meta-parameter as ``{group: {name: tensor}}``; passed unbatched into the per-task function."""
        return {"model": dict(self.model.named_parameters())}

    def task_inputs(self, batch: TaskBatch) -> dict[str, Tensor]:
        return {"sx": batch.support_x, "sy": batch.support_y, "qx": batch.query_x, "qy": batch.query_y}

    def task_train(self, meta: dict[str, Params], task: dict[str, Tensor], **kw: Any) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def task_eval(self, meta: dict[str, Params], task: dict[str, Tensor], **kw: Any) -> dict[str, Tensor]:
        raise NotImplementedError

    def extra_config(self) -> dict[str, Any]:
        return {}

    # --- shared machinery ------------------------------------------------------------------------------
    def _map(self, fn: Callable, meta: dict[str, Params], task: dict[str, Tensor]) -> Any:
        """Apply ``fn(meta, task)`` to every task: ``vmap`` (vectorised) or a loop whose outputs are stacked."""
        if self.vectorise:
            return torch.func.vmap(partial(fn, grad_fn=grad_func), in_dims=(None, 0), randomness="error")(meta, task)
        outs = [partial(fn, grad_fn=grad_autograd)(meta, {k: v[i] for k, v in task.items()}) for i in range(len(next(iter(task.values()))))]
        return _stack(outs)

    def _static(self, batch: TaskBatch) -> dict[str, Any]:
        cls = batch.is_classification
        return {"classification": cls, "n_way": batch.n_way if cls else 0}

    def forward(self, batch: TaskBatch) -> MetaOutput:
        """Meta-loss (mean over tasks) whose ``backward()`` gives the algorithm's meta-gradient."""
        losses, metrics = self._map(partial(self.task_train, **self._static(batch)), self.meta_state(), self.task_inputs(batch))
        return MetaOutput(losses.mean(), {k: v.detach() for k, v in metrics.items()})

    def evaluate(self, batch: TaskBatch, inner_steps: int | None = None) -> dict[str, Tensor]:
        """Adapt on each support set (``inner_steps``, default the training value) and score the queries.

        No meta-gradient is built (works inside or outside ``torch.no_grad()``); returns per-task ``[T]`` metrics.
        """
        steps = self.inner_steps if inner_steps is None else inner_steps
        check_inner(self.inner_lr, steps)
        meta = {g: {k: v.detach() for k, v in ps.items()} for g, ps in self.meta_state().items()}
        with torch.no_grad():
            metrics = self._map(partial(self.task_eval, steps=steps, **self._static(batch)), meta, self.task_inputs(batch))
        return {k: v.detach() for k, v in metrics.items()}

    def config_dict(self) -> dict[str, Any]:
        """Hyper-parameters for checkpoints (``make_learner(c.pop("algorithm"), model, **c)`` rebuilds it)."""
        return {"algorithm": self.algorithm_name, "inner_lr": self.inner_lr, "inner_steps": self.inner_steps,
                "first_order": self.first_order, "vectorise": self.vectorise, **self.extra_config()}
