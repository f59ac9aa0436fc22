"""The evaluation protocol: mean query accuracy (MSE for regression) over a fixed set of test tasks with a 95 %
confidence interval ``1.96 * std / sqrt(n)`` (:func:`evaluate`, :class:`EvalResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn

from ..algorithms import check_protocol
from ..stats import confidence_interval
from .config import _is_int


@dataclass
class EvalResult:
    """``mean`` +- ``ci95`` of ``metric`` ("accuracy" in [0, 1] or "mse") over ``per_task`` values."""

    mean: float
    ci95: float
    per_task: list[float]
    metric: str = "accuracy"
    std: float = 0.0
    loss_mean: float = float("nan")
    inner_steps: Optional[int] = None
    protocol: Optional[str] = None  # None: the learner's own normalisation mode (see ``evaluate``)

    @property
    def num_tasks(self) -> int:
        return len(self.per_task)

    @property
    def accuracies(self) -> list[float]:
        if self.metric != "accuracy":
            raise AttributeError("accuracies exist for classification only; use per_task")
        return self.per_task

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "mean": self.mean,
            "ci95": self.ci95,
            "std": self.std,
            "num_tasks": self.num_tasks,
            "loss_mean": self.loss_mean,
            "inner_steps": self.inner_steps,
            **({} if self.protocol is None else {"protocol": self.protocol}),
            "per_task": list(self.per_task),
        }

    def __str__(self) -> str:
        if self.metric == "accuracy":  # with its protocol: how the queries were normalised
            protocol = f", {self.protocol} protocol" if self.protocol else ""
            return f"accuracy {100 * self.mean:.2f}% +- {100 * self.ci95:.2f}% ({self.num_tasks} tasks{protocol})"
        return f"{self.metric} {self.mean:.4f} +- {self.ci95:.4f} ({self.num_tasks} tasks)"


def evaluate(
    learner: nn.Module,
    sampler: Any,
    num_tasks: int = 600,
    inner_steps: Optional[int] = None,
    batch_size: Optional[int] = None,
    progress: bool = False,
    protocol: Optional[str] = None,
) -> EvalResult:
    """The standard few-shot test protocol (chapters 03-08, ``mlcourse eval``).

    Draws ``num_tasks`` tasks from ``sampler`` (use the test split: classes never seen in training) in
    batches of ``batch_size`` (default 25), adapts with ``learner.evaluate(batch, inner_steps, protocol)`` and
    returns the mean query accuracy (MSE for regression) with ``ci95 = 1.96 * std / sqrt(n)``. ``protocol``:
    ``transductive`` (queries normalised as one batch), ``support`` (with the support set's statistics),
    ``single`` (each query alone), or ``None``: the learner's own ``norm_mode`` (the result names it).
    """
    check_protocol(protocol)
    if not _is_int(num_tasks) or num_tasks < 1:
        raise ValueError(f"num_tasks={num_tasks!r} is out of range; allowed >= 1 (the protocol uses 600)")
    if inner_steps is not None and (not _is_int(inner_steps) or inner_steps < 0):
        raise ValueError(f"inner_steps={inner_steps!r} is out of range; allowed >= 0 or None")
    batch_size = 25 if batch_size is None else batch_size
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is out of range; allowed >= 1")
    from tqdm.auto import tqdm

    by_protocol = {} if protocol is None else {"protocol": protocol}  # a learner's own mode needs no argument
    scores: list[torch.Tensor] = []
    losses: list[torch.Tensor] = []
    metric = "accuracy"
    done = 0
    with tqdm(total=num_tasks, disable=not progress, desc="evaluate", unit="task", leave=False) as bar:
        while done < num_tasks:
            size = min(batch_size, num_tasks - done)
            batch = sampler.sample(size)
            metrics = learner.evaluate(batch, inner_steps=inner_steps, **by_protocol)
            if "query_accuracy" in metrics and batch.is_classification:
                scores.append(metrics["query_accuracy"].detach().float().reshape(-1).cpu())
            else:
                metric = "mse"
                scores.append(metrics["query_loss"].detach().float().reshape(-1).cpu())
            losses.append(metrics["query_loss"].detach().float().reshape(-1).cpu())
            done += size
            bar.update(size)
    per_task = torch.cat(scores).double().tolist()
    mean, ci95, std = confidence_interval(per_task)
    return EvalResult(
        mean=mean,
        ci95=ci95,
        per_task=per_task,
        metric=metric,
        std=std,
        loss_mean=float(torch.cat(losses).double().mean()),
        inner_steps=inner_steps,
        protocol=protocol or getattr(learner, "norm_mode", None),
    )


# --------------------------------------------------------------------------------------------------
# training
