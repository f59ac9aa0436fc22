"""The functional core every learner shares: one adaptation API over per-task functions.

Parameters travel as plain dicts ``{name: Tensor}`` and models are called with ``torch.func.functional_call``.
A learner writes what one task does (``task_adapt``, ``task_predict``; training and evaluation are built from them);
``Learner`` applies those functions to every task of a batch through its :class:`~mlcourse.algorithms.execution.
TaskMap` (``vmap`` or a per-task loop, either one compiled or not), which also chooses the inner loop's gradient
function; with ``batched=True`` the training step of the algorithms :mod:`mlcourse.algorithms.batched` names runs
every task in one call of the network instead (``batch_train``). ``forward(batch) -> MetaOutput`` averages the
tasks' meta-losses; ``adapt`` and ``predict`` expose the two halves, on or off the graph, with the learner's own or
other meta-parameters; ``evaluate(batch)`` adapts without a meta-gradient. The inner loop's update rule is an inner optimiser (:mod:`mlcourse.algorithms.inner`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from typing import Any, NamedTuple, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.utils._pytree import tree_leaves

from mlcourse.algorithms.batched import why_not_batched
from mlcourse.algorithms.execution import TaskMap
from mlcourse.algorithms.inner import InnerSGD
from mlcourse.data.tasks import TaskBatch
from mlcourse.models import TaskNormI, context_rows

Params = dict[str, Tensor]
GradFn = Callable[[Callable[[Params], Tensor], Params, bool], Params]
LR = Union[float, Params]

# How normalisation layers get their statistics (``Learner(norm_mode=...)``): ``transductive``, the statistics of
# whatever batch the network is given (MAML's protocol: a query's output depends on the other queries); ``support``,
# the support set's statistics for the support set and for every later input (a prediction of one image is the same
# alone or in a batch); ``tasknorm``, ``support`` with a model of ``TaskNormI`` layers (the support set's moments
# blended with each image's own). Evaluation protocols add ``single``: each query classified alone, a batch of one
# normalised with its own statistics (what a model trained transductively does when it is given one image).
NORM_MODES = ("transductive", "support", "tasknorm")
PROTOCOLS = ("transductive", "support", "single")
CONTEXT_KEY = "context.x"  # the support images an adapted state carries in ``support`` mode (not a parameter name)


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
    return {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}


def model_params(state: Params) -> Params:
    """An adapted state without the support images it may carry (``CONTEXT_KEY``): the tensors a model can take."""
    return {k: v for k, v in state.items() if k != CONTEXT_KEY}


def in_context(state: Params, x: Tensor, fn: Callable[[Tensor], Tensor]) -> Tensor:
    """``fn(x)``, or in ``support`` mode (``state`` carries the support images) the rows of ``x`` in
    ``fn(cat([support, x]))``: normalised with the support set's statistics (see ``Learner._map``)."""
    if CONTEXT_KEY not in state:
        return fn(x)
    context = state[CONTEXT_KEY]
    return fn(torch.cat([context, x]))[context.shape[0] :]


def check_norm_mode(norm_mode: str) -> None:
    """Raise ``ValueError`` naming the bad value and the allowed ones."""
    if norm_mode not in NORM_MODES:
        raise ValueError(f"norm_mode={norm_mode!r} is not known; allowed: {', '.join(NORM_MODES)}")


def non_transductive(norm_mode: str) -> str:
    """The mode a trained learner predicts in unless told otherwise: its own, or ``support`` for a run trained
    transductively (the same adaptation; each query is then normalised with its support set's statistics, so its
    answer does not depend on the other queries)."""
    check_norm_mode(norm_mode)
    return "support" if norm_mode == "transductive" else norm_mode


def check_protocol(protocol: Optional[str], name: str = "protocol") -> None:
    """Raise ``ValueError`` naming a bad evaluation protocol and the allowed ones (``None``: the learner's own mode)."""
    if protocol is not None and protocol not in PROTOCOLS:
        raise ValueError(f"{name}={protocol!r} is not known; allowed: {', '.join(PROTOCOLS)} (or None)")


def features(model: nn.Module, params: Params, x: Tensor) -> Tensor:
    """``model.features(x)`` with the parameters ``params`` (names as in ``model.named_parameters()``)."""
    return functional_call(model.body, subdict(params, "body."), (x,))


