"""Every task of a meta-batch in one call of the Conv-4: the batched execution of a learner's training step.

``vmap`` over tasks runs each operation once for all tasks, but with the operations it is given: the plain-op batch
norm (exact under ``vmap`` with second-order gradients, written as a dozen elementwise passes) and a max-pool over a
strided view. Here the tasks become *groups of channels* instead: an input ``[T, B, C, H, W]`` is laid out as
``[B, T*C, H, W]`` (channels last), so that

* task ``t``'s convolution, with its own weights, is group ``t`` of one grouped convolution (``groups = T``);
* task ``t``'s batch statistics are those of its ``C`` channels, so PyTorch's fused batch norm computes every task's
  own statistics at once (in the forward pass whose gradient is differentiated again, the second-order inner loop,
  the same formula in plain operations over a ``[rows, T*C]`` view, whose double backward is cheaper);
* ReLU and max-pool are per channel: ``relu(pool(x)) = pool(relu(x))`` (ReLU is monotone), so ReLU runs on the
  pooled map, a quarter of the size.

The inner loop's gradient is one ``torch.autograd.grad`` of the sum of the tasks' losses with respect to the
stacked per-task parameters ``[T, ...]``: the tasks share nothing, so row ``t`` of that gradient is task ``t``'s own.
The results equal the per-task reference loop (tested in float64), for the transductive protocol (each batch
normalised with its own statistics) and the Conv-4 of :mod:`mlcourse.models` only: :func:`why_not_batched` says why
anything else is not run this way.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlcourse.models import BatchNormPlain, ConvBlock

Params = dict[str, Tensor]
BATCHED_ALGORITHMS = ("maml", "fomaml", "metasgd", "protonet", "matchingnet")


def _block_problem(index: int, block: nn.Module) -> str:
    """Why block ``index`` of a model's body cannot run batched ("" when it can)."""
    if not isinstance(block, ConvBlock):
        return f"body layer {index} is a {type(block).__name__}, not a convolution block"
    conv = block.conv
    shape = (conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups, conv.padding_mode)
    if shape != ((3, 3), (1, 1), (1, 1), (1, 1), 1, "zeros") or conv.bias is None:
        return f"body layer {index}'s convolution is not the Conv-4's (3x3, stride 1, zero padding 1, with a bias)"
    if not (type(block.norm) is BatchNormPlain or isinstance(block.norm, nn.Identity)):
        return f"body layer {index} normalises with {type(block.norm).__name__} (batched: norm='batch' or 'none')"
    pool = block.pool
    halves = isinstance(pool, nn.MaxPool2d) and (pool.kernel_size, pool.stride, pool.padding) == (2, 2, 0)
    if not (isinstance(pool, nn.Identity) or (halves and pool.dilation == 1 and not pool.ceil_mode)):
        return f"body layer {index} pools with {pool!r} (batched: MaxPool2d(2) or none)"
    return ""


def why_not_batched(algorithm: str, model: nn.Module, norm_mode: str) -> str:
    """Why ``algorithm`` with ``model`` in ``norm_mode`` cannot train batched; "" when it can."""
    if algorithm not in BATCHED_ALGORITHMS:
        return f"{algorithm} has no batched training step (batched: {', '.join(BATCHED_ALGORITHMS)})"
    if norm_mode != "transductive":
        return (
            f"norm_mode={norm_mode!r}: the batched step normalises transductively (each batch with its own statistics)"
        )
    body, head = getattr(model, "body", None), getattr(model, "head", None)
    if not isinstance(body, nn.Sequential) or not isinstance(head, nn.Linear):
        return f"{type(model).__name__} is not a Conv-4 (a body of convolution blocks and a linear head)"
    layers = list(body)
    if layers and isinstance(layers[-1], nn.Flatten):
        layers = layers[:-1]
    for index, block in enumerate(layers):
        problem = _block_problem(index, block)
        if problem:
            return problem
    return "" if layers else "the model's body has no convolution block"


def stack_params(params: Params, tasks: int) -> Params:
    """Every tensor repeated along a new leading task dimension ``[T, ...]`` (a view: the gradient of each row flows
    back into the shared tensor)."""
    return {k: v.expand(tasks, *v.shape) for k, v in params.items()}


