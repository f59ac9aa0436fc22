"""Chapter 03 (algorithms): inputs and visible checks of the exercises.

1. ``check_protonet_loss``: Prototypical Networks' episode loss, prototypes included, through an embedding network.
2. ``check_matching_probs``: Matching Networks' attention-weighted label distribution.
3. ``check_reptile_update``: one Reptile meta-update from adapted parameters.
4. ``check_maml_step``: MAML's inner loop and meta-gradient with ``torch.autograd.grad`` for a small network.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any, Optional

import torch
from torch import Tensor, nn

from mlcourse.course.exercises._common import Checks, as_float64, close, missing


# --- exercise 1 ------------------------------------------------------------------------------------
def episode_inputs() -> dict[str, Any]:
    """A 3-way 2-shot episode of 6-D inputs with 2 queries per class, and a small embedding network (float64)."""
    g = torch.Generator().manual_seed(3)
    torch.manual_seed(3)
    embed = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4)).double()
    centres = 2 * torch.randn(3, 6, generator=g, dtype=torch.float64)
    sy, qy = torch.arange(3).repeat_interleave(2), torch.arange(3).repeat(2)
    sx = centres[sy] + 0.5 * torch.randn(6, 6, generator=g, dtype=torch.float64)
    qx = centres[qy] + 0.5 * torch.randn(6, 6, generator=g, dtype=torch.float64)
    return {"embed": embed, "support_x": sx, "support_y": sy, "query_x": qx, "query_y": qy}


def check_protonet_loss(answer: Optional[Callable[..., Tensor]]) -> bool:
    """Properties of ``answer(embed, support_x, support_y, query_x, query_y) -> scalar``: positive, differentiable in
    the network, log N when every input embeds to the same point, unchanged by reordering queries or renaming
    classes."""
    name = "ProtoNet loss"
    if missing(name, answer):
        return False
    check, ep = Checks(name), episode_inputs()
    loss = check.run(answer, **ep)
    if not check("returns a scalar tensor", isinstance(loss, Tensor) and loss.numel() == 1, "return a 0-d tensor"):
        return False
    check("the loss is finite and positive", bool(torch.isfinite(loss)) and float(loss.detach()) > 0, "a cross-entropy")
    grads = torch.autograd.grad(loss, list(ep["embed"].parameters()), allow_unused=True) if loss.requires_grad else []
    check(
        "the loss back-propagates into the embedding network",
        len(grads) > 0 and all(g is not None and bool(g.abs().sum() > 0) for g in grads),
        "compute the prototypes from embed(support_x), inside the graph",
    )
    flat = copy.deepcopy(ep["embed"])
    with torch.no_grad():
        flat[2].weight.zero_()  # every input embeds to the same point: all prototypes coincide
    same = as_float64(check.run(answer, **{**ep, "embed": flat})).reshape(-1)
    check(
        "log N when all embeddings coincide",
        same.numel() == 1 and abs(float(same) - math.log(3)) < 1e-9,
        "limiting case: equal distances give a uniform softmax over the N classes",
    )
    order, perm = torch.tensor([5, 3, 1, 0, 2, 4]), torch.tensor([2, 0, 1])
    moved = check.run(answer, ep["embed"], ep["support_x"], ep["support_y"], ep["query_x"][order], ep["query_y"][order])
    renamed = check.run(answer, ep["embed"], ep["support_x"], perm[ep["support_y"]], ep["query_x"], perm[ep["query_y"]])
    check("reordering the queries changes nothing", close(moved, loss), "average over the queries")
    check("renaming the classes changes nothing", close(renamed, loss), "prototype k must be the mean of class k")
    return check.ok


# --- exercise 2 ------------------------------------------------------------------------------------
def embedding_inputs() -> dict[str, Tensor]:
    """A 3-way 2-shot task already embedded in 4-D: support ``[6, 4]`` (class-major), labels, queries ``[3, 4]``."""
    g = torch.Generator().manual_seed(3)
    fs = torch.randn(6, 4, generator=g, dtype=torch.float64)
    sy = torch.tensor([0, 0, 1, 1, 2, 2])
    fq = torch.randn(3, 4, generator=g, dtype=torch.float64)
    return {"support": fs, "support_labels": sy, "query": fq}


def check_matching_probs(answer: Optional[Callable[[Tensor, Tensor, Tensor], Tensor]]) -> bool:
    """Properties of ``answer(support, support_labels, query) -> [Q, N]``: rows are probability distributions,
    unchanged by rescaling the embeddings (cosine similarity) or by reordering the support set."""
    name = "matching probabilities"
    if missing(name, answer):
        return False
    check, e = Checks(name), embedding_inputs()
    p = as_float64(check.run(answer, **e))
    if not check("a [Q, N] tensor", p.shape == (3, 3), "one row per query, one column per class"):
        return False
    check("rows are probabilities (>= 0, sum 1)", bool((p >= 0).all()) and close(p.sum(1), torch.ones(3)), "softmax")
    scaled = check.run(answer, 3 * e["support"], e["support_labels"], 0.5 * e["query"])
    check("rescaling the embeddings changes nothing", close(scaled, p), "cosine similarity: normalise both sides")
    order = torch.tensor([4, 1, 5, 0, 3, 2])
    shuffled = check.run(answer, e["support"][order], e["support_labels"][order], e["query"])
    check("reordering the support set changes nothing", close(shuffled, p), "sum the attention of each class")
    support, labels = torch.eye(2, 4, dtype=torch.float64), torch.tensor([0, 1])  # two orthogonal support items
    sharp = as_float64(check.run(answer, support, labels, support[:1]))  # the query is support item 0 itself
    check(
        "a query equal to one support item, orthogonal to the other, is > 0.99 sure of its class",
        sharp.shape == (1, 2) and bool(sharp[0, 0] > 0.99),
        "multiply the cosines by the temperature tau = 10 before the softmax",
    )
    return check.ok


# --- exercise 3 ------------------------------------------------------------------------------------
def reptile_inputs() -> dict[str, Any]:
    """theta (a 3-vector), the adapted parameters phi_t of 4 tasks, and the outer step size epsilon."""
    theta = torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64)
    phis = torch.tensor([[0.5, 1.0, -0.5], [0.1, 0.4, -1.0], [-0.3, 1.5, -1.2], [0.2, 1.1, 0.0]], dtype=torch.float64)
    return {"theta": theta, "phis": phis, "epsilon": 0.5}


def check_reptile_update(answer: Optional[Callable[[Tensor, Tensor, float], Tensor]]) -> bool:
    """Properties of ``answer(theta, phis, epsilon) -> theta_new``: shape, epsilon = 0 keeps theta, one task and
    epsilon = 1 jumps to its phi, tasks that did not move leave theta alone."""
    name = "Reptile update"
    if missing(name, answer):
        return False
    check, r = Checks(name), reptile_inputs()
    new = as_float64(check.run(answer, **r))
    if not check("same shape as theta", new.shape == r["theta"].shape, "one new value per parameter"):
        return False
    check("epsilon = 0 keeps theta", close(check.run(answer, r["theta"], r["phis"], 0.0), r["theta"]), "limiting case")
    one = check.run(answer, r["theta"], r["phis"][:1], 1.0)
    check("one task with epsilon = 1 jumps to its phi", close(one, r["phis"][0]), "theta + epsilon (phi - theta)")
    still = check.run(answer, r["theta"], r["theta"].repeat(4, 1), 0.5)
    check("tasks whose phi = theta leave theta alone", close(still, r["theta"]), "move towards the phis")
    return check.ok


# --- exercise 4 ------------------------------------------------------------------------------------
def mlp(params: list[Tensor], x: Tensor) -> Tensor:
    """The small network of exercise 4, written functionally: ``x [B, 1] -> tanh(x W1 + b1) W2 + b2 [B, 1]``."""
    w1, b1, w2, b2 = params
    return torch.tanh(x @ w1 + b1) @ w2 + b2


def maml_inputs() -> dict[str, Any]:
    """theta (the network's 4 tensors, float64), one sinusoid task's support and query sets, alpha and steps."""
    g = torch.Generator().manual_seed(4)
    params = [
        (0.8 * torch.randn(1, 16, generator=g, dtype=torch.float64)).requires_grad_(),
        torch.zeros(16, dtype=torch.float64, requires_grad=True),
        (0.3 * torch.randn(16, 1, generator=g, dtype=torch.float64)).requires_grad_(),
        torch.zeros(1, dtype=torch.float64, requires_grad=True),
    ]
    xs, xq = (torch.rand(n, 1, generator=g, dtype=torch.float64) * 10 - 5 for n in (10, 15))
    wave = lambda x: 1.7 * torch.sin(x + 0.6)
    return {"params": params, "support": (xs, wave(xs)), "query": (xq, wave(xq)), "alpha": 0.05, "steps": 2}


def _mse(params: list[Tensor], data: tuple[Tensor, Tensor]) -> Tensor:
    return (mlp(params, data[0]) - data[1]).square().mean()


def check_maml_step(answer: Optional[Callable[..., Any]]) -> bool:
    """Properties of ``answer(params, support, query, alpha, steps) -> (meta_loss, meta_grads)``: types and shapes,
    theta untouched, steps = 0 is ordinary training on the query set, and the gradient agrees with finite
    differences of your own meta-loss."""
    name = "MAML step"
    if missing(name, answer):
        return False
    check, m = Checks(name), maml_inputs()
    params = m["params"]
    before = [p.detach().clone() for p in params]
    out = check.run(answer, **m)
    shaped = (
        isinstance(out, tuple | list)
        and len(out) == 2
        and isinstance(out[0], Tensor)
        and out[0].numel() == 1
        and len(out[1]) == len(params)
        and all(isinstance(g, Tensor) and g.shape == p.shape for g, p in zip(out[1], params))
    )
    if not check("returns (scalar meta-loss, one gradient per parameter)", shaped, "see the docstring"):
        return False
    check("theta is not modified", all(torch.equal(p.detach(), b) for p, b in zip(params, before)), "no in-place step")
    zero = check.run(answer, params, m["support"], m["query"], m["alpha"], 0)
    ordinary = torch.autograd.grad(_mse(params, m["query"]), params)
    check(
        "steps = 0 gives the query loss at theta and its gradient",
        zero is not None and close(zero[0], _mse(params, m["query"])) and all(map(close, zero[1], ordinary)),
        "limiting case: no inner step, no adaptation",
    )
    direction = [
        torch.randn(p.shape, generator=torch.Generator().manual_seed(i), dtype=p.dtype) for i, p in enumerate(params)
    ]
    h = 1e-5

    def meta_loss_at(sign: float) -> float:
        moved = [(p.detach() + sign * h * v).requires_grad_() for p, v in zip(params, direction)]
        result = check.run(answer, moved, m["support"], m["query"], m["alpha"], m["steps"])
        return float("nan") if result is None else float(as_float64(result[0]).reshape(-1)[0])

    fd = (meta_loss_at(1.0) - meta_loss_at(-1.0)) / (2 * h)
    along = sum(float((g * v).sum()) for g, v in zip(out[1], direction))
    check(
        "your gradient matches a finite difference of your meta-loss",
        abs(fd - along) <= 1e-5 * max(1.0, abs(fd)),
        "differentiate through the inner loop: create_graph=True in the inner torch.autograd.grad",
    )
    return check.ok


__all__ = [
    "episode_inputs",
    "check_protonet_loss",
    "embedding_inputs",
    "check_matching_probs",
    "reptile_inputs",
    "check_reptile_update",
    "mlp",
    "maml_inputs",
    "check_maml_step",
]
