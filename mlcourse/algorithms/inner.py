"""Inner optimisers: the update rule of a learner's inner loop, as small objects with one method,
``run(loss_fn, params, steps, *, create_graph, grad_fn) -> params``.

* :class:`InnerSGD` — ``p <- p - lr * dL/dp``: one step size (MAML and its family) or one learned rate per
  parameter tensor (Meta-SGD's ``lr`` is a dict of tensors, so the rates receive a meta-gradient too).
* :class:`Proximal` — another optimiser run on the proximal problem ``L(p) + lam/2 ||p - anchor||^2`` (iMAML's inner
  problem, whose solution the implicit meta-gradient assumes).

Where the gradient comes from is not theirs to decide: ``grad_fn`` is the task map's (``torch.func.grad`` under
``vmap``, ``torch.autograd.grad`` in the reference loop), and ``create_graph`` says whether the outer backward pass
goes through the steps (second order) or treats them as constants.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Union

from torch import Tensor

Params = dict[str, Tensor]
LossFn = Callable[[Params], Tensor]
GradFn = Callable[[LossFn, Params, bool], Params]
LR = Union[float, Params]


class InnerSGD:
    """Plain gradient descent with step size ``lr``: a float, or a ``{name: tensor}`` of per-parameter rates."""

    def __init__(self, lr: LR) -> None:
        self.lr = lr

    def rate(self, name: str) -> float | Tensor:
        return self.lr[name] if isinstance(self.lr, dict) else self.lr

    def step(self, params: Params, grads: Params) -> Params:
        return {k: p - self.rate(k) * grads[k] for k, p in params.items()}

    def run(self, loss_fn: LossFn, params: Params, steps: int, *, create_graph: bool, grad_fn: GradFn) -> Params:
        """``steps`` updates from ``params`` on ``loss_fn``."""
        for _ in range(steps):
            params = self.step(params, grad_fn(loss_fn, params, create_graph))
        return params


class Proximal:
    """``inner`` run on ``loss_fn(p) + lam/2 ||p - anchor||^2``: the solution stays near ``anchor`` (the meta-
    parameters), which is what makes iMAML's implicit meta-gradient well defined."""

    def __init__(self, inner: InnerSGD, lam: float, anchor: Params) -> None:
        self.inner, self.lam, self.anchor = inner, float(lam), anchor

    def objective(self, loss_fn: LossFn) -> LossFn:
        anchor, lam = self.anchor, self.lam
        return lambda p: loss_fn(p) + 0.5 * lam * sum((p[k] - anchor[k]).square().sum() for k in p)

    def run(self, loss_fn: LossFn, params: Params, steps: int, *, create_graph: bool, grad_fn: GradFn) -> Params:
        return self.inner.run(self.objective(loss_fn), params, steps, create_graph=create_graph, grad_fn=grad_fn)
