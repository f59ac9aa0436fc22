"""Chapter 03's pictures of the metric learners: a ProtoNet's embedded support, queries and prototypes, and a
Matching Network's attention over the support set. They run forward passes only.
"""

from __future__ import annotations

from typing import Optional

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mlcourse.course.plots import as_array, figure_axes, legend_outside


def _one_task(learner, batch, task: int):
    """Task ``task`` of ``batch`` on the learner's device, and the learner's model."""
    model = learner.model
    device = next(model.parameters()).device
    if not 0 <= task < batch.num_tasks:
        raise ValueError(f"task={task} is out of range; the batch holds {batch.num_tasks} task(s)")
    if not batch.is_classification:
        raise ValueError("this picture is for classification tasks (ProtoNets / Matching Nets) only")
    return batch.task(task).to(device), model


def _task_embeddings(learner, model, one):
    """One task's support and query embeddings as the learner computes them: the support set with its own
    statistics; the queries as one batch (``transductive``) or with the support set's statistics (its other modes)."""
    import torch

    from mlcourse.models import context_rows  # local import: the plots module stays importable without torch

    sx, qx = one.support_x[0], one.query_x[0]
    fs = model.features(sx)
    if getattr(learner, "norm_mode", "transductive") == "transductive":
        return fs, model.features(qx)
    with context_rows(model, sx.shape[0]):
        return fs, model.features(torch.cat([sx, qx]))[sx.shape[0] :]


def prototype_projection(learner, batch, *, task: int = 0) -> dict:
    """The numbers behind :func:`prototype_embedding`: the embeddings of one task's support and query images
    (computed as the learner computes them, in its normalisation mode), the class prototypes, and
    the first two principal components of all of them (SVD of the centred points).

    Returns ``{"support", "query", "prototypes"}`` (2-D points), ``"support_y"``, ``"query_y"``, ``"predicted"``
    (nearest prototype in the full embedding, the ProtoNet's decision), ``"accuracy"``, ``"explained"``."""
    import torch

    one, model = _one_task(learner, batch, task)
    n_way = batch.n_way
    with torch.no_grad():
        fs, fq = _task_embeddings(learner, model, one)
        sy, qy = one.support_y[0], one.query_y[0]
        onehot = (sy.unsqueeze(-1) == torch.arange(n_way, device=sy.device)).to(fs.dtype)
        protos = (onehot.T @ fs) / onehot.sum(0).unsqueeze(-1)
        predicted = torch.cdist(fq, protos).argmin(-1)
        points = torch.cat([fs, fq, protos]).double().cpu()
        centred = points - points[: len(fs) + len(fq)].mean(0)
        _, sv, vh = torch.linalg.svd(centred, full_matrices=False)
        flat = centred @ vh[:2].T
    var = sv.square()
    ns, nq = len(fs), len(fq)
    return {
        "support": flat[:ns],
        "query": flat[ns : ns + nq],
        "prototypes": flat[ns + nq :],
        "support_y": sy.cpu(),
        "query_y": qy.cpu(),
        "predicted": predicted.cpu(),
        "accuracy": float((predicted == qy).double().mean()),
        "explained": (var[:2] / var.sum()).tolist() if float(var.sum()) > 0 else [0.0, 0.0],
    }


def prototype_embedding(learner, batch, *, task: int = 0, title: str = "", ax: Optional[Axes] = None) -> Figure:
    """Chapter 03: a ProtoNet's embedding of one held-out task in 2-D (PCA): support images (circles), query
    images (triangles in their true class's colour, hollow when the nearest prototype is wrong) and the class
    prototypes (stars, one per class; in 1-shot each sits on its single support image). Works with any learner
    whose ``model.features`` embeds images. Axes: [0]; collections: queries, prototypes, support."""
    data = prototype_projection(learner, batch, task=task)
    fig, ax = figure_axes(ax, (6.4, 5.4))
    colours = plt.get_cmap("tab10")
    sy, qy = data["support_y"].numpy(), data["query_y"].numpy()
    wrong = data["predicted"].numpy() != qy
    s, q, p = (as_array(data[k]) for k in ("support", "query", "prototypes"))
    qcol = [colours(int(c) % 10) for c in qy]
    ax.scatter(
        q[:, 0],
        q[:, 1],
        facecolors=[(0, 0, 0, 0) if w else c for c, w in zip(qcol, wrong)],
        edgecolors=qcol,
        marker="^",
        s=40,
        linewidths=1.3,
        label="query images (hollow: nearest prototype is wrong)",
    )
    ax.scatter(
        p[:, 0],
        p[:, 1],
        c=[colours(c % 10) for c in range(len(p))],
        marker="*",
        s=460,
        edgecolors="black",
        linewidths=1.2,
        label="prototypes (class means)",
        zorder=4,
    )
    ax.scatter(
        s[:, 0],
        s[:, 1],
        c=[colours(int(c) % 10) for c in sy],
        marker="o",
        s=36,
        edgecolors="black",
        linewidths=0.8,
        label="support images",
        zorder=5,
    )
    for c, (x, y) in enumerate(p):
        ax.annotate(f"class {c}", (x, y), xytext=(7, 7), textcoords="offset points", fontsize=8)
    ex1, ex2 = data["explained"]
    ax.set_xlabel(f"PC 1 ({100 * ex1:.0f}% of the variance)")
    ax.set_ylabel(f"PC 2 ({100 * ex2:.0f}% of the variance)")
    ax.set_title(
        title
        or f"ProtoNet embedding of one test task (PCA to 2-D)\nnearest prototype in the full embedding: "
        f"{100 * data['accuracy']:.0f}% of the queries right",
        fontsize=10,
    )
    legend_outside(ax, ncol=2)
    fig.tight_layout()
    return fig


