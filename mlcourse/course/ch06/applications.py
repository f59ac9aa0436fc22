"""Chapter 06 (applications): small real demos of the article's section 6, as functions.

The seed article lists five application areas of meta-learning; each gets a small experiment that runs in
seconds in fast mode (honest stand-ins: no medical, financial or user data ships with the course).

1. **Few-shot learning on unseen alphabets** — Omniglot, Lake's split: meta-train Prototypical Networks on
   the 30 *background* alphabets, test 5-way 1-shot tasks on the 20 *evaluation* alphabets (new scripts,
   never seen). :func:`load_lake_split`, :func:`train_fewshot`, :func:`fewshot_accuracy`,
   :func:`pixel_prototype_predictions` (a no-learning baseline), :func:`prediction_figure`.
2. **Adapting to a changing environment** — a sinusoid whose amplitude and phase drift over time windows,
   with an abrupt switch halfway (:func:`drift_schedule`, :func:`drift_stream`); a model predicts each window
   after adapting on the *previous* window's K points (:func:`online_errors`): MAML's initialisation reset
   and adapted every window, vs a pretrained model adapted the same way, vs online fine-tuning that carries
   its parameters along. :func:`drift_figure`, :func:`drift_widget`.
3. **Personalisation** — synthetic users, each with a preference function over item features
   (:class:`PreferenceUsers`; MeLU-style "each user is a task"): a global model vs a per-user model adapted
   from K ratings (:func:`personalisation_curve`).
4. **Cross-domain transfer** — the Omniglot-trained embedding tested within the training domain, on new
   alphabets, and under synthetic image shifts (:func:`shift_images`: inverted contrast, shrunk characters,
   pixel noise), :func:`cross_domain_table`.
5. **Meta-reinforcement learning** — see :mod:`mlcourse.course.ch06.rl` (2-D navigation, MAML with policy gradients);
   plots here: :func:`rl_returns_figure`, :func:`trajectory_figure`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.func import functional_call

from mlcourse.algorithms import make_learner
from mlcourse.config import seed_everything, torch_threads
from mlcourse.course.committed import load_or_train, train_committed
from mlcourse.course.display import live_figure
from mlcourse.data import EpisodeSampler, SinusoidTasks, load_omniglot
from mlcourse.data.tasks import TaskBatch
from mlcourse.models import Conv4
from mlcourse.stats import mean_ci
from mlcourse.train import TrainConfig, Trainer, train

Params = dict[str, Tensor]


def load_lake_split(image_size: int = 28, device: torch.device | str | None = None):
    """``(background, evaluation)`` Omniglot datasets (964 / 659 characters, no rotations)."""

    bg = load_omniglot("background", image_size=image_size, rotations=False)
    ev = load_omniglot("evaluation", image_size=image_size, rotations=False)
    if device is not None:
        bg, ev = bg.to(device), ev.to(device)
    return bg, ev


def fewshot_config(
    iterations: int,
    *,
    algo: str = "protonet",
    n_way: int = 5,
    k_shot: int = 1,
    n_query: int = 5,
    meta_batch_size: int = 2,
    hidden: int = 32,
    outer_lr: float = 3e-3,
    seed: int = 0,
    device: str = "cpu",
) -> TrainConfig:
    """The :class:`TrainConfig` of :func:`train_fewshot` (same arguments)."""
    return TrainConfig(
        algo=algo,
        data="omniglot",
        split_scheme="lake",
        n_way=n_way,
        k_shot=k_shot,
        n_query=n_query,
        meta_batch_size=meta_batch_size,
        iterations=iterations,
        outer_lr=outer_lr,
        hidden=hidden,
        rotations=False,
        val_tasks=0,
        test_tasks=0,
        eval_every=max(1, iterations),
        seed=seed,
        device=device,
        log_every=max(1, iterations // 50),
        checkpoint_every=max(1, iterations),
    )


def train_fewshot(
    iterations: int,
    *,
    algo: str = "protonet",
    n_way: int = 5,
    k_shot: int = 1,
    n_query: int = 5,
    meta_batch_size: int = 2,
    hidden: int = 32,
    outer_lr: float = 3e-3,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    committed: Optional[str] = None,
):
    """Meta-train on the Omniglot background alphabets with :func:`mlcourse.train.train` (Lake split, no
    rotations, no validation/test inside the loop). Returns the ``TrainResult`` (``.learner``, ``.history``).
    ``committed="ch06/fewshot-protonet"``: full mode loads those committed weights when they match (no training)."""

    config = fewshot_config(
        iterations,
        algo=algo,
        n_way=n_way,
        k_shot=k_shot,
        n_query=n_query,
        meta_batch_size=meta_batch_size,
        hidden=hidden,
        outer_lr=outer_lr,
        seed=seed,
        device=device,
    )
    if committed:
        return train_committed(config, committed, progress=progress)
    return train(config, progress=progress)


def untrained_learner(
    algo: str = "protonet", *, n_way: int = 5, hidden: int = 32, seed: int = 0, device: str | torch.device = "cpu"
):
    """The same learner with a random (not meta-trained) Conv4, initialised like :func:`train_fewshot`'s."""

    seed_everything(seed)
    return make_learner(algo, Conv4(in_channels=1, n_out=n_way, hidden=hidden).to(device))


