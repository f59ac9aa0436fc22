"""Chapter 04's full-size experiment: the article's update rule (joint training, which it calls MAML) against
second-order MAML on the sinusoids, saved as ``results/ch04_article_vs_maml.json`` (``mlcourse article-vs-maml``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mlcourse.algorithms import make_learner
from mlcourse.config import resolve_device
from mlcourse.course.ch04 import bilevel as B
from mlcourse.course.options import ExperimentOptions, set_threads
from mlcourse.course.result_files import save_result
from mlcourse.data import SinusoidTasks
from mlcourse.models import SinusoidMLP

ARTICLE_VS_MAML = "ch04_article_vs_maml"  # results/ch04_article_vs_maml.json: the full-size run of chapter 04


def article_vs_maml(
    iterations: int,
    *,
    test_tasks: int = 1000,
    k_shot: int = 10,
    alpha: float = 0.01,
    meta_batch_size: int = 25,
    max_steps: int = 10,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Chapter 04, section 7: the article's rule against MAML on the MAML paper's sinusoid benchmark.

    Both rules start from the same initialisation (``seed``) and get the same budget; only the meta-gradient
    differs. Returns ``{"models", "histories", "curves", "wall_time_s", "settings"}`` where ``curves[name]`` is
    the held-out query MSE after 0..``max_steps`` SGD steps of ``alpha`` on ``test_tasks`` new tasks.
    """

    device = resolve_device(device)
    sine = SinusoidTasks()
    sample = lambda g: sine.sample(meta_batch_size, k_shot, 10, generator=g, device=device)  # noqa: E731
    models, histories, wall = {}, {}, {}
    for name in ("maml", "article"):
        torch.manual_seed(seed)  # the same initialisation for both rules
        models[name] = SinusoidMLP().to(device)
        learner = make_learner(name, models[name], inner_lr=alpha, inner_steps=1)
        start = time.perf_counter()
        histories[name] = B.meta_train(
            learner, sample, iterations, outer_lr=1e-3, seed=seed, desc=name, progress=progress
        )
        wall[name] = time.perf_counter() - start
    test_batch = sine.sample(test_tasks, k_shot, 100, generator=torch.Generator().manual_seed(2024), device=device)
    curves = {name: B.mean_adaptation_loss(m, test_batch, alpha, max_steps).cpu() for name, m in models.items()}
    settings = dict(
        iterations=iterations,
        test_tasks=test_tasks,
        k_shot=k_shot,
        alpha=alpha,
        meta_batch_size=meta_batch_size,
        seed=seed,
    )
    return {"models": models, "histories": histories, "curves": curves, "wall_time_s": wall, "settings": settings}


def save_article_vs_maml(
    run: Mapping[str, Any], device: torch.device | str = "cpu", directory: str | Path | None = None
) -> Path:
    """Write a full-size :func:`article_vs_maml` run to ``results/ch04_article_vs_maml.json`` (curves, wall times)."""
    payload = {
        "settings": run["settings"],
        "curves": {k: [float(x) for x in v] for k, v in run["curves"].items()},
        "wall_time_by_rule_s": {k: round(v, 1) for k, v in run["wall_time_s"].items()},
    }
    return save_result(
        ARTICLE_VS_MAML, payload, device, directory=directory, wall_time_s=sum(run["wall_time_s"].values())
    )


def article_command(args: ExperimentOptions) -> int:
    """``mlcourse article-vs-maml``: chapter 04's full-size run -> results/ch04_article_vs_maml.json."""
    set_threads(args.threads)
    run = article_vs_maml(args.iterations or 20_000, test_tasks=1000, seed=args.seed, device=args.device)
    print(f"saved {save_article_vs_maml(run, args.device)}")
    return 0
