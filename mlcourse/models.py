"""Models of the course: the Conv4 image backbone and the sinusoid MLP (ch03 algorithms, ch05 CIFAR, ch08).

Every model is ``body`` (an ``nn.Module`` giving the embedding, ``model.features``) followed by ``head``
(an ``nn.Linear``), so that ANIL, ProtoNets, Matching Nets and the pretrain baseline can call the two
parts functionally (``torch.func.functional_call(model.body, ...)``).

Normalisation uses *batch statistics only* (no running averages), written with plain tensor ops in
``BatchNormPlain``: transductive, as in MAML, and exact under ``torch.func.vmap`` with second-order
gradients; or, inside :func:`context_rows`, with the statistics of the batch's first rows only (the learners'
``support`` mode: the support set's statistics, so that a prediction does not depend on the other queries).
``norm="torch_batchnorm"`` swaps in ``nn.BatchNorm2d`` *only* so the tests (and ch08) can show that it gives a wrong
second-order meta-gradient under ``vmap``; do not train with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Optional

import torch
from torch import Tensor, nn

NORMS = ("batch", "none", "torch_batchnorm", "tasknorm")


def _batch_moments(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and biased variance over (batch, height, width), shaped ``[1, C, 1, 1]``."""
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    return mean, (x - mean).square().mean(dim=(0, 2, 3), keepdim=True)


class BatchNormPlain(nn.Module):
    """Per-channel normalisation over (batch, height, width) with a learnable affine map; no running stats.

    ``context_rows = None`` (transductive): the statistics of the whole batch. ``context_rows = n``: the statistics
    of the batch's first ``n`` rows only (the support set, placed first by the learners' ``support`` mode), applied
    to every row, so that the other rows do not depend on one another. A Python integer, read at call time: static
    under ``torch.func.vmap`` and ``torch.compile``; set it with :func:`context_rows`.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.context_rows: Optional[int] = None

    def forward(self, x: Tensor) -> Tensor:
        if self.context_rows is None:
            centred = x - x.mean(dim=(0, 2, 3), keepdim=True)
            var = centred.square().mean(dim=(0, 2, 3), keepdim=True)  # biased, as in batch norm
        else:
            mean, var = _batch_moments(x[: self.context_rows])
            centred = x - mean
        scale = torch.rsqrt(var + self.eps) * self.weight.view(1, -1, 1, 1)  # [1, C, 1, 1]: cheap
        return centred * scale + self.bias.view(1, -1, 1, 1)


class TaskNormI(BatchNormPlain):
    """TaskNorm-I (Bronskill et al., 2020): the context's batch moments blended with each row's own instance moments
    (over height and width), ``mean = a m_ctx + (1 - a) m_row``, ``var = a (v_ctx + (m_ctx - mean)^2) + (1 - a)
    (v_row + (m_row - mean)^2)``, with ``a = sigmoid(scale * n_ctx + offset)`` learned (``scale = offset = 0`` at
    start: ``a = 1/2``). The context is the first ``context_rows`` rows (the support set; ``None``: the whole
    batch); variances are biased, as in :class:`BatchNormPlain`. Each row's output depends on itself and the context
    only, so a prediction of one image does not depend on the other queries."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__(channels, eps)
        self.scale = nn.Parameter(torch.zeros(()))
        self.offset = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        rows = x.shape[0] if self.context_rows is None else min(self.context_rows, x.shape[0])
        mean_c, var_c = _batch_moments(x[:rows])
        mean_i = x.mean(dim=(2, 3), keepdim=True)
        var_i = (x - mean_i).square().mean(dim=(2, 3), keepdim=True)
        alpha = torch.sigmoid(self.scale * rows + self.offset)
        mean = alpha * mean_c + (1 - alpha) * mean_i
        var = alpha * (var_c + (mean_c - mean).square()) + (1 - alpha) * (var_i + (mean_i - mean).square())
        scale = torch.rsqrt(var + self.eps) * self.weight.view(1, -1, 1, 1)
        return (x - mean) * scale + self.bias.view(1, -1, 1, 1)


