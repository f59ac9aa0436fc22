"""Gradient-based meta-learners: MAML, FOMAML, Meta-SGD, ANIL, Proto-MAML, Reptile, the article's rule, pretrain
(ch03 algorithms, ch04 bilevel, ch05 CIFAR, ch08 scalability). Per-task functions only; ``Learner`` maps them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.utils.checkpoint import checkpoint

from mlcourse.algorithms import batched
from mlcourse.algorithms.core import (
    Learner,
    Params,
    features,
    in_context,
    model_params,
    subdict,
    task_metrics,
)
from mlcourse.algorithms.execution import grad_autograd
from mlcourse.algorithms.inner import InnerSGD, Proximal
from mlcourse.data.tasks import TaskBatch

Task = dict[str, Tensor]


class MAML(Learner):
    """MAML (Finn et al., 2017): ``min_theta mean_t L_query(phi_t)``, ``phi_t`` = ``inner_steps`` SGD steps on
    the support set from theta. Second order by default: the exact meta-gradient through every inner step.
    Its adapted state is phi, every parameter of the model."""

    algorithm_name = "maml"
    continues_adaptation = True

    def inner_lrs(self, meta: dict[str, Params]) -> float | Params:
        return self.inner_lr

    def task_adapt(self, meta, sx, sy, *, steps, inner_lr, create_graph, grad_fn, classification, n_way):  # type: ignore[override]
        """phi = theta after ``steps`` steps of the inner optimiser on the support loss."""
        optimiser = self.inner_optimiser(meta, inner_lr)
        loss_fn = self._support_loss(sx, sy, classification)
        return optimiser.run(loss_fn, meta["model"], steps, create_graph=create_graph, grad_fn=grad_fn)

    def _support_loss(self, sx: Tensor, sy: Tensor, classification: bool):
        """The inner loss of parameters ``p``: the model's loss on the support set."""
        return lambda p: task_metrics(functional_call(self.model, p, (sx,)), sy, classification)[0]

    def inner_optimiser(self, meta: dict[str, Params], inner_lr: float | None = None) -> InnerSGD:
        """The inner loop's update rule: SGD at the learner's step size (Meta-SGD: its learned rates), or at
        ``inner_lr`` when one is given."""
        return InnerSGD(self.inner_lrs(meta) if inner_lr is None else float(inner_lr))

    def task_predict(self, meta: dict[str, Params], state: Params, x: Tensor) -> Tensor:
        return in_context(state, x, lambda z: functional_call(self.model, model_params(state), (z,)))

    def batch_train(self, meta, task, *, n_way):  # type: ignore[override]
        """:meth:`task_train` for every task at once: the inner loop on the stacked parameters ``[T, ...]``, whose
        gradient is that of the sum of the tasks' support losses (row ``t``: task ``t``'s gradient)."""
        second_order = not self.first_order
        loss_fn = batched.support_loss(self.model, task["sx"], task["sy"], second_order)
        stacked = batched.stack_params(meta["model"], task["sx"].shape[0])
        phi = self.inner_optimiser(meta).run(
            loss_fn, stacked, self.inner_steps, create_graph=second_order, grad_fn=grad_autograd
        )
        return batched.task_metrics(batched.logits(self.model, phi, task["qx"]), task["qy"])


class TruncatedMAML(MAML):
    """MAML with back-propagation through the last ``backprop_steps`` inner steps only (truncated back-propagation,
    Shaban et al. 2019): the earlier steps pass the meta-gradient on as the identity, as first-order MAML does, so
    their graph is never stored. ``backprop_steps = inner_steps`` is MAML, ``0`` is first-order MAML."""

    algorithm_name = "truncated"

    def __init__(self, model: nn.Module, *, backprop_steps: int = 1, **kw: Any) -> None:
        super().__init__(model, **kw)
        if not isinstance(backprop_steps, int) or isinstance(backprop_steps, bool) or backprop_steps < 0:
            raise ValueError(f"backprop_steps={backprop_steps!r} is not allowed; allowed: an integer >= 0")
        self.backprop_steps = backprop_steps

    def task_adapt(self, meta, sx, sy, *, steps, inner_lr, create_graph, grad_fn, classification, n_way):  # type: ignore[override]
        loss_fn, optimiser = self._support_loss(sx, sy, classification), self.inner_optimiser(meta, inner_lr)
        exact = min(self.backprop_steps, steps) if create_graph else 0
        early = optimiser.run(loss_fn, meta["model"], steps - exact, create_graph=False, grad_fn=grad_fn)
        return optimiser.run(loss_fn, early, exact, create_graph=True, grad_fn=grad_fn)

    def extra_config(self) -> dict[str, Any]:
        return {"backprop_steps": self.backprop_steps}


