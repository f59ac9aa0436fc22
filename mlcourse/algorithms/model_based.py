"""Model-based ("black-box") meta-learning (chapter 08's trends): the network itself reads the support set and
predicts the queries; adaptation is a forward pass, with no inner gradient step.

:class:`BlackBox` wraps a model called as ``model(support_x, support_y, x)`` (``mlcourse.models.InContextRegressor``)
in the course's learner API: ``learner.adapt(batch)`` returns the support set (what the model conditions on) and
``learner.predict(state, x)`` runs the network; the meta-loss is the query loss, trained by the same outer loop.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torch.func import functional_call

from mlcourse.algorithms.core import Learner, Params


class BlackBox(Learner):
    """Meta-learning by a network that conditions on the support set (Santoro et al., 2016; Garnelo et al., 2018;
    in-context learning). Regression only; ``inner_lr`` and ``inner_steps`` are accepted (one interface) and unused."""

    algorithm_name = "blackbox"

    def __init__(self, model: nn.Module, **kw: Any) -> None:
        kw.setdefault("inner_steps", 0)
        super().__init__(model, **kw)

    def task_adapt(self, meta, sx, sy, *, steps, inner_lr, create_graph, grad_fn, classification, n_way):  # type: ignore[override]
        if classification:
            raise ValueError(
                f"{self.algorithm_name} here is a regression learner (sinusoids); use it on regression tasks"
            )
        return {"support_x": sx, "support_y": sy}

    def task_predict(self, meta: dict[str, Params], state: Params, x: Tensor) -> Tensor:
        return functional_call(self.model, meta["model"], (state["support_x"], state["support_y"], x))


__all__ = ["BlackBox"]
