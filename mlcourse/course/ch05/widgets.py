"""Chapter 05's α / β / K widget: a short real meta-training of one variant, then adaptation on test tasks,
redrawn when a slider moves.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from torch import nn

from mlcourse.algorithms import make_learner
from mlcourse.config import seed_everything, torch_threads
from mlcourse.course import plots
from mlcourse.course.ch05.grid import ALL_VARIANTS, Variant
from mlcourse.course.display import live_figure
from mlcourse.data import EpisodeSampler
from mlcourse.models import Conv4
from mlcourse.stats import confidence_interval
from mlcourse.train import (
    TEST_SEED,
    Trainer,
)


@dataclass
class ShortRun:
    """A short meta-training run of the widget and its evaluation."""

    settings: dict[str, Any]
    losses: list[float]
    curve_mean: list[float]
    curve_ci95: list[float]
    wall_time_s: float


def _fresh_learner(
    variant: Variant, images: Any, *, n_way: int, hidden: int, inner_lr: float, inner_steps: int, seed: int
) -> nn.Module:
    """``variant``'s learner around a Conv-4 for ``images``' channels and size, initialised from ``seed``."""
    seed_everything(seed)
    model = Conv4(
        in_channels=int(images.images.shape[2]),
        n_out=n_way,
        hidden=hidden,
        image_size=int(images.images.shape[-1]),
        attention=variant.attention,
    ).to(images.images.device)
    return make_learner(variant.algo, model, inner_lr=inner_lr, inner_steps=inner_steps)


def short_run(
    datasets: Mapping[str, Any],
    *,
    variant: str = "MAML",
    inner_lr: float = 0.4,
    outer_lr: float = 1e-3,
    k_shot: int = 1,
    n_way: int = 5,
    iterations: int = 10,
    meta_batch_size: int = 4,
    n_query: int = 5,
    inner_steps: int = 1,
    test_steps: int = 5,
    test_tasks: int = 30,
    hidden: int = 16,
    seed: int = 0,
    num_threads: Optional[int] = 1,
    progress: bool = False,
) -> ShortRun:
    """Meta-train ``variant`` (a MAML-family row) from scratch for ``iterations`` steps with α, β, K, then
    adapt it on ``test_tasks`` test tasks (the same tasks for every setting) for 0..``test_steps`` steps."""

    v = ALL_VARIANTS[variant]
    if v.algo not in ("maml", "metasgd", "fomaml"):
        raise ValueError(f"the widget runs MAML-family variants; {variant!r} is {v.algo}")
    start = time.perf_counter()
    train_set, test_set = datasets["train"], datasets["test"]
    with torch_threads(num_threads if train_set.images.device.type == "cpu" else None):
        sampler = EpisodeSampler(train_set, n_way, k_shot, n_query, stratified=True, seed=seed)
        learner = _fresh_learner(
            v, train_set, n_way=n_way, hidden=hidden, inner_lr=inner_lr, inner_steps=inner_steps, seed=seed
        )
        losses = Trainer(learner, outer_lr=outer_lr).run(
            lambda: sampler.sample(meta_batch_size),
            iterations,
            progress=progress,
            desc=f"{variant} α={inner_lr:.3g} β={outer_lr:.1e} K={k_shot}",
        )
        test_sampler = EpisodeSampler(test_set, n_way, k_shot, n_query, seed=TEST_SEED)
        # query accuracy after 0..test_steps steps of the learner's own inner rule (Meta-SGD: its learned rates)
        curve = learner.adaptation_curve(test_sampler.sample(test_tasks), test_steps)["query_accuracy"]
    stats = [confidence_interval(curve[:, s].tolist()) for s in range(test_steps + 1)]
    settings = dict(
        variant=variant,
        inner_lr=inner_lr,
        outer_lr=outer_lr,
        k_shot=k_shot,
        iterations=iterations,
        test_tasks=test_tasks,
        meta_batch_size=meta_batch_size,
        hidden=hidden,
    )
    return ShortRun(
        settings=settings,
        losses=losses,
        curve_mean=[m for m, _, _ in stats],
        curve_ci95=[c for _, c, _ in stats],
        wall_time_s=time.perf_counter() - start,
    )


def hyperparameter_figure(run: ShortRun, reference: Optional[ShortRun] = None, *, n_way: int = 5):
    """Two panels: the short run's meta-training loss; test accuracy vs adaptation steps (95% CI band),
    with ``reference`` (the defaults) drawn for comparison."""
    import matplotlib.pyplot as plt

    s = run.settings
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.8))
    ax1.plot(range(1, len(run.losses) + 1), run.losses, marker=".", label="this setting")
    if reference is not None and reference is not run:
        ax1.plot(range(1, len(reference.losses) + 1), reference.losses, color="grey", alpha=0.6, label="defaults")
    ax1.set_xlabel("meta-iteration")
    ax1.set_ylabel("meta-training loss (query CE after adaptation)")
    ax1.set_title(f"{s['variant']}: {s['iterations']} meta-iterations from scratch")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    curves = {f"α={s['inner_lr']:.3g}, β={s['outer_lr']:.1e}, K={s['k_shot']}": run.curve_mean}
    errors = {next(iter(curves)): run.curve_ci95}
    if reference is not None and reference is not run:
        r = reference.settings
        label = f"defaults α={r['inner_lr']:.3g}, β={r['outer_lr']:.1e}, K={r['k_shot']}"
        curves[label], errors[label] = reference.curve_mean, reference.curve_ci95
    plots.adaptation_curves(
        curves,
        errors=errors,
        ylabel="test query accuracy",
        ax=ax2,
        title=f"{s['test_tasks']} test tasks (unseen classes), 95% CI",
    )
    ax2.axhline(1 / n_way, color="grey", ls=":", lw=1)
    fig.tight_layout()
    return fig


def hyperparameter_widget(
    datasets: Mapping[str, Any],
    *,
    variant: str = "MAML",
    inner_lr: float = 0.4,
    outer_lr: float = 1e-3,
    k_shot: int = 1,
    iterations: int = 10,
    test_tasks: int = 30,
    display: bool = True,
    **run_kwargs: Any,
):
    """Sliders "α (inner lr)", "β (outer lr)", "shots K" (and the variant): every change re-runs a short
    real meta-training + adaptation (:func:`short_run`) and redraws :func:`hyperparameter_figure`, with
    the default setting's curves for comparison. Draws once with the defaults."""
    import ipywidgets as w

    controls = {
        "inner_lr": w.FloatLogSlider(
            value=inner_lr,
            base=10,
            min=-3,
            max=0.3,
            step=0.05,
            description="α (inner lr)",
            readout_format=".3g",
            continuous_update=False,
        ),
        "outer_lr": w.FloatLogSlider(
            value=outer_lr,
            base=10,
            min=-5,
            max=-1,
            step=0.25,
            description="β (outer lr)",
            readout_format=".1e",
            continuous_update=False,
        ),
        "k_shot": w.IntSlider(value=k_shot, min=1, max=10, description="shots K", continuous_update=False),
        "variant": w.Dropdown(
            options=[v for v, x in ALL_VARIANTS.items() if x.algo in ("maml", "metasgd")],
            value=variant,
            description="variant",
        ),
    }
    state: dict[str, Any] = {}

    def draw(**values: Any):
        run = short_run(datasets, iterations=iterations, test_tasks=test_tasks, **values, **run_kwargs)
        state.setdefault("reference", run)
        state["run"] = run
        return hyperparameter_figure(run, state["reference"])

    return live_figure(controls, draw, display=display, wrap=True, state=state)