class CheckpointedMAML(MAML):
    """Second-order MAML whose inner steps are recomputed in the backward pass instead of stored
    (``torch.utils.checkpoint``): the same meta-gradient, with the memory of one step's activations plus the
    parameters after each step. Tasks run one after another, eagerly: checkpointing does not compose with ``vmap``,
    and a compiled region cannot take the inner loop's second-order gradient."""

    algorithm_name = "checkpointed"

    loop_only = True  # see the class docstring

    def task_adapt(self, meta, sx, sy, *, steps, inner_lr, create_graph, grad_fn, classification, n_way):  # type: ignore[override]
        loss_fn, optimiser = self._support_loss(sx, sy, classification), self.inner_optimiser(meta, inner_lr)
        if not create_graph:
            return optimiser.run(loss_fn, meta["model"], steps, create_graph=False, grad_fn=grad_fn)
        names = list(meta["model"])

        def one_step(*values: Tensor) -> tuple[Tensor, ...]:
            phi = optimiser.run(loss_fn, dict(zip(names, values)), 1, create_graph=True, grad_fn=grad_fn)
            return tuple(phi[k] for k in names)

        values = tuple(meta["model"][k] for k in names)
        for _ in range(steps):
            values = checkpoint(one_step, *values, use_reentrant=False)
        return dict(zip(names, values))


def _dot(a: Params, b: Params) -> Tensor:
    """The inner product of two parameter dicts, summed over every tensor."""
    return sum((a[k] * b[k]).sum() for k in a)


def hessian_vector_product(loss_fn, params: Params, vector: Params, grad_fn) -> Params:
    """``H v`` with ``H`` the Hessian of ``loss_fn`` at ``params``: the gradient of ``<grad loss_fn, v>`` (double
    back-propagation; the Hessian itself is never formed)."""
    return grad_fn(lambda p: _dot(grad_fn(loss_fn, p, True), vector), params, False)


def conjugate_gradient(matvec, b: Params, steps: int) -> Params:
    """``steps`` conjugate-gradient iterations for ``A x = b`` from ``x = 0``, ``A`` symmetric positive definite
    given as ``matvec``. A fixed number of iterations and no data-dependent branch, so that it maps over tasks with
    ``vmap``; a direction of non-positive curvature (``A`` not positive definite there) ends the solve."""
    x = {k: torch.zeros_like(v) for k, v in b.items()}
    r, p = dict(b), dict(b)
    rr = _dot(r, r)
    live = torch.ones_like(rr, dtype=torch.bool)
    for _ in range(steps):
        ap = matvec(p)
        pap = _dot(p, ap)
        live = live & (pap > 0) & (rr > 0)
        alpha = torch.where(live, rr / torch.where(live, pap, torch.ones_like(pap)), torch.zeros_like(pap))
        x = {k: x[k] + alpha * p[k] for k in x}
        r = {k: r[k] - alpha * ap[k] for k in r}
        rr_next = _dot(r, r)
        beta = torch.where(live, rr_next / torch.where(live, rr, torch.ones_like(rr)), torch.zeros_like(rr))
        p = {k: r[k] + beta * p[k] for k in p}
        rr = rr_next
    return x


