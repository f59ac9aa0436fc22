"""Meta-learning algorithms as ``nn.Module`` learners (ch03-ch08); build them with ``make_learner``.

``learner(batch) -> MetaOutput(loss, metrics)``; ``learner.evaluate(batch, inner_steps=None)``;
``vectorise=True`` maps tasks with ``torch.func.vmap``, ``vectorise=False`` is the per-task reference loop.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from mlcourse.algorithms.core import NORM_MODES, PROTOCOLS, Learner, MetaOutput, check_protocol, non_transductive
from mlcourse.algorithms.gradient_based import (
    ANIL,
    FOMAML,
    IMAML,
    MAML,
    ArticleRule,
    CheckpointedMAML,
    MetaSGD,
    Pretrain,
    ProtoMAML,
    Reptile,
    TruncatedMAML,
)
from mlcourse.algorithms.metric_based import MatchingNet, ProtoNet
from mlcourse.algorithms.model_based import BlackBox

REGISTRY: dict[str, type[Learner]] = {
    "maml": MAML,
    "fomaml": FOMAML,
    "metasgd": MetaSGD,
    "reptile": Reptile,
    "anil": ANIL,
    "protonet": ProtoNet,
    "matchingnet": MatchingNet,
    "article": ArticleRule,
    "pretrain": Pretrain,
    "protomaml": ProtoMAML,
    "checkpointed": CheckpointedMAML,
    "truncated": TruncatedMAML,
    "imaml": IMAML,
}
ALGORITHMS = tuple(REGISTRY)


def make_learner(
    name: str,
    model: nn.Module,
    *,
    inner_lr: float = 0.4,
    inner_steps: int = 1,
    first_order: bool = False,
    vectorise: bool = True,
    compile: bool = False,
    norm_mode: str = "transductive",
    batched: bool = False,
    **kwargs: Any,
) -> Learner:
    """Build learner ``name`` around ``model``. Extra keyword arguments: ``num_classes`` (pretrain),
    ``include_query``, ``inner_batch`` (reptile), ``scale`` (matchingnet), ``backprop_steps`` (truncated),
    ``imaml_lambda``, ``cg_steps`` (imaml). ``fomaml``/``reptile`` are always first order.
    ``compile=True`` compiles the vectorised map with ``torch.compile`` (falls back to eager with a notice).
    ``norm_mode``: ``transductive`` (each batch's own statistics) or ``support`` (the support set's).
    ``batched=True``: the training step (``learner(batch)``) runs every task in one call of the Conv-4 (grouped
    convolutions, :mod:`mlcourse.algorithms.batched`), whatever ``vectorise`` and ``compile`` say, which then apply
    to evaluation, ``adapt`` and ``predict``; a ``ValueError`` says why where that is not available."""
    key = name.strip().lower()
    if key not in REGISTRY:
        raise ValueError(f"unknown algorithm {name!r}; allowed: {', '.join(ALGORITHMS)}")
    return REGISTRY[key](
        model,
        inner_lr=inner_lr,
        inner_steps=inner_steps,
        first_order=first_order,
        vectorise=vectorise,
        compile=compile,
        norm_mode=norm_mode,
        batched=batched,
        **kwargs,
    )


__all__ = [
    "ALGORITHMS",
    "NORM_MODES",
    "PROTOCOLS",
    "check_protocol",
    "non_transductive",
    "REGISTRY",
    "Learner",
    "MetaOutput",
    "make_learner",
    "MAML",
    "FOMAML",
    "TruncatedMAML",
    "CheckpointedMAML",
    "IMAML",
    "MetaSGD",
    "Reptile",
    "ProtoMAML",
    "ANIL",
    "ProtoNet",
    "MatchingNet",
    "ArticleRule",
    "Pretrain",
    "BlackBox",
]