def task_metrics(
    out: Tensor, y: Tensor, classification: bool, prefix: str = "query"
) -> tuple[Tensor, dict[str, Tensor]]:
    """Cross-entropy + accuracy (classification) or MSE (regression) of one task's predictions."""
    if classification:
        loss = F.cross_entropy(out, y)
        acc = (out.argmax(dim=-1) == y).to(out.dtype).mean()
        return loss, {f"{prefix}_loss": loss.detach(), f"{prefix}_accuracy": acc.detach()}
    loss = F.mse_loss(out, y)
    return loss, {f"{prefix}_loss": loss.detach()}


def sgd_steps(
    loss_fn: Callable[[Params], Tensor], params: Params, lr: LR, steps: int, *, create_graph: bool, grad_fn: GradFn
) -> Params:
    """``steps`` inner SGD steps ``p <- p - lr * dL/dp``; ``lr`` is a float or a per-parameter dict (Meta-SGD):
    :class:`~mlcourse.algorithms.inner.InnerSGD` as one call."""
    return InnerSGD(lr).run(loss_fn, params, steps, create_graph=create_graph, grad_fn=grad_fn)


class Learner(nn.Module):
    """Base class: owns ``model`` (and any extra meta-parameters); subclasses write per-task functions.

    Subclasses implement ``task_train(meta, task, *, grad_fn, classification, n_way) -> (loss, metrics)``
    and ``task_eval(meta, task, *, grad_fn, classification, n_way, steps) -> metrics`` where ``meta`` is
    ``self.meta_state()`` (dict of parameter dicts) and ``task`` a dict of one task's tensors.
    """

    algorithm_name = "base"
    surrogate_loss = False  # True when ``forward``'s loss only serves its gradient (Reptile): logs show the query loss
    # True when adapting from an adapted state continues the same inner loop (the MAML family: the state is a set of
    # model parameters); adaptation_curve then takes max_steps steps, not 0 + 1 + ... + max_steps
    continues_adaptation = False
    loop_only = False  # True: tasks always run one after another, eagerly (TaskMap's loop_only)

    def __init__(
        self,
        model: nn.Module,
        *,
        inner_lr: float = 0.4,
        inner_steps: int = 1,
        first_order: bool = False,
        vectorise: bool = True,
        compile: bool = False,
        norm_mode: str = "transductive",
        batched: bool = False,
    ) -> None:
        super().__init__()
        check_inner(inner_lr, inner_steps)
        self.model = model
        self.use_norm_mode(norm_mode)
        self.inner_lr, self.inner_steps = float(inner_lr), int(inner_steps)
        self.first_order = bool(first_order)
        self.task_map = TaskMap(vectorise=vectorise, compile=compile, loop_only=self.loop_only)
        self.batched = False
        if batched:
            self.check_batched()
            self.batched = True

    @property
    def batched_now(self) -> bool:
        """Whether ``forward`` takes the batched step now: asked for, and in the transductive protocol it needs (a
        learner switched to another mode by :meth:`use_norm_mode` or :meth:`normalising` uses its task map)."""
        return self.batched and self.norm_mode == "transductive"

    def check_batched(self) -> None:
        """Raise ``ValueError`` saying why this learner cannot take its training step batched, if it cannot."""
        why = why_not_batched(self.algorithm_name, self.model, self.norm_mode)
        if why:
            raise ValueError(f"batched=True is not available here: {why}")

    # how the tasks are mapped: the task map's settings and what its compiler did
    @property
    def vectorise(self) -> bool:
        return self.task_map.vectorise

    @vectorise.setter
    def vectorise(self, value: bool) -> None:
        self.task_map.vectorise = value

    @property
    def use_compile(self) -> bool:
        return self.task_map.use_compile

    @use_compile.setter
    def use_compile(self, value: bool) -> None:
        self.task_map.use_compile = value

    @property
    def compile_seconds(self) -> float:
        return self.task_map.compile_seconds

    @property
    def compile_notice(self) -> Optional[str]:
        return self.task_map.compile_notice

    # --- hooks -----------------------------------------------------------------------------------------
    def meta_state(self) -> dict[str, Params]:
        """Every meta-parameter as ``{group: {name: tensor}}``; passed unbatched into the per-task function."""
        return {"model": dict(self.model.named_parameters())}

    def task_inputs(self, batch: TaskBatch) -> dict[str, Tensor]:
        return {"sx": batch.support_x, "sy": batch.support_y, "qx": batch.query_x, "qy": batch.query_y}

    def task_adapt(
        self,
        meta: dict[str, Params],
        sx: Tensor,
        sy: Tensor,
        *,
        steps: int,
        inner_lr: Optional[float],
        create_graph: bool,
        grad_fn: GradFn,
        classification: bool,
        n_way: int,
    ) -> Params:
        """One task's adapted state from its support set: what :meth:`task_predict` needs besides ``meta``
        (MAML: phi; ANIL: the head; ProtoNets: the prototypes). ``inner_lr=None``: the learner's own rule."""
        raise NotImplementedError

    def task_predict(self, meta: dict[str, Params], state: Params, x: Tensor) -> Tensor:
        """One task's outputs (logits, log-probabilities or regression values) for inputs ``x``; a subclass runs
        the network through :func:`in_context` so that ``support`` mode normalises ``x`` with the support set."""
        raise NotImplementedError

    def context_state(self, sx: Tensor) -> Params:
        """What the adapted state carries for normalisation: the support images in ``support`` mode, else nothing."""
        return {} if self.norm_mode == "transductive" else {CONTEXT_KEY: sx}

    def task_state(self, meta: dict[str, Params], sx: Tensor, sy: Tensor, **kw: Any) -> Params:
        """:meth:`task_adapt` plus :meth:`context_state`: the state :meth:`task_predict` receives."""
        return {**self.task_adapt(meta, sx, sy, **kw), **self.context_state(sx)}

    def task_train(
        self, meta: dict[str, Params], task: dict[str, Tensor], *, grad_fn: GradFn, classification: bool, n_way: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """One task's meta-loss and metrics: adapt on the support set, score the queries (the graph back to
        ``meta`` is kept unless the learner is first order)."""
        state = self.task_state(
            meta,
            task["sx"],
            task["sy"],
            steps=self.inner_steps,
            inner_lr=None,
            create_graph=not self.first_order,
            grad_fn=grad_fn,
            classification=classification,
            n_way=n_way,
        )
        return task_metrics(self.task_predict(meta, state, task["qx"]), task["qy"], classification)

    def task_eval(
        self,
        meta: dict[str, Params],
        task: dict[str, Tensor],
        *,
        grad_fn: GradFn,
        classification: bool,
        n_way: int,
        steps: int,
        inner_lr: Optional[float] = None,
    ) -> dict[str, Tensor]:
        """One task's query metrics after adapting for ``steps`` steps (no meta-gradient)."""
        state = self.task_state(
            meta,
            task["sx"],
            task["sy"],
            steps=steps,
            inner_lr=inner_lr,
            create_graph=False,
            grad_fn=grad_fn,
            classification=classification,
            n_way=n_way,
        )
        return task_metrics(self.task_predict(meta, state, task["qx"]), task["qy"], classification)[1]

    def batch_train(self, meta: dict[str, Params], task: dict[str, Tensor], *, n_way: int) -> tuple[Tensor, dict]:
        """Every task's meta-loss ``[T]`` and metrics at once, equal to :meth:`task_train` mapped over the tasks
        (:mod:`mlcourse.algorithms.batched`; the algorithms it names implement it)."""
        raise NotImplementedError

    def extra_config(self) -> dict[str, Any]:
        return {}

    # --- shared machinery ------------------------------------------------------------------------------
    def _map(self, fn: Callable, meta: dict[str, Params], task: dict[str, Tensor], key: tuple = ()) -> Any:
        """Apply ``fn(meta, task)`` to every task: ``vmap`` (vectorised) or a loop whose outputs are stacked; with
        ``self.use_compile`` the vmapped map, or in the loop the one-task function, is compiled. ``key`` names ``fn``
        among the compiled maps (its static arguments). In ``support`` mode the normalisation layers take their
        statistics from the first rows of each input, as many as a support set has (a static value)."""
        with context_rows(self.model, self._context_size(task)):
            return self.task_map(fn, meta, task, (self.norm_mode, *key))

    def _context_size(self, task: dict[str, Any]) -> Optional[int]:
        """The support set's size in ``support`` mode (from the support images or the state carrying them)."""
        state = task.get("state") or {}
        if self.norm_mode == "transductive":
            if CONTEXT_KEY in state:
                raise ValueError(
                    f"these adapted states carry the support images ({CONTEXT_KEY!r}): they were adapted in a "
                    "non-transductive mode, but the learner's norm_mode is 'transductive'; predict in the same mode"
                )
            return None
        if "sx" in task:
            return int(task["sx"].shape[1])
        if CONTEXT_KEY not in state:
            raise ValueError(
                f"norm_mode={self.norm_mode!r} needs an adapted state that carries the support images "
                f"({CONTEXT_KEY!r}): adapt with this learner in this mode (learner.adapt(batch))"
            )
        return int(state[CONTEXT_KEY].shape[1])

    def _static(self, batch: TaskBatch) -> dict[str, Any]:
        cls = batch.is_classification
        return {"classification": cls, "n_way": batch.n_way if cls else 0}

    def forward(self, batch: TaskBatch) -> MetaOutput:
        """Meta-loss (mean over tasks) whose ``backward()`` gives the algorithm's meta-gradient."""
        static = self._static(batch)
        if self.batched_now:  # every task in one call of the network (mlcourse.algorithms.batched)
            if not static["classification"]:
                raise ValueError("batched=True trains on classification tasks only")
            losses, metrics = self.batch_train(self.meta_state(), self.task_inputs(batch), n_way=static["n_way"])
            return MetaOutput(losses.mean(), {k: v.detach() for k, v in metrics.items()})
        losses, metrics = self._map(
            partial(self.task_train, **static),
            self.meta_state(),
            self.task_inputs(batch),
            key=("train", *static.values()),
        )
        return MetaOutput(losses.mean(), {k: v.detach() for k, v in metrics.items()})

    def _detached_meta(self) -> dict[str, Params]:
        return {g: {k: v.detach() for k, v in ps.items()} for g, ps in self.meta_state().items()}

    def meta_parameters(
        self, params: Optional[Params | dict[str, Params]] = None, detach: bool = True
    ) -> dict[str, Params]:
        """The meta-parameters an adaptation starts from: the learner's own (:meth:`meta_state`), or ``params``
        instead — in that form ``{group: {name: tensor}}``, or one ``{name: tensor}`` replacing the model's."""
        meta = self.meta_state()
        if params is not None and not isinstance(params, dict):
            raise TypeError(
                f"params={params!r} is not a dict of tensors; steps, inner_lr and differentiable are keyword "
                "arguments: adapt(support, steps=5)"
            )
        if params is not None:
            grouped = all(isinstance(v, dict) for v in params.values())
            unknown = set(params) - set(meta) if grouped else set(params) - set(meta["model"])
            if unknown:
                raise ValueError(
                    f"params names {sorted(unknown)} this learner does not have; allowed: {sorted(meta)} "
                    f"or the model's parameter names"
                )
            parts = params if grouped else {"model": params}  # a group's missing names keep the learner's tensors
            meta = {g: {**ps, **parts.get(g, {})} for g, ps in meta.items()}
        if detach:
            meta = {g: {k: v.detach() for k, v in ps.items()} for g, ps in meta.items()}
        return meta

    def adapt(
        self,
        support: TaskBatch | tuple[Tensor, Tensor],
        params: Optional[Params | dict[str, Params]] = None,
        *,
        steps: Optional[int] = None,
        inner_lr: Optional[float] = None,
        differentiable: bool = False,
    ) -> Params:
        """Adapt to every task from its support set alone: the per-task state, each tensor ``[T, ...]``.

        The public adaptation API: ``learner.predict(learner.adapt(support), x)``. ``support``: a ``TaskBatch``
        (its query set is not looked at) or ``(support_x, support_y)`` as ``[T, N, ...]``. What is adapted is the
        algorithm's business: MAML, Meta-SGD and Reptile return phi (every model parameter), ANIL the head only,
        the pretrained baseline a linear probe on frozen features, ProtoNets the prototypes, Matching Nets the
        embedded support set. ``params``: start from these meta-parameters instead of the learner's
        (:meth:`meta_parameters`). ``steps`` defaults to the training value; ``inner_lr=None`` keeps the learner's
        own step size (Meta-SGD: its learned per-parameter rates). ``differentiable=True`` keeps the graph back to
        the meta-parameters (second order unless the learner is first order), so that a loss of
        ``predict(state, x, params, differentiable=True)`` back-propagates the meta-gradient.
        """
        steps = self.inner_steps if steps is None else steps
        check_inner(self.inner_lr if inner_lr is None else inner_lr, steps)
        batch = support if isinstance(support, TaskBatch) else TaskBatch(*support, support[0][:, :0], support[1][:, :0])
        sx, sy, static = batch.support_x, batch.support_y, self._static(batch)

        def one_task(meta: dict[str, Params], task: dict[str, Tensor], grad_fn: GradFn) -> Params:
            return self.task_state(
                meta,
                task["sx"],
                task["sy"],
                steps=steps,
                inner_lr=inner_lr,
                create_graph=differentiable and not self.first_order,
                grad_fn=grad_fn,
                **static,
            )

        meta = self.meta_parameters(params, detach=not differentiable)
        key = ("adapt", steps, inner_lr, differentiable, *static.values())
        with nullcontext() if differentiable else torch.no_grad():
            state = self._map(one_task, meta, {"sx": sx, "sy": sy}, key=key)
        return state if differentiable else {k: v.detach() for k, v in state.items()}

    def predict(
        self,
        state: Params,
        x: Tensor,
        params: Optional[Params | dict[str, Params]] = None,
        *,
        differentiable: bool = False,
    ) -> Tensor:
        """Outputs of the adapted learners: ``state`` from :meth:`adapt` (``[T, ...]``), inputs ``x`` ``[T, M, ...]``
        -> ``[T, M, n_out]`` (logits or log-probabilities for classification, values for regression). Outside
        ``transductive`` mode an input's output does not depend on the other inputs. ``params`` and
        ``differentiable`` as in :meth:`adapt` (the meta-parameters the prediction also uses: ANIL's body,
        ProtoNets' embedding)."""
        num_tasks = len(tree_leaves(state)[0]) if state else None
        if num_tasks is not None and x.shape[0] != num_tasks:
            raise ValueError(
                f"x has {x.shape[0]} task(s) but the state was adapted to {num_tasks}; give x as [T, M, ...]"
            )

        def one_task(meta: dict[str, Params], task: dict[str, Any], grad_fn: GradFn) -> Tensor:
            return self.task_predict(meta, task["state"], task["x"])

        meta = self.meta_parameters(params, detach=not differentiable)
        with nullcontext() if differentiable else torch.no_grad():
            return self._map(one_task, meta, {"state": state, "x": x}, key=("predict", differentiable))

    def adaptation_curve(
        self,
        batch: TaskBatch,
        max_steps: int,
        inner_lr: Optional[float] = None,
        params: Optional[Params | dict[str, Params]] = None,
    ) -> dict[str, Tensor]:
        """Per-task query metrics after 0, 1, ..., ``max_steps`` inner steps: ``{"query_loss": [T, max_steps + 1],
        ...}`` (chapters 02, 04 and 05 plot it). Column ``s`` equals ``evaluate(batch, inner_steps=s)``; the MAML
        family computes all columns in one inner loop of ``max_steps`` steps; ``params``: start from these
        meta-parameters (:meth:`meta_parameters`). No meta-gradient."""
        check_inner(self.inner_lr if inner_lr is None else inner_lr, max_steps)
        static = self._static(batch)
        meta = self.meta_parameters(params)
        with torch.no_grad():
            if not self.continues_adaptation:
                columns = [
                    self._map(
                        partial(self.task_eval, steps=s, inner_lr=inner_lr, **static),
                        meta,
                        self.task_inputs(batch),
                        key=("eval", s, inner_lr, *static.values()),
                    )
                    for s in range(max_steps + 1)
                ]
                return {k: torch.stack([c[k] for c in columns], dim=1).detach() for k in columns[0]}

            def one_task(meta: dict[str, Params], task: dict[str, Tensor], grad_fn: GradFn) -> dict[str, Tensor]:
                adapt = partial(
                    self.task_state,
                    sx=task["sx"],
                    sy=task["sy"],
                    inner_lr=inner_lr,
                    create_graph=False,
                    grad_fn=grad_fn,
                    **static,
                )
                state, rows = adapt(meta, steps=0), []
                for s in range(max_steps + 1):
                    rows.append(
                        task_metrics(self.task_predict(meta, state, task["qx"]), task["qy"], static["classification"])[
                            1
                        ]
                    )
                    if s < max_steps:  # one more step from the adapted state
                        state = adapt({**meta, "model": {**meta["model"], **model_params(state)}}, steps=1)
                return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}

            curve = self._map(
                one_task,
                meta,
                self.task_inputs(batch),
                key=("curve", max_steps, inner_lr, *static.values()),
            )
        return {k: v.detach() for k, v in curve.items()}

    def evaluate(
        self, batch: TaskBatch, inner_steps: int | None = None, protocol: Optional[str] = None
    ) -> dict[str, Tensor]:
        """Adapt on each support set (``inner_steps``, default the training value) and score the queries: the
        metrics of ``predict(adapt(batch), query_x)``, computed task by task in one map.

        ``protocol``: ``None`` keeps the learner's ``norm_mode``; ``"transductive"`` or ``"support"`` evaluates in
        that mode; ``"single"`` classifies each query alone, a batch of one normalised with its own statistics.
        No meta-gradient is built (works inside or outside ``torch.no_grad()``); returns per-task ``[T]`` metrics.
        """
        check_protocol(protocol)
        steps = self.inner_steps if inner_steps is None else inner_steps
        check_inner(self.inner_lr, steps)
        if protocol == "single":  # a batch of one, normalised with its own statistics
            with self.normalising("transductive"):
                return self._evaluate_each_query_alone(batch, steps)
        with torch.no_grad(), self.normalising(protocol or self.norm_mode):
            static = self._static(batch)
            metrics = self._map(
                partial(self.task_eval, steps=steps, **static),
                self._detached_meta(),
                self.task_inputs(batch),
                key=("eval", steps, *static.values()),
            )
        return {k: v.detach() for k, v in metrics.items()}

    def _evaluate_each_query_alone(self, batch: TaskBatch, steps: int) -> dict[str, Tensor]:
        """The ``single`` protocol: ``predict`` called with one query per task at a time (no query sees another)."""
        state = self.adapt(batch, steps=steps)
        outs = torch.cat([self.predict(state, batch.query_x[:, j : j + 1]) for j in range(batch.query_x.shape[1])], 1)
        rows = [task_metrics(o, y, batch.is_classification)[1] for o, y in zip(outs, batch.query_y)]
        return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}

    def use_norm_mode(self, norm_mode: str) -> None:
        """Run in ``norm_mode`` from now on (checked against the model: ``tasknorm`` needs TaskNorm-I layers)."""
        check_norm_mode(norm_mode)
        if norm_mode == "tasknorm" and not any(isinstance(m, TaskNormI) for m in self.model.modules()):
            raise ValueError("norm_mode='tasknorm' needs a model with TaskNorm-I layers (Conv4(norm='tasknorm'))")
        self.norm_mode = norm_mode

    @contextmanager
    def normalising(self, norm_mode: str) -> Iterator[None]:
        """Within the block the learner runs in ``norm_mode`` (evaluation under another protocol); restored after."""
        saved = self.norm_mode
        self.use_norm_mode(norm_mode)
        try:
            yield
        finally:
            self.norm_mode = saved

    def config_dict(self) -> dict[str, Any]:
        """Hyper-parameters for checkpoints (``make_learner(c.pop("algorithm"), model, **c)`` rebuilds it)."""
        return {
            "algorithm": self.algorithm_name,
            "inner_lr": self.inner_lr,
            "inner_steps": self.inner_steps,
            "first_order": self.first_order,
            "vectorise": self.vectorise,
            "compile": self.use_compile,
            "norm_mode": self.norm_mode,
            "batched": self.batched_now,
            **self.extra_config(),
        }