class IMAML(MAML):
    """iMAML (Rajeswaran et al., 2019): each task solves the proximal problem
    ``min_phi L_support(phi) + lam/2 ||phi - theta||^2`` by ``inner_steps`` gradient steps from theta, and the
    meta-gradient is the implicit one, ``(I + H/lam)^-1 grad L_query(phi)`` with ``H`` the support loss's Hessian at
    phi, solved by ``cg_steps`` conjugate-gradient iterations of Hessian-vector products. Nothing of the inner loop
    is back-propagated, so its memory does not grow with ``inner_steps``. The loss ``forward`` returns is the
    surrogate ``sum <theta, stopgrad(g)>`` whose gradient is that meta-gradient ``g`` (as Reptile's).

    ``cg_damping`` (delta) solves the damped system ``((1 + delta) I + H/lam) g = grad L_query`` instead (Tikhonov
    damping, as the iMAML authors' code does): a network's support loss has directions of negative curvature, where
    ``I + H/lam`` is not positive definite and conjugate gradient amplifies them; ``delta = 0`` is the exact formula."""

    algorithm_name = "imaml"
    surrogate_loss = True
    continues_adaptation = False  # every adaptation is anchored at the meta-parameters it starts from

    def __init__(
        self, model: nn.Module, *, imaml_lambda: float = 2.0, cg_steps: int = 5, cg_damping: float = 0.0, **kw: Any
    ) -> None:
        super().__init__(model, **kw)
        if isinstance(imaml_lambda, bool) or not float(imaml_lambda) > 0:
            raise ValueError(f"imaml_lambda={imaml_lambda!r} is not allowed; allowed: a float > 0")
        if not isinstance(cg_steps, int) or isinstance(cg_steps, bool) or cg_steps < 1:
            raise ValueError(f"cg_steps={cg_steps!r} is not allowed; allowed: an integer >= 1")
        if isinstance(cg_damping, bool) or not float(cg_damping) >= 0:
            raise ValueError(f"cg_damping={cg_damping!r} is not allowed; allowed: a float >= 0 (0 = exact)")
        self.imaml_lambda, self.cg_steps, self.cg_damping = float(imaml_lambda), cg_steps, float(cg_damping)

    def extra_config(self) -> dict[str, Any]:
        return {"imaml_lambda": self.imaml_lambda, "cg_steps": self.cg_steps, "cg_damping": self.cg_damping}

    def task_adapt(self, meta, sx, sy, *, steps, inner_lr, create_graph, grad_fn, classification, n_way):  # type: ignore[override]
        """phi = ``steps`` gradient steps on the proximal support loss, anchored at ``meta``'s model parameters."""
        if create_graph:
            raise ValueError(
                "imaml adapts without a graph: its meta-gradient is implicit, not back-propagated through the inner "
                "loop; train it with learner(batch).loss.backward() (adapt(..., differentiable=False))"
            )
        optimiser = self.inner_optimiser(meta, inner_lr)
        loss_fn = self._support_loss(sx, sy, classification)
        return optimiser.run(loss_fn, optimiser.anchor, steps, create_graph=False, grad_fn=grad_fn)

    def inner_optimiser(self, meta: dict[str, Params], inner_lr: float | None = None) -> Proximal:  # type: ignore[override]
        """SGD on the proximal problem anchored at the (detached) meta-parameters."""
        anchor = {k: v.detach() for k, v in meta["model"].items()}
        return Proximal(super().inner_optimiser(meta, inner_lr), self.imaml_lambda, anchor)

    def implicit_gradient(self, support_loss, phi: Params, query_gradient: Params, grad_fn) -> Params:
        """``((1 + delta) I + H/lam)^-1 query_gradient`` by conjugate gradient, ``H`` the Hessian of ``support_loss`` at
        ``phi`` (``delta = cg_damping``)."""
        diagonal = 1.0 + self.cg_damping

        def matvec(u: Params) -> Params:
            hu = hessian_vector_product(support_loss, phi, u, grad_fn)
            return {k: diagonal * u[k] + hu[k] / self.imaml_lambda for k in u}

        return conjugate_gradient(matvec, query_gradient, self.cg_steps)

    def task_train(self, meta, task, *, grad_fn, classification, n_way):  # type: ignore[override]
        common = {"grad_fn": grad_fn, "classification": classification, "n_way": n_way}
        phi = self.task_adapt(
            meta, task["sx"], task["sy"], steps=self.inner_steps, inner_lr=None, create_graph=False, **common
        )
        context = self.context_state(task["sx"])

        def query_loss(p: Params) -> Tensor:
            return task_metrics(self.task_predict(meta, {**p, **context}, task["qx"]), task["qy"], classification)[0]

        support_loss = self._support_loss(task["sx"], task["sy"], classification)
        g = self.implicit_gradient(support_loss, phi, grad_fn(query_loss, phi, False), grad_fn)
        surrogate = sum((meta["model"][k] * g[k].detach()).sum() for k in g)
        out = self.task_predict(meta, {**phi, **context}, task["qx"])
        return surrogate, task_metrics(out, task["qy"], classification)[1]


class FOMAML(MAML):
    """First-order MAML: the inner gradients are treated as constants, so the meta-gradient is
    ``mean_t dL_query/dphi (phi_t)`` (the gradient at the adapted parameters)."""

    algorithm_name = "fomaml"

    def __init__(self, model: nn.Module, **kw: Any) -> None:
        kw["first_order"] = True
        super().__init__(model, **kw)