@contextmanager
def context_rows(model: nn.Module, rows: Optional[int]) -> Iterator[None]:
    """Within the block, every ``BatchNormPlain`` of ``model`` takes its statistics from the first ``rows`` rows of
    its input (``None``: the whole batch, the transductive default). Set outside ``vmap``/``compile``: the value is
    static there. A model with ``nn.BatchNorm2d`` cannot do this (it always uses the whole batch)."""
    if rows is not None and (not isinstance(rows, int) or isinstance(rows, bool) or rows < 1):
        raise ValueError(f"rows={rows!r} is not allowed; allowed: None or an integer >= 1")
    if rows is not None and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        raise ValueError("norm='torch_batchnorm' cannot normalise with the support set's statistics; use norm='batch'")
    layers = [m for m in model.modules() if isinstance(m, BatchNormPlain)]
    saved = [m.context_rows for m in layers]
    for m in layers:
        m.context_rows = rows
    try:
        yield
    finally:
        for m, value in zip(layers, saved):
            m.context_rows = value


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return BatchNormPlain(channels)
    if kind == "tasknorm":
        return TaskNormI(channels)
    if kind == "none":
        return nn.Identity()
    if kind == "torch_batchnorm":  # the vmap trap, for tests and ch08 only
        return nn.BatchNorm2d(channels, track_running_stats=False)
    raise ValueError(f"norm={kind!r} is not known; allowed: {', '.join(NORMS)}")


class ConvBlock(nn.Module):
    """conv3x3 (padding 1) -> normalisation -> ReLU -> max-pool 2 (skipped when the map is already 1x1)."""

    def __init__(self, c_in: int, c_out: int, norm: str, pool: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)  # keeps its bias: its true gradient is 0 under batch norm
        self.norm = _norm(norm, c_out)
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(torch.relu(self.norm(self.conv(x))))


class ChannelSpatialAttention(nn.Module):
    """The "MAML + attention" block: a CBAM-style gate (Woo et al., 2018), channel then spatial.

    channel: ``x * sigmoid(W2 relu(W1 mean_hw(x)))``; spatial: ``x * sigmoid(conv3x3([mean_c(x), max_c(x)]))``.
    Plain differentiable ops only (twice differentiable almost everywhere, ``vmap``-safe).
    """

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        mid = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, mid)
        self.fc2 = nn.Linear(mid, channels)
        self.spatial = nn.Conv2d(2, 1, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
        x = x * gate[:, :, None, None]
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class Conv4(nn.Module):
    """The few-shot Conv4 backbone (Vinyals et al. 2016; MAML) + linear head. Used in ch03-ch08.

    Four ``ConvBlock``s (``layers`` sets how many, as in learn2learn's ``CNN4``: the compile tests use 2 to keep
    their compile time short); with ``attention=True`` a ``ChannelSpatialAttention`` gate sits after block 3
    (where the map is still spatial: 3x3 at 28 px, 4x4 at 32 px). ``feature_dim = hidden * s * s`` where
    ``s`` is the final map size (1 for 28 px Omniglot, 2 for 32 px CIFAR, 5 for 84 px).
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_out: int = 5,
        hidden: int = 64,
        image_size: int = 28,
        norm: str = "batch",
        attention: bool = False,
        layers: int = 4,
    ) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers={layers} must be >= 1")
        if norm not in NORMS:
            raise ValueError(f"norm={norm!r} is not known; allowed: {', '.join(NORMS)}")
        if image_size < 1:
            raise ValueError(f"image_size={image_size} must be >= 1")
        size, c_in = image_size, in_channels
        blocks: list[nn.Module] = []
        for i in range(layers):
            blocks.append(ConvBlock(c_in, hidden, norm, pool=size >= 2))
            size, c_in = (size // 2 if size >= 2 else size), hidden
            if attention and i == min(2, layers - 1):
                blocks.append(ChannelSpatialAttention(hidden))
        blocks.append(nn.Flatten())
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(hidden * size * size, n_out)
        self.feature_dim = hidden * size * size
        self.hparams = dict(
            in_channels=in_channels,
            n_out=n_out,
            hidden=hidden,
            image_size=image_size,
            norm=norm,
            attention=attention,
            layers=layers,
        )

    def features(self, x: Tensor) -> Tensor:
        """The embedding ``[B, feature_dim]`` (ProtoNets, Matching Nets, ANIL, pretrain)."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


class SinusoidMLP(nn.Module):
    """The MAML paper's regression net: 1 -> hidden -> ... -> hidden -> 1 with ReLU (ch02, ch03, ch04)."""

    def __init__(self, hidden: int = 40, layers: int = 2) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers={layers} must be >= 1")
        mods: list[nn.Module] = []
        width = 1
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.body = nn.Sequential(*mods)
        self.head = nn.Linear(hidden, 1)
        self.feature_dim = hidden
        self.hparams = dict(hidden=hidden, layers=layers)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))

    @torch.no_grad()
    def reference_init_(self, generator: Optional[torch.Generator] = None) -> SinusoidMLP:
        """Re-initialise like the MAML authors' reference code: weights ~ normal(0, 0.01) truncated at two
        standard deviations, biases 0 (PyTorch's default is uniform(+-1/sqrt(fan_in))). Ch02 compares both."""
        for name, p in self.named_parameters():
            if name.endswith("weight"):
                values = torch.randn(p.shape, generator=generator, dtype=p.dtype)
                while (bad := values.abs() > 2).any():  # redraw outside two standard deviations
                    values[bad] = torch.randn(int(bad.sum()), generator=generator, dtype=p.dtype)
                p.copy_(0.01 * values)
            else:
                p.zero_()
        return self