def pixel_prototype_predictions(support_x: Tensor, support_y: Tensor, query_x: Tensor, n_way: int) -> Tensor:
    """No learning at all: classify each query by the nearest class mean in pixel space (squared
    Euclidean distance). One task: ``support_x [S, C, H, W]``, ``query_x [Q, C, H, W]`` -> labels ``[Q]``."""
    s = support_x.reshape(support_x.shape[0], -1)
    q = query_x.reshape(query_x.shape[0], -1)
    onehot = (support_y.unsqueeze(-1) == torch.arange(n_way, device=support_y.device)).to(s.dtype)
    protos = (onehot.T @ s) / onehot.sum(0).unsqueeze(-1)
    return torch.cdist(q, protos).argmin(-1)


def pixel_prototype_accuracy(batch: TaskBatch) -> Tensor:
    """Per-task query accuracy ``[T]`` of :func:`pixel_prototype_predictions`."""
    n = batch.n_way
    return torch.stack(
        [
            (
                pixel_prototype_predictions(batch.support_x[t], batch.support_y[t], batch.query_x[t], n)
                == batch.query_y[t]
            )
            .double()
            .mean()
            for t in range(batch.num_tasks)
        ]
    )


def fixed_tasks(
    dataset,
    num_tasks: int,
    *,
    n_way: int = 5,
    k_shot: int = 1,
    n_query: int = 5,
    seed: int = 2026,
    device: torch.device | str | None = None,
) -> TaskBatch:
    """``num_tasks`` tasks of ``dataset`` drawn with a fixed seed (every model is scored on the same tasks)."""

    return EpisodeSampler(dataset, n_way, k_shot, n_query, device=device, seed=seed).sample(num_tasks)


def fewshot_accuracy(learner: Optional[nn.Module], batch: TaskBatch, *, chunk: int = 25, transform=None) -> Tensor:
    """Per-task query accuracy ``[T]`` of ``learner`` (``None``: the pixel-prototype baseline) on ``batch``;
    ``transform(images)`` is applied to support and query images first (a domain shift)."""
    if transform is not None:
        batch = batch.replace(support_x=transform(batch.support_x), query_x=transform(batch.query_x))
    if learner is None:
        return pixel_prototype_accuracy(batch)
    out = []
    vectorise = learner.vectorise
    learner.vectorise = (
        vectorise and batch.query_x.device.type != "cpu"
    )  # on a CPU the per-task loop is ~2x faster than vmap for convolutions
    try:
        for start in range(0, batch.num_tasks, chunk):
            part = TaskBatch(
                *(
                    None if v is None else v[start : start + chunk]
                    for v in (
                        batch.support_x,
                        batch.support_y,
                        batch.query_x,
                        batch.query_y,
                        batch.classes,
                        batch.task_params,
                    )
                )
            )
            out.append(learner.evaluate(part)["query_accuracy"].double().cpu())
    finally:
        learner.vectorise = vectorise
    return torch.cat(out)