class MetaSGD(MAML):
    """Meta-SGD (Li et al., 2017): ``phi = theta - alpha * grad`` with a learned per-parameter ``alpha``
    (initialised to ``inner_lr``; meta-parameters in ``self.lrs``, keys ``name.replace('.', '__')``)."""

    algorithm_name = "metasgd"

    def __init__(self, model: nn.Module, **kw: Any) -> None:
        super().__init__(model, **kw)
        self.lrs = nn.ParameterDict(
            [
                (k.replace(".", "__"), nn.Parameter(torch.full_like(p.detach(), self.inner_lr)))
                for k, p in model.named_parameters()
            ]
        )  # list keeps order

    def meta_state(self) -> dict[str, Params]:
        return {
            "model": dict(self.model.named_parameters()),
            "lrs": {k.replace("__", "."): v for k, v in self.lrs.items()},
        }

    def inner_lrs(self, meta: dict[str, Params]) -> Params:
        return meta["lrs"]


class ANIL(MAML):
    """ANIL (Raghu et al., 2020): the inner loop adapts ``model.head`` only; the body is frozen there but
    meta-trained (its meta-gradient flows through the features). Its adapted state is the head
    (``head.weight``, ``head.bias``); the body stays theta's."""

    algorithm_name = "anil"

    def task_adapt(self, meta, sx, sy, *, steps, inner_lr, create_graph, grad_fn, classification, n_way):  # type: ignore[override]
        fs = features(self.model, meta["model"], sx)
        loss_fn = lambda h: task_metrics(functional_call(self.model.head, h, (fs,)), sy, classification)[0]  # noqa: E731
        optimiser = InnerSGD(self.inner_lr if inner_lr is None else float(inner_lr))
        head = optimiser.run(
            loss_fn, subdict(meta["model"], "head."), steps, create_graph=create_graph, grad_fn=grad_fn
        )
        return {f"head.{k}": v for k, v in head.items()}

    def task_predict(self, meta: dict[str, Params], state: Params, x: Tensor) -> Tensor:
        fx = in_context(state, x, lambda z: features(self.model, meta["model"], z))
        return functional_call(self.model.head, subdict(state, "head."), (fx,))


class ProtoMAML(MAML):
    """Proto-MAML (Triantafillou et al., 2020): MAML whose output layer starts, for each task, from the class
    prototypes ``c_k`` (mean support embedding): ``W_k = 2 c_k``, ``b_k = -||c_k||^2``, which makes its logits
    the ProtoNet's ``-||f(x) - c_k||^2`` up to a term equal for every class. The inner loop then adapts every
    parameter (body and that head) as MAML does; the meta-gradient also flows through the prototypes. The
    model's own head is not used (its weights only fix the shapes). Classification only."""

    algorithm_name = "protomaml"
    continues_adaptation = False  # each adaptation starts from the prototypes of the body it is given

    def task_adapt(self, meta, sx, sy, *, steps, inner_lr, create_graph, grad_fn, classification, n_way):  # type: ignore[override]
        if not classification:
            raise ValueError(f"{self.algorithm_name} is for classification tasks only")
        fs = features(self.model, meta["model"], sx)
        onehot = (sy.unsqueeze(-1) == torch.arange(n_way, device=sy.device)).to(fs.dtype)
        prototypes = (onehot.T @ fs) / onehot.sum(0).unsqueeze(-1)
        start = {k: v for k, v in meta["model"].items() if not k.startswith("head.")}
        start.update({"head.weight": 2 * prototypes, "head.bias": -prototypes.square().sum(-1)})
        loss_fn = lambda p: task_metrics(functional_call(self.model, p, (sx,)), sy, True)[0]  # noqa: E731
        optimiser = InnerSGD(self.inner_lr if inner_lr is None else float(inner_lr))
        return optimiser.run(loss_fn, start, steps, create_graph=create_graph, grad_fn=grad_fn)


