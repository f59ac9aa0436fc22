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

from mlcourse.algorithms.core import Learner, Params, features, in_context

Task = dict[str, Tensor]


def one_hot(y: Tensor, n_way: int, dtype: torch.dtype) -> Tensor:
    """``[S] -> [S, N]`` one-hot (written with ``==`` so it is ``vmap``-safe)."""
    return (y.unsqueeze(-1) == torch.arange(n_way, device=y.device)).to(dtype)


class ProtoNet(Learner):
    """Prototypical Networks (Snell et al., 2017): logits = -squared Euclidean distance to class means."""

    algorithm_name = "protonet"

    def task_adapt(self, meta, sx, sy, *, steps, inner_lr, create_graph, grad_fn, classification, n_way):  # type: ignore[override]
        """The class prototypes ``[N, D]``: mean embedding of each class's support examples (no inner loop)."""
        if not classification:
            raise ValueError(f"{self.algorithm_name} is for classification tasks only")
        fs = features(self.model, meta["model"], sx)
        onehot = one_hot(sy, n_way, fs.dtype)
        return {"prototypes": (onehot.T @ fs) / onehot.sum(0).unsqueeze(-1)}

    def task_predict(self, meta: dict[str, Params], state: Params, x: Tensor) -> Tensor:
        """Logits = minus the squared Euclidean distance of each embedded input to each prototype."""
        fq = in_context(state, x, lambda z: features(self.model, meta["model"], z))
        return -(fq.unsqueeze(1) - state["prototypes"].unsqueeze(0)).square().sum(-1)


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
        tau = meta["temperature"]["log_scale"].exp()
        sim = tau * F.normalize(fq, dim=-1) @ state["support"].T  # [Q, S]
        mask = state["labels"].bool()  # [S, N]
        masked = torch.where(mask.unsqueeze(0), sim.unsqueeze(-1), torch.full_like(sim.unsqueeze(-1), float("-inf")))
        return torch.logsumexp(masked, dim=1) - torch.logsumexp(sim, dim=1, keepdim=True)  # [Q, N]
