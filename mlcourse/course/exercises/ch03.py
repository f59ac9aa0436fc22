"""Chapter 03 (algorithms) exercises: reference solutions and checkers.

1. ``check_proto_logits``: Prototypical Networks' logits from embeddings.
2. ``check_matching_probs``: Matching Networks' attention-weighted label distribution.
3. ``check_reptile_update``: one Reptile meta-update from adapted parameters.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from mlcourse.course.exercises._common import grade


def embedding_inputs() -> dict[str, Tensor]:
    """A 3-way 2-shot task already embedded in 4-D: support ``[6, 4]`` (class-major), labels, queries ``[3, 4]``."""
    g = torch.Generator().manual_seed(3)
    fs = torch.randn(6, 4, generator=g, dtype=torch.float64)
    sy = torch.tensor([0, 0, 1, 1, 2, 2])
    fq = torch.randn(3, 4, generator=g, dtype=torch.float64)
    return {"support": fs, "support_labels": sy, "query": fq}


# --- exercise 1 ------------------------------------------------------------------------------------
def proto_logits(support: Tensor, support_labels: Tensor, query: Tensor) -> Tensor:
    """Reference: ``-||f(q) - c_k||^2`` with prototypes ``c_k`` = mean support embedding of class k. ``[Q, N]``."""
    n_way = int(support_labels.max()) + 1
    protos = torch.stack([support[support_labels == k].mean(0) for k in range(n_way)])
    return -(query.unsqueeze(1) - protos.unsqueeze(0)).square().sum(-1)


def check_proto_logits(answer: Any = None) -> Any:
    return grade("prototype logits", answer, proto_logits(**embedding_inputs()))


# --- exercise 2 ------------------------------------------------------------------------------------
def matching_probs(support: Tensor, support_labels: Tensor, query: Tensor) -> Tensor:
    """Reference: ``p(k | q) = sum_i a(q, s_i) [y_i = k]`` with ``a = softmax_i cos(f(q), f(s_i))``. ``[Q, N]``."""
    n_way = int(support_labels.max()) + 1
    attention = torch.softmax(F.normalize(query, dim=-1) @ F.normalize(support, dim=-1).T, dim=-1)
    return attention @ F.one_hot(support_labels, n_way).to(attention.dtype)


def check_matching_probs(answer: Any = None) -> Any:
    return grade("matching probabilities", answer, matching_probs(**embedding_inputs()))


# --- exercise 3 ------------------------------------------------------------------------------------
def reptile_inputs() -> dict[str, Any]:
    """theta (a 3-vector), the adapted parameters phi_t of 4 tasks, and the outer step size epsilon."""
    theta = torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64)
    phis = torch.tensor([[0.5, 1.0, -0.5], [0.1, 0.4, -1.0], [-0.3, 1.5, -1.2], [0.2, 1.1, 0.0]], dtype=torch.float64)
    return {"theta": theta, "phis": phis, "epsilon": 0.5}


def reptile_update(theta: Tensor, phis: Tensor, epsilon: float) -> Tensor:
    """Reference: ``theta + epsilon * mean_t (phi_t - theta)``."""
    return theta + epsilon * (phis - theta).mean(0)


def check_reptile_update(answer: Any = None) -> Any:
    return grade("Reptile update", answer, reptile_update(**reptile_inputs()))


__all__ = [
    "embedding_inputs",
    "proto_logits",
    "check_proto_logits",
    "matching_probs",
    "check_matching_probs",
    "reptile_inputs",
    "reptile_update",
    "check_reptile_update",
]