class Reptile(MAML):
    """Reptile (Nichol et al., 2018): ``inner_steps`` plain SGD steps on the *support set only* (as in the
    paper's few-shot setup; ``include_query=True`` also trains on the query set). The loss is the surrogate
    ``sum_k <theta_k, stopgrad(theta_k - phi_k)>`` whose gradient is ``theta - phi``, averaged over tasks,
    so an ordinary optimiser step (SGD with lr = epsilon) is the Reptile update. Metrics: query at phi.

    ``inner_batch`` (the paper's "inner batch size"): each inner step sees ``inner_batch`` support examples,
    cycling through the support set with the classes interleaved, so successive steps see *different* examples.
    Reptile's meta-gradient rewards agreement between the gradients of different mini-batches of a task (the
    paper's ``AvgGradInner`` term); with one full batch every step sees the same examples. Training tasks with
    more shots than the test tasks (``TrainConfig.train_k_shot``) give it those mini-batches."""

    algorithm_name = "reptile"
    surrogate_loss = True

    def __init__(
        self, model: nn.Module, include_query: bool = False, inner_batch: int | None = None, **kw: Any
    ) -> None:
        kw["first_order"] = True
        super().__init__(model, **kw)
        self.include_query = bool(include_query)
        if inner_batch is not None and (not isinstance(inner_batch, int) or inner_batch < 1):
            raise ValueError(f"inner_batch={inner_batch!r} is not allowed; allowed: None or an integer >= 1")
        self.inner_batch = inner_batch

    def extra_config(self) -> dict[str, Any]:
        return {"include_query": self.include_query, "inner_batch": self.inner_batch}

    def inner_batches(self, n_examples: int, n_way: int) -> list[Tensor] | None:
        """The support indices of each inner step (``None``: the whole support set every step). The support
        set is class-major (``EpisodeSampler``: ``y = 0..0 1..1 ...``); reading it shot-major interleaves the
        classes, so each mini-batch holds about ``inner_batch / n_way`` examples of every class. Regression
        (``n_way == 0``: no classes) takes the support points in their sampled order, which is already random."""
        if self.inner_batch is None or self.inner_batch >= n_examples or self.include_query:
            return None
        if n_way > 0:
            order = torch.arange(n_examples).view(n_way, n_examples // n_way).t().reshape(-1)
        else:
            order = torch.arange(n_examples)
        return [
            order[(s * self.inner_batch + torch.arange(self.inner_batch)) % n_examples] for s in range(self.inner_steps)
        ]

    def task_train(self, meta, task, *, grad_fn, classification, n_way):  # type: ignore[override]
        x, y = task["sx"], task["sy"]
        if self.include_query:
            x, y = torch.cat([x, task["qx"]]), torch.cat([y, task["qy"]])
        theta = meta["model"]
        batches = self.inner_batches(x.shape[0], n_way)
        if batches is None:
            phi = self.task_adapt(
                meta,
                x,
                y,
                steps=self.inner_steps,
                inner_lr=None,
                create_graph=False,
                grad_fn=grad_fn,
                classification=classification,
                n_way=n_way,
            )
        else:
            optimiser, phi = self.inner_optimiser(meta), theta
            for idx in batches:
                bx, by = x[idx.to(x.device)], y[idx.to(y.device)]
                loss_fn = lambda p: task_metrics(functional_call(self.model, p, (bx,)), by, classification)[0]  # noqa: E731
                phi = optimiser.run(loss_fn, phi, 1, create_graph=False, grad_fn=grad_fn)
        phi = {k: v.detach() for k, v in model_params(phi).items()}
        surrogate = sum((theta[k] * (theta[k].detach() - phi[k])).sum() for k in theta)
        out = self.task_predict(meta, {**phi, **self.context_state(task["sx"])}, task["qx"])
        return surrogate, task_metrics(out, task["qy"], classification)[1]


class ArticleRule(MAML):
    """The seed article's rule: the meta-gradient is the mean over tasks of the inner (support) loss gradient
    taken AT theta, i.e. joint multi-task training. ``evaluate`` still adapts with inner steps (as MAML).
    Training metrics: ``support_loss`` and ``query_*`` at theta (no adaptation)."""

    algorithm_name = "article"

    def task_train(self, meta, task, *, grad_fn, classification, n_way):  # type: ignore[override]
        loss, metrics = task_metrics(
            functional_call(self.model, meta["model"], (task["sx"],)), task["sy"], classification, "support"
        )
        out = self.task_predict(meta, {**meta["model"], **self.context_state(task["sx"])}, task["qx"])
        metrics.update(task_metrics(out, task["qy"], classification)[1])
        return loss, metrics


class Pretrain(MAML):
    """Pretrain-then-fine-tune baseline (Chen et al., 2019 "Baseline"; MAML paper's "pretrained" regressor).

    Classification: a global ``nn.Linear(model.feature_dim, num_classes)`` (``self.global_head``) on
    ``model.features`` is trained with cross-entropy on every support+query example, labels mapped to
    global classes with ``batch.classes``. Evaluation: a fresh zero-initialised N-way head is fine-tuned for
    ``inner_steps`` SGD steps on the support features with the body FROZEN (a linear probe).
    Regression: joint training of the whole model at theta on support+query; evaluation fine-tunes the
    whole model for ``inner_steps`` SGD steps on the support set (as MAML's evaluation).
    """

    algorithm_name = "pretrain"
    continues_adaptation = False  # its classification state is a fresh probe, not the model's parameters

    def __init__(self, model: nn.Module, num_classes: int | None = None, **kw: Any) -> None:
        super().__init__(model, **kw)
        self.num_classes = num_classes
        if num_classes is not None:
            if num_classes < 1:
                raise ValueError(f"num_classes={num_classes} is not allowed; allowed: an integer >= 1")
            ref = next(model.parameters())
            self.global_head = nn.Linear(model.feature_dim, num_classes, device=ref.device, dtype=ref.dtype)

    def extra_config(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes}

    def meta_state(self) -> dict[str, Params]:
        state = super().meta_state()
        if self.num_classes is not None:
            state["global_head"] = dict(self.global_head.named_parameters())
        return state

    def task_inputs(self, batch: TaskBatch) -> dict[str, Tensor]:
        inputs = super().task_inputs(batch)
        if batch.is_classification and batch.classes is not None:
            inputs["gs"], inputs["gq"] = (
                batch.classes.gather(1, batch.support_y),
                batch.classes.gather(1, batch.query_y),
            )
        return inputs

    def forward(self, batch: TaskBatch):  # type: ignore[override]
        if batch.is_classification and self.num_classes is None:
            raise ValueError(
                "pretrain on classification needs num_classes: make_learner('pretrain', model, num_classes=...)"
            )
        if batch.is_classification and batch.classes is None:
            raise ValueError("pretrain on classification needs batch.classes (task label -> global class index)")
        return super().forward(batch)

    def task_train(self, meta, task, *, grad_fn, classification, n_way):  # type: ignore[override]
        if not classification:
            out = functional_call(self.model, meta["model"], (torch.cat([task["sx"], task["qx"]]),))
            n = task["sx"].shape[0]
            loss = task_metrics(out, torch.cat([task["sy"], task["qy"]]), False)[0]
            return loss, task_metrics(out[n:], task["qy"], False)[1]
        f = features(self.model, meta["model"], torch.cat([task["sx"], task["qx"]]))
        logits = functional_call(self.global_head, meta["global_head"], (f,))
        loss = task_metrics(logits, torch.cat([task["gs"], task["gq"]]), True)[0]
        return loss, task_metrics(logits[task["sx"].shape[0] :], task["gq"], True)[1]

    def task_adapt(self, meta, sx, sy, *, steps, inner_lr, create_graph, grad_fn, classification, n_way):  # type: ignore[override]
        """Regression: fine-tune the whole model (as MAML). Classification: a zero-initialised N-way linear probe
        (``probe.weight``, ``probe.bias``) trained by SGD on the frozen support features."""
        if not classification:
            return super().task_adapt(
                meta,
                sx,
                sy,
                steps=steps,
                inner_lr=inner_lr,
                create_graph=create_graph,
                grad_fn=grad_fn,
                classification=False,
                n_way=n_way,
            )
        fs = features(self.model, meta["model"], sx)
        probe = {"weight": fs.new_zeros(n_way, fs.shape[-1]), "bias": fs.new_zeros(n_way)}
        loss_fn = lambda h: task_metrics(fs @ h["weight"].T + h["bias"], sy, True)[0]  # noqa: E731
        optimiser = InnerSGD(self.inner_lr if inner_lr is None else float(inner_lr))
        probe = optimiser.run(loss_fn, probe, steps, create_graph=create_graph, grad_fn=grad_fn)
        return {"probe.weight": probe["weight"], "probe.bias": probe["bias"]}

    def task_predict(self, meta: dict[str, Params], state: Params, x: Tensor) -> Tensor:
        if "probe.weight" not in state:
            return super().task_predict(meta, state, x)
        fx = in_context(state, x, lambda z: features(self.model, meta["model"], z))
        return fx @ state["probe.weight"].T + state["probe.bias"]
