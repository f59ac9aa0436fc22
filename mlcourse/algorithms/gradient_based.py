"""Gradient-based meta-learners: MAML, FOMAML, Meta-SGD, ANIL, Reptile, the article's rule, pretrain
(ch03 algorithms, ch04 bilevel, ch05 CIFAR, ch08 scalability). Per-task functions only; ``Learner`` maps them.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from mlcourse.algorithms.core import GradFn, Learner, Params, features, sgd_steps, subdict, task_metrics
from mlcourse.data.tasks import TaskBatch

Task = dict[str, Tensor]


class MAML(Learner):
    """MAML (Finn et al., 2017): ``min_theta mean_t L_query(phi_t)``, ``phi_t`` = ``inner_steps`` SGD steps on
    the support set from theta. Second order by default: the exact meta-gradient through every inner step."""

    algorithm_name = "maml"

    def inner_lrs(self, meta: dict[str, Params]) -> float | Params:
        return self.inner_lr

    def adapt(self, meta: dict[str, Params], x: Tensor, y: Tensor, steps: int, create_graph: bool, grad_fn: GradFn, classification: bool) -> Params:
        """phi = theta after ``steps`` SGD steps on the loss of ``(x, y)``."""
        loss_fn = lambda p: task_metrics(functional_call(self.model, p, (x,)), y, classification)[0]  # noqa: E731
        return sgd_steps(loss_fn, meta["model"], self.inner_lrs(meta), steps, create_graph=create_graph, grad_fn=grad_fn)

    def task_train(self, meta: dict[str, Params], task: Task, *, grad_fn: GradFn, classification: bool, n_way: int) -> tuple[Tensor, dict[str, Tensor]]:
        phi = self.adapt(meta, task["sx"], task["sy"], self.inner_steps, not self.first_order, grad_fn, classification)
        return task_metrics(functional_call(self.model, phi, (task["qx"],)), task["qy"], classification)

    def task_eval(self, meta: dict[str, Params], task: Task, *, grad_fn: GradFn, classification: bool, n_way: int, steps: int) -> dict[str, Tensor]:
        phi = self.adapt(meta, task["sx"], task["sy"], steps, False, grad_fn, classification)
        return task_metrics(functional_call(self.model, phi, (task["qx"],)), task["qy"], classification)[1]


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
        self.lrs = nn.ParameterDict([(k.replace(".", "__"), nn.Parameter(torch.full_like(p.detach(), self.inner_lr))) for k, p in model.named_parameters()])  # list keeps order

    def meta_state(self) -> dict[str, Params]:
        return {"model": dict(self.model.named_parameters()), "lrs": {k.replace("__", "."): v for k, v in self.lrs.items()}}

    def inner_lrs(self, meta: dict[str, Params]) -> Params:
        return meta["lrs"]


class ANIL(MAML):
    """ANIL (Raghu et al., 2020): the inner loop adapts ``model.head`` only; the body is frozen there but
    meta-trained (its meta-gradient flows through the features). Features are computed once per task."""

    algorithm_name = "anil"

    def adapt_head(self, meta: dict[str, Params], fs: Tensor, y: Tensor, steps: int, create_graph: bool, grad_fn: GradFn, classification: bool) -> Params:
        loss_fn = lambda h: task_metrics(functional_call(self.model.head, h, (fs,)), y, classification)[0]  # noqa: E731
        return sgd_steps(loss_fn, subdict(meta["model"], "head."), self.inner_lr, steps, create_graph=create_graph, grad_fn=grad_fn)

    def _run(self, meta: dict[str, Params], task: Task, steps: int, create_graph: bool, grad_fn: GradFn, classification: bool) -> tuple[Tensor, dict[str, Tensor]]:
        fs, fq = features(self.model, meta["model"], task["sx"]), features(self.model, meta["model"], task["qx"])
        head = self.adapt_head(meta, fs, task["sy"], steps, create_graph, grad_fn, classification)
        return task_metrics(functional_call(self.model.head, head, (fq,)), task["qy"], classification)

    def task_train(self, meta, task, *, grad_fn, classification, n_way):  # type: ignore[override]
        return self._run(meta, task, self.inner_steps, not self.first_order, grad_fn, classification)

    def task_eval(self, meta, task, *, grad_fn, classification, n_way, steps):  # type: ignore[override]
        return self._run(meta, task, steps, False, grad_fn, classification)[1]


class Reptile(MAML):
    """Reptile (Nichol et al., 2018): ``inner_steps`` plain SGD steps on the *support set only* (as in the
    paper's few-shot setup; ``include_query=True`` also trains on the query set). The loss is the surrogate
    ``sum_k <theta_k, stopgrad(theta_k - phi_k)>`` whose gradient is ``theta - phi``, averaged over tasks,
    so an ordinary optimiser step (SGD with lr = epsilon) is the Reptile update. Metrics: query at phi."""

    algorithm_name = "reptile"

    def __init__(self, model: nn.Module, include_query: bool = False, **kw: Any) -> None:
        kw["first_order"] = True
        super().__init__(model, **kw)
        self.include_query = bool(include_query)

    def extra_config(self) -> dict[str, Any]:
        return {"include_query": self.include_query}

    def task_train(self, meta, task, *, grad_fn, classification, n_way):  # type: ignore[override]
        x, y = task["sx"], task["sy"]
        if self.include_query:
            x, y = torch.cat([x, task["qx"]]), torch.cat([y, task["qy"]])
        theta = meta["model"]
        phi = {k: v.detach() for k, v in self.adapt(meta, x, y, self.inner_steps, False, grad_fn, classification).items()}
        surrogate = sum((theta[k] * (theta[k].detach() - phi[k])).sum() for k in theta)
        _, metrics = task_metrics(functional_call(self.model, phi, (task["qx"],)), task["qy"], classification)
        return surrogate, metrics


class ArticleRule(MAML):
    """The seed article's rule: the meta-gradient is the mean over tasks of the inner (support) loss gradient
    taken AT theta, i.e. joint multi-task training. ``evaluate`` still adapts with inner steps (as MAML).
    Training metrics: ``support_loss`` and ``query_*`` at theta (no adaptation)."""

    algorithm_name = "article"

    def task_train(self, meta, task, *, grad_fn, classification, n_way):  # type: ignore[override]
        loss, metrics = task_metrics(functional_call(self.model, meta["model"], (task["sx"],)), task["sy"], classification, "support")
        metrics.update(task_metrics(functional_call(self.model, meta["model"], (task["qx"],)), task["qy"], classification)[1])
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
            inputs["gs"], inputs["gq"] = batch.classes.gather(1, batch.support_y), batch.classes.gather(1, batch.query_y)
        return inputs

    def forward(self, batch: TaskBatch):  # type: ignore[override]
        if batch.is_classification and self.num_classes is None:
            raise ValueError("pretrain on classification needs num_classes: make_learner('pretrain', model, num_classes=...)")
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
        return loss, task_metrics(logits[task["sx"].shape[0]:], task["gq"], True)[1]

    def task_eval(self, meta, task, *, grad_fn, classification, n_way, steps):  # type: ignore[override]
        if not classification:
            return super().task_eval(meta, task, grad_fn=grad_fn, classification=False, n_way=n_way, steps=steps)
        fs, fq = features(self.model, meta["model"], task["sx"]), features(self.model, meta["model"], task["qx"])
        head = {"weight": fs.new_zeros(n_way, fs.shape[-1]), "bias": fs.new_zeros(n_way)}
        loss_fn = lambda h: task_metrics(fs @ h["weight"].T + h["bias"], task["sy"], True)[0]  # noqa: E731
        head = sgd_steps(loss_fn, head, self.inner_lr, steps, create_graph=False, grad_fn=grad_fn)
        return task_metrics(fq @ head["weight"].T + head["bias"], task["qy"], True)[1]