@torch.no_grad()
def learner_predictions(learner: nn.Module, batch: TaskBatch, task: int = 0) -> Tensor:
    """Predicted query labels of one task (``learner.predict(learner.adapt(task), query)``)."""
    one = batch.task(task)
    return learner.predict(learner.adapt(one), one.query_x)[0].argmax(-1)


def prediction_figure(
    batch: TaskBatch, predictions: Mapping[str, Tensor], task: int = 0, max_query: int = 10, title: str = ""
) -> Figure:
    """One task: its support images (top row, one per class) and ``max_query`` queries, each captioned with
    every model's predicted class (green = right, red = wrong)."""
    sx, sy = batch.support_x[task].cpu(), batch.support_y[task].cpu()
    qx, qy = batch.query_x[task].cpu(), batch.query_y[task].cpu()
    n = int(sy.max()) + 1
    order = torch.arange(qx.shape[0])[:max_query]
    cols = max(n, len(order))
    fig, axes = plt.subplots(2, cols, figsize=(1.25 * cols, 3.3), squeeze=False)
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
        ax.axis("off")
    for c in range(n):
        ax = axes[0, c]
        ax.axis("on")
        ax.imshow(sx[sy == c][0, 0], cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"class {c}", fontsize=8)
    for j, i in enumerate(order.tolist()):
        ax = axes[1, j]
        ax.axis("on")
        ax.imshow(qx[i, 0], cmap="gray_r", vmin=0, vmax=1)
        label = [f"true {int(qy[i])}"]
        ok_all = True
        for name, pred in predictions.items():
            p = int(pred[i])
            ok_all &= p == int(qy[i])
            label.append(f"{name}: {p}")
        for spine in ax.spines.values():
            spine.set_color("tab:green" if ok_all else "tab:red")
            spine.set_linewidth(2)
        ax.set_xlabel("\n".join(label), fontsize=7)
    axes[0, 0].set_ylabel("support", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# ==================================================================================================
# 4. cross-domain transfer: synthetic image shifts


SHIFTS = ("none", "invert", "shrink", "noise")


def shift_images(images: Tensor, kind: str = "none", *, seed: int = 0) -> Tensor:
    """A synthetic domain shift of images in [0, 1] (``[..., C, H, W]``):

    * ``"invert"``: dark ink on bright paper (``1 - x``): the same characters, opposite contrast;
    * ``"shrink"``: characters at half size, centred on an empty canvas (a scale change);
    * ``"noise"``: Gaussian pixel noise (std 0.3, fixed ``seed``), clipped to [0, 1] (a noisy sensor)."""
    if kind == "none":
        return images
    if kind == "invert":
        return 1.0 - images
    shape = images.shape
    flat = images.reshape(-1, *shape[-3:])
    if kind == "shrink":
        h, w = shape[-2:]
        small = F.interpolate(flat, size=(h // 2, w // 2), mode="bilinear", align_corners=False, antialias=True)
        top, left = (h - h // 2) // 2, (w - w // 2) // 2
        out = F.pad(small, (left, w - w // 2 - left, top, h - h // 2 - top))
        return out.reshape(shape)
    if kind == "noise":
        g = torch.Generator(device=images.device).manual_seed(seed)
        noise = torch.randn(flat.shape, generator=g, device=images.device, dtype=images.dtype)
        return (flat + 0.3 * noise).clamp(0, 1).reshape(shape)
    raise ValueError(f"unknown shift {kind!r}; allowed: {', '.join(SHIFTS)}")


def cross_domain_table(
    models: Mapping[str, Optional[nn.Module]],
    domains: Mapping[str, tuple[TaskBatch, str]],
    known: Optional[Mapping[tuple[str, str], tuple[float, float]]] = None,
) -> dict[str, dict[str, tuple[float, float]]]:
    """``{model: {domain: (mean accuracy, ci95)}}``; ``domains`` maps a name to ``(tasks, shift kind)``;
    a model ``None`` is the pixel-prototype baseline; ``known[(model, domain)]`` reuses a result computed
    earlier on the same tasks."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for name, learner in models.items():
        out[name] = {}
        for dname, (batch, kind) in domains.items():
            if known is not None and (name, dname) in known:
                out[name][dname] = known[(name, dname)]
                continue
            out[name][dname] = mean_ci(fewshot_accuracy(learner, batch, transform=lambda x, k=kind: shift_images(x, k)))
    return out


def cross_domain_figure(table: Mapping[str, Mapping[str, tuple[float, float]]], chance: float = 0.2) -> Figure:
    """Grouped bars: accuracy per domain (groups) and model (bars), 95% CI error bars."""
    models = list(table)
    domains = list(next(iter(table.values())))
    fig, ax = plt.subplots(figsize=(1.9 * len(domains) + 2, 4))
    width = 0.8 / len(models)
    for i, m in enumerate(models):
        means = [table[m][d][0] for d in domains]
        errs = [table[m][d][1] for d in domains]
        ax.bar(
            np.arange(len(domains)) + (i - (len(models) - 1) / 2) * width, means, width, yerr=errs, capsize=3, label=m
        )
    ax.axhline(chance, color="grey", ls=":", lw=1, label="chance")
    ax.set_xticks(range(len(domains)), domains, fontsize=8)
    ax.set_ylabel("5-way 1-shot query accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="best", framealpha=0.7)
    ax.set_title("same embedding, other domains")
    fig.tight_layout()
    return fig


# ==================================================================================================
# 2. adapting to a changing environment (drifting sinusoid)


def drift_schedule(num_windows: int = 40) -> Tensor:
    """``[W, 2]`` (amplitude, phase) per time window: the amplitude oscillates (3 +- 1.5), the phase drifts
    slowly from 0.3 to 1.3 and then, halfway, jumps to 2.8 and drifts back to 1.8 (an abrupt change of
    regime). Everything stays inside the training ranges (amplitude 0.1-5, phase 0-pi)."""
    if num_windows < 2:
        raise ValueError(f"num_windows={num_windows} must be >= 2")
    t = torch.arange(num_windows, dtype=torch.float32)
    half = num_windows // 2
    amplitude = 3.0 + 1.5 * torch.sin(2 * math.pi * t / num_windows)
    phase = torch.where(t < half, 0.3 + 1.0 * t / half, 2.8 - 1.0 * (t - half) / max(1, num_windows - half))
    return torch.stack([amplitude, phase], dim=1)


def drift_stream(
    schedule: Tensor, k_shot: int = 10, n_query: int = 100, *, noise: float = 0.0, seed: int = 0
) -> TaskBatch:
    """One regression task per window: ``k_shot`` observed points (x ~ U[-5, 5], optional label noise) and
    ``n_query`` evaluation points on a grid of [-5, 5]. ``task_params`` = the schedule."""

    g = torch.Generator().manual_seed(seed)
    w = schedule.shape[0]
    sx = torch.rand(w, k_shot, 1, generator=g) * 10 - 5
    sy = SinusoidTasks.function(sx, schedule) + noise * torch.randn(w, k_shot, 1, generator=g)
    qx = torch.linspace(-5, 5, n_query).view(1, -1, 1).expand(w, -1, -1).contiguous()
    qy = SinusoidTasks.function(qx, schedule)
    return TaskBatch(support_x=sx, support_y=sy, query_x=qx, query_y=qy, task_params=schedule)


def sgd_adapt(model: nn.Module, params: Params, x: Tensor, y: Tensor, inner_lr: float, steps: int) -> Params:
    """``steps`` plain SGD steps on the MSE of ``(x, y)`` starting from ``params`` (no meta-gradient)."""
    state = make_learner("maml", model, inner_lr=inner_lr).adapt((x[None], y[None]), params, steps=steps)
    return {k: v[0] for k, v in state.items()}


ONLINE_MODES = ("reset", "continual", "frozen")


@torch.no_grad()
def online_errors(
    model: nn.Module, stream: TaskBatch, *, inner_lr: float = 0.01, steps: int = 5, mode: str = "reset", lag: int = 1
) -> Tensor:
    """Query MSE per window ``[W]`` of a model that adapts online.

    At window ``t`` the model has seen the K points of window ``t - lag`` (``lag=0``: of window ``t`` itself)
    and predicts window ``t``'s query points. ``mode``:

    * ``"reset"``: start from the model's own parameters every window and take ``steps`` SGD steps (MAML-style
      fast adaptation from a meta-learned prior; Nagabandi et al. 2019 adapt to the recent past this way);
    * ``"continual"``: carry the parameters from window to window, ``steps`` SGD steps per window (plain
      online fine-tuning);
    * ``"frozen"``: no adaptation at all.
    The first ``lag`` windows are predicted without adaptation."""
    if mode not in ONLINE_MODES:
        raise ValueError(f"mode={mode!r} is not known; allowed: {', '.join(ONLINE_MODES)}")
    if lag < 0:
        raise ValueError(f"lag={lag} must be >= 0")
    theta = {k: v.detach() for k, v in model.named_parameters()}
    current = theta
    errors = []
    for t in range(stream.num_tasks):
        s = t - lag
        if mode != "frozen" and s >= 0:
            start = theta if mode == "reset" else current
            current = sgd_adapt(model, start, stream.support_x[s], stream.support_y[s], inner_lr, steps)
        params = current if mode != "frozen" else theta
        pred = functional_call(model, params, (stream.query_x[t],))
        errors.append(F.mse_loss(pred, stream.query_y[t]))
    return torch.stack(errors)


DRIFT_RUNS = {  # label: (model key, mode)
    "MAML init, adapted each window": ("maml", "reset"),
    "pretrained, adapted each window": ("pretrained", "reset"),
    "pretrained, online fine-tuning": ("pretrained", "continual"),
    "pretrained, no adaptation": ("pretrained", "frozen"),
}


def drift_errors(
    models: Mapping[str, nn.Module],
    *,
    k_shot: int = 10,
    inner_lr: float = 0.01,
    steps: int = 5,
    num_windows: int = 40,
    lag: int = 1,
    seed: int = 0,
) -> dict[str, Tensor]:
    """The four curves of :data:`DRIFT_RUNS` for ``models = {"maml": ..., "pretrained": ...}``."""
    stream = drift_stream(drift_schedule(num_windows), k_shot, seed=seed)
    return {
        label: online_errors(models[key], stream, inner_lr=inner_lr, steps=steps, mode=mode, lag=lag)
        for label, (key, mode) in DRIFT_RUNS.items()
        if key in models
    }


def drift_figure(
    models: Mapping[str, nn.Module],
    *,
    k_shot: int = 10,
    inner_lr: float = 0.01,
    steps: int = 5,
    num_windows: int = 40,
    lag: int = 1,
    seed: int = 0,
) -> Figure:
    """Left: the drifting amplitude and phase. Right: query MSE per window for each adaptation strategy."""
    errors = drift_errors(
        models, k_shot=k_shot, inner_lr=inner_lr, steps=steps, num_windows=num_windows, lag=lag, seed=seed
    )
    sched = drift_schedule(num_windows)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [1, 2]})
    ax1.plot(sched[:, 0], label="amplitude A(t)")
    ax1.plot(sched[:, 1], label="phase b(t)")
    ax1.axvline(num_windows // 2, color="grey", ls=":", lw=1)
    ax1.set_xlabel("time window t")
    ax1.set_title("the environment drifts (switch halfway)")
    ax1.legend(fontsize=8, loc="best", framealpha=0.7)
    for label, e in errors.items():
        ax2.plot(e.numpy(), marker="o", ms=3, label=f"{label} (mean {float(e.mean()):.2f})")
    ax2.axvline(num_windows // 2, color="grey", ls=":", lw=1)
    ax2.set_yscale("log")
    ax2.set_xlabel("time window t")
    ax2.set_ylabel("query MSE of window t")
    ax2.set_title(
        f"adapt on the previous window's K={k_shot} points, α={inner_lr:.3g}, {steps} step(s)"
        if lag == 1
        else f"K={k_shot}, α={inner_lr:.3g}, {steps} step(s), lag {lag}"
    )
    ax2.legend(
        fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False
    )  # below: hides no curve
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def drift_widget(
    models: Mapping[str, nn.Module],
    *,
    inner_lr: float = 0.01,
    k_shot: int = 10,
    steps: int = 5,
    num_windows: int = 40,
    display: bool = True,
):
    """Sliders "α (inner lr)", "shots K", "inner steps"; redraws :func:`drift_figure` (no training: the
    models are only re-adapted). Draws once with the defaults."""
    import ipywidgets as w

    controls = {
        "inner_lr": w.FloatLogSlider(
            value=inner_lr, base=10, min=-3, max=-0.5, step=0.1, description="α (inner lr)", readout_format=".3g"
        ),
        "k_shot": w.IntSlider(value=k_shot, min=1, max=40, description="shots K"),
        "steps": w.IntSlider(value=steps, min=0, max=20, description="inner steps"),
    }
    return live_figure(controls, lambda **kw: drift_figure(models, num_windows=num_windows, **kw), display=display)


# ==================================================================================================
# 3. personalisation: every user is a task


class PreferenceMLP(nn.Module):
    """Rating model ``dim -> hidden -> hidden -> 1`` (ReLU), body + head like the course's other models."""

    def __init__(self, dim: int = 8, hidden: int = 40) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, 1)
        self.feature_dim = hidden

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


@dataclass
class PreferenceUsers:
    """Synthetic users rating items (an honest stand-in for a recommender's cold-start problem).

    Items have features ``x ~ N(0, I_dim)``. User ``u`` has a taste vector ``w_u = w_0 + M z_u`` with
    ``z_u ~ N(0, I_latent)`` (users differ along ``latent`` shared directions; ``w_0``, ``M`` fixed by
    ``seed``) and a personal offset ``c_u ~ N(0, 0.5^2)``; the rating is ``2 tanh(w_u . x / sqrt(dim)) + c_u``
    plus noise. A global model can only learn the *average* user; a personal model must find ``z_u`` and
    ``c_u`` from the user's K ratings."""

    dim: int = 8
    latent: int = 2
    noise: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        g = torch.Generator().manual_seed(self.seed)
        self.w0 = 0.5 * torch.randn(self.dim, generator=g)
        self.mix = 1.5 * torch.randn(self.dim, self.latent, generator=g)

    def ratings(self, x: Tensor, users: Tensor) -> Tensor:
        """Noise-free ratings ``[T, M, 1]`` of items ``x [T, M, dim]`` by users ``[T, latent + 1]`` (z, c)."""
        w = self.w0 + users[:, : self.latent] @ self.mix.T  # [T, dim]
        score = torch.einsum("tmd,td->tm", x, w) / math.sqrt(self.dim)
        return (2 * torch.tanh(score) + users[:, self.latent :]).unsqueeze(-1)

    def sample(
        self, num_users: int, k_shot: int, n_query: int = 50, generator: Optional[torch.Generator] = None
    ) -> TaskBatch:
        """``num_users`` tasks: ``k_shot`` rated items (support) and ``n_query`` items to predict (query)."""
        users = torch.cat(
            [
                torch.randn(num_users, self.latent, generator=generator),
                0.5 * torch.randn(num_users, 1, generator=generator),
            ],
            dim=1,
        )
        x = torch.randn(num_users, k_shot + n_query, self.dim, generator=generator)
        y = self.ratings(x, users) + self.noise * torch.randn(num_users, k_shot + n_query, 1, generator=generator)
        return TaskBatch(
            support_x=x[:, :k_shot],
            support_y=y[:, :k_shot],
            query_x=x[:, k_shot:],
            query_y=y[:, k_shot:],
            task_params=users,
        )


def train_personalisation(
    algo: str,
    iterations: int,
    *,
    users: Optional[PreferenceUsers] = None,
    k_shot: int = 10,
    meta_batch_size: int = 16,
    inner_lr: float = 0.1,
    outer_lr: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
    committed: Optional[str] = None,
) -> nn.Module:
    """Meta-train (``algo="maml"``) or jointly train (``"pretrain"``: the global model) a
    :class:`PreferenceMLP` on users drawn from ``users``; returns the learner. ``committed`` names committed
    weights that full mode loads instead of training when the settings match (``ch06/personalisation-maml``)."""

    users = users or PreferenceUsers()
    seed_everything(seed)
    model = PreferenceMLP(users.dim)
    learner = make_learner(algo, model, inner_lr=inner_lr, inner_steps=1)

    def train_now() -> list[float]:
        generator = torch.Generator().manual_seed(seed)
        with torch_threads(1):  # a tiny network: more threads only add synchronisation
            return Trainer(learner, outer_lr=outer_lr).run(
                lambda: users.sample(meta_batch_size, k_shot, k_shot, generator=generator),
                iterations,
                progress=progress,
                desc=f"{algo} users",
            )

    if not committed:
        train_now()
        return learner
    settings = personalisation_settings(
        algo,
        iterations,
        users=users,
        k_shot=k_shot,
        meta_batch_size=meta_batch_size,
        inner_lr=inner_lr,
        outer_lr=outer_lr,
        seed=seed,
    )
    load_or_train(committed, learner, settings, train_now)
    return learner


def personalisation_settings(
    algo: str,
    iterations: int,
    *,
    users: Optional[PreferenceUsers] = None,
    k_shot: int = 10,
    meta_batch_size: int = 16,
    inner_lr: float = 0.1,
    outer_lr: float = 3e-3,
    seed: int = 0,
) -> dict:
    """The settings :func:`train_personalisation` matches committed weights on (same arguments)."""
    return dict(
        algo=algo,
        iterations=iterations,
        users=repr(users or PreferenceUsers()),
        k_shot=k_shot,
        meta_batch_size=meta_batch_size,
        inner_lr=inner_lr,
        outer_lr=outer_lr,
        seed=seed,
    )


def ridge_per_user(batch: TaskBatch, l2: float = 1.0) -> Tensor:
    """Per-user query MSE ``[T]`` of a linear model (with bias) fitted on that user's K ratings only
    (ridge regression, no knowledge of other users)."""

    def design(x: Tensor) -> Tensor:
        return torch.cat([x, torch.ones(*x.shape[:-1], 1, dtype=x.dtype)], dim=-1)

    xs, xq = design(batch.support_x.double()), design(batch.query_x.double())
    eye = torch.eye(xs.shape[-1], dtype=xs.dtype)
    w = torch.linalg.solve(xs.transpose(1, 2) @ xs + l2 * eye, xs.transpose(1, 2) @ batch.support_y.double())
    return ((xq @ w - batch.query_y.double()) ** 2).mean((1, 2))


def personalisation_curve(
    learners: Mapping[str, nn.Module],
    shots: Sequence[int] = (1, 2, 5, 10, 20),
    *,
    users: Optional[PreferenceUsers] = None,
    steps: int = 5,
    num_users: int = 300,
    seed: int = 7,
) -> dict[str, dict[str, list[float]]]:
    """Query MSE (mean, ci95 over ``num_users`` new users) against the number of ratings K per user for:
    each learner without adaptation ("global"), each learner after ``steps`` SGD steps on the user's K
    ratings, and per-user ridge regression. Returns ``{curve: {"mean": [...], "ci95": [...]}}``."""
    users = users or PreferenceUsers()
    curves: dict[str, dict[str, list[float]]] = {}

    def add(name: str, values: Tensor) -> None:
        m, c = mean_ci(values)
        curves.setdefault(name, {"mean": [], "ci95": []})
        curves[name]["mean"].append(m)
        curves[name]["ci95"].append(c)

    for k in shots:
        batch = users.sample(num_users, int(k), 50, generator=torch.Generator().manual_seed(seed))
        for name, learner in learners.items():
            add(f"{name}, no adaptation", learner.evaluate(batch, inner_steps=0)["query_loss"])
            add(
                f"{name}, {steps} steps on the user's K ratings",
                learner.evaluate(batch, inner_steps=steps)["query_loss"],
            )
        add("per-user linear model (ridge, K ratings only)", ridge_per_user(batch))
    return curves


def personalisation_figure(curves: Mapping[str, Mapping[str, list[float]]], shots: Sequence[int]) -> Figure:
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for name, c in curves.items():
        m, e = np.asarray(c["mean"]), np.asarray(c["ci95"])
        ax.plot(shots, m, marker="o", ms=4, label=name)
        ax.fill_between(shots, m - e, m + e, alpha=0.15)
    ax.set_xscale("log")
    ax.set_xticks(list(shots), [str(s) for s in shots])
    ax.set_xlabel("ratings K given by the new user")
    ax.set_ylabel("MSE on the user's other items")
    ax.set_title("personalisation: every user is a task")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", framealpha=0.7)
    fig.tight_layout()
    return fig


# ==================================================================================================
# 5. meta-RL plots (the computation is in mlcourse.course.ch06.rl)


def rl_returns_figure(results: Mapping[str, Mapping[str, list[float]]], title: str = "") -> Figure:
    """Average return against policy-gradient adaptation steps, one line per policy (95% CI bands)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in results.items():
        m, e = np.asarray(r["mean"]), np.asarray(r["ci95"])
        xs = np.arange(len(m))
        ax.plot(xs, m, marker="o", label=name)
        ax.fill_between(xs, m - e, m + e, alpha=0.2)
    ax.set_xticks(range(len(next(iter(results.values()))["mean"])))
    ax.set_xlabel("policy-gradient adaptation steps on the new goal")
    ax.set_ylabel("average return")
    ax.set_title(title or "2-D navigation: new goals")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best", framealpha=0.7)
    fig.tight_layout()
    return fig


def trajectory_figure(
    paths: Mapping[str, Sequence[Tensor]],
    goal: Tensor,
    step_labels: Sequence[str] = ("before adaptation", "after 1 step"),
) -> Figure:
    """For each policy (a row... one panel per policy): trajectories ``[N, H + 1, 2]`` before and after
    adaptation (one colour per adaptation stage) and the goal."""
    fig, axes = plt.subplots(1, len(paths), figsize=(4.2 * len(paths), 4.0), squeeze=False)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:purple"]
    for ax, (name, stages) in zip(axes[0], paths.items()):
        for s, p in enumerate(stages):
            p = p.cpu().numpy()
            for n in range(p.shape[0]):
                ax.plot(
                    p[n, :, 0],
                    p[n, :, 1],
                    color=colours[s % 4],
                    alpha=0.6,
                    lw=1,
                    label=step_labels[s] if n == 0 and s < len(step_labels) else None,
                )
        g = goal.cpu().numpy()
        ax.scatter([0], [0], marker="s", color="black", s=30, label="start", zorder=5)
        ax.scatter([g[0]], [g[1]], marker="*", color="red", s=200, label="goal", zorder=5)
        ax.add_patch(plt.Rectangle((-0.5, -0.5), 1, 1, fill=False, ls=":", color="grey"))
        ax.set_xlim(-0.8, 0.8), ax.set_ylim(-0.8, 0.8)
        ax.set_aspect("equal")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


__all__ = [
    "mean_ci",
    "load_lake_split",
    "train_fewshot",
    "untrained_learner",
    "pixel_prototype_predictions",
    "pixel_prototype_accuracy",
    "fixed_tasks",
    "fewshot_accuracy",
    "learner_predictions",
    "prediction_figure",
    "SHIFTS",
    "shift_images",
    "cross_domain_table",
    "cross_domain_figure",
    "drift_schedule",
    "drift_stream",
    "sgd_adapt",
    "online_errors",
    "ONLINE_MODES",
    "DRIFT_RUNS",
    "drift_errors",
    "drift_figure",
    "drift_widget",
    "PreferenceMLP",
    "PreferenceUsers",
    "train_personalisation",
    "ridge_per_user",
    "personalisation_curve",
    "personalisation_figure",
    "rl_returns_figure",
    "trajectory_figure",
]
