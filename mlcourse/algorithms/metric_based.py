"""Metric-based learners: Prototypical Networks and Matching Networks (ch03 algorithms, ch05 CIFAR).

No inner loop: the support set is embedded with ``model.features`` and queries are classified by
distance/similarity. ``inner_lr``/``inner_steps`` are accepted (one interface) but unused.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlcourse.algorithms import batched
from mlcourse.algorithms.core import Learner, Params, features, in_context

Task = dict[str, Tensor]


def one_hot(y: Tensor, n_way: int, dtype: torch.dtype) -> Tensor:
    """``[..., S] -> [..., S, N]`` one-hot (written with ``==`` so it is ``vmap``-safe)."""
    return (y.unsqueeze(-1) == torch.arange(n_way, device=y.device)).to(dtype)


def prototypes(embedded: Tensor, y: Tensor, n_way: int) -> Tensor:
    """Each class's mean embedding ``[..., N, D]`` from embeddings ``[..., S, D]`` and labels ``[..., S]`` (one
    task, or a leading task dimension)."""
    onehot = one_hot(y, n_way, embedded.dtype)
    return (onehot.transpose(-1, -2) @ embedded) / onehot.sum(-2).unsqueeze(-1)


def distance_logits(embedded: Tensor, centres: Tensor) -> Tensor:
    """Minus the squared Euclidean distance ``[..., Q, N]`` of each embedding ``[..., Q, D]`` to each centre
    ``[..., N, D]``."""
    return -(embedded.unsqueeze(-2) - centres.unsqueeze(-3)).square().sum(-1)


def attention_log_probs(embedded: Tensor, support: Tensor, labels: Tensor, tau: Tensor) -> Tensor:
    """Matching Networks' ``log p(c|q)`` ``[..., Q, N]``: queries ``[..., Q, D]`` attend to unit-length support
    embeddings ``[..., S, D]`` with one-hot labels ``[..., S, N]``, summed per class exactly with ``logsumexp``."""
    sim = tau * F.normalize(embedded, dim=-1) @ support.transpose(-1, -2)  # [..., Q, S]
    mask = labels.bool().unsqueeze(-3)  # [..., 1, S, N]
    masked = torch.where(mask, sim.unsqueeze(-1), torch.full_like(sim.unsqueeze(-1), float("-inf")))
    return torch.logsumexp(masked, dim=-2) - torch.logsumexp(sim, dim=-1, keepdim=True)


class ProtoNet(Learner):
    """Prototypical Networks (Snell et al., 2017): logits = -squared Euclidean distance to class means."""

    algorithm_name = "protonet"

    def task_adapt(self, meta, sx, sy, *, steps, inner_lr, create_graph, grad_fn, classification, n_way):  # type: ignore[override]
        """The class prototypes ``[N, D]``: mean embedding of each class's support examples (no inner loop)."""
        if not classification:
            raise ValueError(f"{self.algorithm_name} is for classification tasks only")
        return {"prototypes": prototypes(features(self.model, meta["model"], sx), sy, n_way)}

    def task_predict(self, meta: dict[str, Params], state: Params, x: Tensor) -> Tensor:
        """Logits = minus the squared Euclidean distance of each embedded input to each prototype."""
        fq = in_context(state, x, lambda z: features(self.model, meta["model"], z))
        return distance_logits(fq, state["prototypes"])

    def embed(self, meta: dict[str, Params], x: Tensor) -> Tensor:
        """The embeddings ``[T, B, D]`` of every task's images ``[T, B, ...]`` in one batched network call."""
        return batched.features(self.model, batched.stack_params(meta["model"], x.shape[0]), x)

    def batch_train(self, meta, task, *, n_way):  # type: ignore[override]
        """:meth:`task_train` for every task at once (the support and the query sets each embedded in one call)."""
        centres = prototypes(self.embed(meta, task["sx"]), task["sy"], n_way)
        return batched.task_metrics(distance_logits(self.embed(meta, task["qx"]), centres), task["qy"])


class MatchingNet(ProtoNet):
    """Matching Networks (Vinyals et al., 2016) without full context embeddings: attention
    ``a(q, s_i) = softmax_i(tau * cos(f(q), f(s_i)))`` and ``p(c|q) = sum_i a_i [y_i = c]``. The loss is the
    NLL of ``p``, computed exactly as ``logsumexp`` over the class's support items minus ``logsumexp`` over all.

    The temperature ``tau`` matters: cosines lie in [-1, 1], so with ``tau = 1`` the attention can never be
    sharp: in 5-way 1-shot even the best embedding (a regular simplex, cos = -1/4 between classes) gives
    ``p(correct) = e / (e + 4 e^(-1/4)) ~ 0.47``. ``tau`` is a meta-parameter (learned as ``log tau``,
    initialised to ``scale`` = 10) unless ``learn_scale=False``.
    """

    algorithm_name = "matchingnet"

    def __init__(self, model: nn.Module, scale: float = 10.0, learn_scale: bool = True, **kw: Any) -> None:
        super().__init__(model, **kw)
        if not float(scale) > 0:
            raise ValueError(f"scale={scale!r} is not allowed; allowed: a float > 0 (the initial temperature)")
        self.scale, self.learn_scale = float(scale), bool(learn_scale)
        ref = next(model.parameters())
        log_scale = torch.tensor(math.log(self.scale), device=ref.device, dtype=ref.dtype)
        if self.learn_scale:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    def extra_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "learn_scale": self.learn_scale}

    def meta_state(self) -> dict[str, Params]:
        return {**super().meta_state(), "temperature": {"log_scale": self.log_scale}}

    def task_adapt(self, meta, sx, sy, *, steps, inner_lr, create_graph, grad_fn, classification, n_way):  # type: ignore[override]
        """The embedded support set: unit-length embeddings ``[S, D]`` and one-hot labels ``[S, N]``."""
        if not classification:
            raise ValueError(f"{self.algorithm_name} is for classification tasks only")
        fs = features(self.model, meta["model"], sx)
        return {"support": F.normalize(fs, dim=-1), "labels": one_hot(sy, n_way, fs.dtype)}

    def task_predict(self, meta: dict[str, Params], state: Params, x: Tensor) -> Tensor:
        """log p(c|q): attention over the support set, summed per class (exactly, with ``logsumexp``)."""
        fq = in_context(state, x, lambda z: features(self.model, meta["model"], z))
        return attention_log_probs(fq, state["support"], state["labels"], meta["temperature"]["log_scale"].exp())

    def batch_train(self, meta, task, *, n_way):  # type: ignore[override]
        """:meth:`task_train` for every task at once (the support and the query sets each embedded in one call)."""
        support = F.normalize(self.embed(meta, task["sx"]), dim=-1)
        labels = one_hot(task["sy"], n_way, support.dtype)
        tau = meta["temperature"]["log_scale"].exp()
        log_probs = attention_log_probs(self.embed(meta, task["qx"]), support, labels, tau)
        return batched.task_metrics(log_probs, task["qy"])