def _normalise(h: Tensor, weight: Tensor, bias: Tensor, eps: float, differentiated_twice: bool) -> Tensor:
    """Batch norm of ``[B, G, H, W]`` over (B, H, W) for each of the ``G`` channels (each task's own channels)."""
    if not differentiated_twice and h.shape[0] * h.shape[2] * h.shape[3] > 1:  # (one value: the fused op refuses)
        return F.batch_norm(h, None, None, weight, bias, training=True, eps=eps)
    rows = h.permute(0, 2, 3, 1).reshape(-1, h.shape[1])  # a view of a channels-last map
    centred = rows - rows.mean(0)
    scale = torch.rsqrt(centred.square().mean(0) + eps) * weight  # biased variance, as in batch norm
    out = centred * scale + bias
    return out.view(h.shape[0], h.shape[2], h.shape[3], h.shape[1]).permute(0, 3, 1, 2)


def _block(block: ConvBlock, params: Params, prefix: str, h: Tensor, tasks: int, twice: bool) -> Tensor:
    """One convolution block for every task at once: ``[B, T*C_in, H, W] -> [B, T*C_out, H', W']``."""
    h = F.conv2d(
        h, params[prefix + "conv.weight"].flatten(0, 1), params[prefix + "conv.bias"].flatten(), padding=1, groups=tasks
    )
    if isinstance(block.norm, BatchNormPlain):
        weight, bias = params[prefix + "norm.weight"].flatten(), params[prefix + "norm.bias"].flatten()
        h = _normalise(h, weight, bias, block.norm.eps, twice)
    if isinstance(block.pool, nn.MaxPool2d):
        h = F.max_pool2d(h, 2)
    return torch.relu(h)


def features(model: nn.Module, params: Params, x: Tensor, *, differentiated_twice: bool = False) -> Tensor:
    """The embeddings ``[T, B, D]`` of images ``x`` ``[T, B, C, H, W]``, task ``t`` with its own body parameters
    (``params``: the model's names, each tensor ``[T, ...]``). ``differentiated_twice``: the gradient of this
    forward pass will itself be back-propagated (second order), which picks the cheaper batch norm for that."""
    tasks, rows = x.shape[:2]
    h = x.transpose(0, 1).reshape(rows, tasks * x.shape[2], *x.shape[3:])
    h = h.contiguous(memory_format=torch.channels_last)
    for index, block in enumerate(model.body):
        if isinstance(block, ConvBlock):
            h = _block(block, params, f"body.{index}.", h, tasks, differentiated_twice)
    return h.reshape(rows, tasks, -1, *h.shape[2:]).flatten(2).transpose(0, 1)


def logits(model: nn.Module, params: Params, x: Tensor, *, differentiated_twice: bool = False) -> Tensor:
    """The model's outputs ``[T, B, n_out]``: :func:`features` and each task's own linear head."""
    embedded = features(model, params, x, differentiated_twice=differentiated_twice)
    return torch.baddbmm(params["head.bias"].unsqueeze(1), embedded, params["head.weight"].transpose(1, 2))


def task_losses(out: Tensor, y: Tensor) -> Tensor:
    """Each task's mean cross-entropy ``[T]`` of outputs ``[T, B, N]`` and labels ``[T, B]``."""
    return F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none").view(y.shape).mean(1)


def task_metrics(out: Tensor, y: Tensor, prefix: str = "query") -> tuple[Tensor, dict[str, Tensor]]:
    """Per-task losses ``[T]`` and the detached metrics the per-task functions report (loss, accuracy)."""
    losses = task_losses(out, y)
    accuracy = (out.argmax(dim=-1) == y).to(out.dtype).mean(1)
    return losses, {f"{prefix}_loss": losses.detach(), f"{prefix}_accuracy": accuracy.detach()}


def support_loss(model: nn.Module, sx: Tensor, sy: Tensor, second_order: bool) -> Callable[[Params], Tensor]:
    """The inner loss of stacked parameters ``p``: the sum over tasks of each task's support loss (so that its
    gradient's row ``t`` is task ``t``'s gradient)."""
    return lambda p: task_losses(logits(model, p, sx, differentiated_twice=second_order), sy).sum()