class InContextRegressor(nn.Module):
    """A black-box (model-based) meta-learner for 1-D regression (chapter 08's trends): a small transformer that
    reads a task's support points ``(x_i, y_i)`` and predicts ``y`` at query points ``x`` in one forward pass, with
    no gradient step at test time. Every token attends to the support tokens only (so queries never see each
    other), written with plain tensor operations (``vmap``-safe, like the rest of the course's models)."""

    def __init__(self, width: int = 64, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width={width} is not a multiple of heads={heads}")
        self.embed = nn.Linear(3, width)  # (x, y, 1) for a support point, (x, 0, 0) for a query
        self.attention = nn.ModuleList(nn.Linear(width, 3 * width) for _ in range(layers))
        self.mix = nn.ModuleList(nn.Linear(width, width) for _ in range(layers))
        self.mlp = nn.ModuleList(
            nn.Sequential(nn.Linear(width, 2 * width), nn.ReLU(), nn.Linear(2 * width, width)) for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(2 * layers))
        self.head = nn.Linear(width, 1)
        self.heads = heads
        self.hparams = dict(width=width, layers=layers, heads=heads)

    def forward(self, support_x: Tensor, support_y: Tensor, x: Tensor) -> Tensor:
        """``[S, 1]``, ``[S, 1]``, ``[Q, 1]`` -> predictions ``[Q, 1]``."""
        k = support_x.shape[0]
        tokens = torch.cat(
            [
                torch.cat([support_x, support_y, torch.ones_like(support_x)], dim=-1),
                torch.cat([x, torch.zeros_like(x), torch.zeros_like(x)], dim=-1),
            ]
        )
        h = self.embed(tokens)  # [S + Q, width]
        n, width = h.shape
        d = width // self.heads
        for i, (qkv, mix, mlp) in enumerate(zip(self.attention, self.mix, self.mlp)):
            q, key, v = qkv(self.norms[2 * i](h)).reshape(n, 3, self.heads, d).unbind(1)  # each [N, heads, d]
            scores = torch.einsum("nhd,mhd->hnm", q, key[:k]) / d**0.5  # attend to the support tokens only
            h = h + mix(torch.einsum("hnm,mhd->nhd", scores.softmax(-1), v[:k]).reshape(n, width))
            h = h + mlp(self.norms[2 * i + 1](h))
        return self.head(h[k:])