def matching_attention(learner, batch, *, task: int = 0) -> dict:
    """The numbers behind :func:`attention_map`: Matching Networks' attention of each query over the support
    items, ``softmax_i(tau * cos(f(q), f(s_i)))`` ``[Q, S]`` with the learner's temperature ``tau = exp(log_scale)``,
    and the class probabilities ``p(c|q) = sum_{i: y_i = c} a(q, s_i)`` ``[Q, N]`` (what the learner classifies with).
    Returns ``{"attention", "probs", "support_y", "query_y", "tau", "accuracy"}``."""
    import torch
    import torch.nn.functional as F

    if not hasattr(learner, "log_scale"):
        raise TypeError(
            f"matching_attention needs a Matching Networks learner (with log_scale), got {type(learner).__name__}"
        )
    one, model = _one_task(learner, batch, task)
    n_way = batch.n_way
    with torch.no_grad():
        fs, fq = _task_embeddings(learner, model, one)
        tau = learner.log_scale.exp()
        attention = (tau * F.normalize(fq, dim=-1) @ F.normalize(fs, dim=-1).T).softmax(-1)
        sy, qy = one.support_y[0], one.query_y[0]
        probs = attention @ (sy.unsqueeze(-1) == torch.arange(n_way, device=sy.device)).to(attention.dtype)
    return {
        "attention": attention.cpu(),
        "probs": probs.cpu(),
        "support_y": sy.cpu(),
        "query_y": qy.cpu(),
        "tau": float(tau),
        "accuracy": float((probs.argmax(-1) == qy).double().mean()),
    }


def _class_ticks(ax: Axes, labels: np.ndarray, axis: str) -> None:
    """Tick each class's block of rows/columns at its centre and separate the blocks with white lines."""
    centres, names = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        centres.append(idx.mean())
        names.append(f"c{c}")
        if idx.min() > 0:
            (ax.axvline if axis == "x" else ax.axhline)(idx.min() - 0.5, color="white", lw=1.5)
    (ax.set_xticks if axis == "x" else ax.set_yticks)(centres, names, fontsize=8)


def attention_map(learner, batch, *, task: int = 0, title: str = "") -> Figure:
    """Chapter 03: a Matching Network's attention on one held-out task. Left: the attention matrix (rows =
    queries, columns = support items, both grouped by class; each row sums to 1). Right: p(class | query), the
    row's attention summed per class; a dot marks the predicted class."""
    data = matching_attention(learner, batch, task=task)
    qorder = np.argsort(data["query_y"].numpy(), kind="stable")
    sorder = np.argsort(data["support_y"].numpy(), kind="stable")
    attention = as_array(data["attention"])[qorder][:, sorder]
    probs = as_array(data["probs"])[qorder]
    qy, sy = data["query_y"].numpy()[qorder], data["support_y"].numpy()[sorder]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(10.5, 5.0), gridspec_kw={"width_ratios": [max(len(sy), 3), max(probs.shape[1], 3)]}
    )
    im = left.imshow(
        attention,
        cmap="viridis",
        vmin=0,
        vmax=max(float(attention.max()), 1e-12),
        aspect="auto",
        interpolation="nearest",
    )
    fig.colorbar(im, ax=left, fraction=0.05, label="attention a(q, s)")
    _class_ticks(left, sy, "x")
    _class_ticks(left, qy, "y")
    left.set_xlabel(f"support items (by class; {len(sy)} in all)")
    left.set_ylabel(f"query images (by true class; {len(qy)})")
    left.set_title(f"attention = softmax(τ · cos), τ = {data['tau']:.1f}", fontsize=10)
    im2 = right.imshow(probs, cmap="magma", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    fig.colorbar(im2, ax=right, fraction=0.05, label="p(class | query)")
    right.scatter(probs.argmax(-1), np.arange(len(qy)), s=14, c="white", edgecolors="black", linewidths=0.6)
    right.set_xticks(range(probs.shape[1]), [f"c{c}" for c in range(probs.shape[1])], fontsize=8)
    _class_ticks(right, qy, "y")
    right.set_xlabel("class")
    right.set_title(
        f"p(c | q) = attention summed per class\naccuracy {100 * data['accuracy']:.0f}% (dot = prediction)", fontsize=10
    )
    fig.suptitle(title or "Matching Networks: where each query looks in the support set")
    fig.tight_layout()
    return fig
