"""Omniglot few-shot training for the chapters: the three splits, one chapter-sized configuration, training
through :func:`mlcourse.train.train`, and where a chapter's run folder is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch

from mlcourse.commands import train_command
from mlcourse.config import fast_mode, resolve_device, runs_dir
from mlcourse.data import load_omniglot
from mlcourse.train import (
    TrainConfig,
    train,
    training_notice,
)


def load_omniglot_splits(image_size: int = 28, rotations: bool = True, device: torch.device | str | None = None):
    """``{"train": ..., "test": ...}`` Omniglot splits (Vinyals: train characters vs unseen test characters)."""

    device = resolve_device(device or "cpu")
    return {s: load_omniglot(s, image_size=image_size, rotations=rotations).to(device) for s in ("train", "test")}


def run_dir(chapter: str, name: str) -> Optional[Path]:
    """``runs/<chapter>/<name>`` in full mode, ``None`` in fast mode (chapters 01 and 03).

    Full-mode runs keep their checkpoints there: re-running a cell resumes an interrupted run, and a finished
    run (also one trained by the printed ``mlcourse train`` command, e.g. on a GPU) is loaded, not retrained.
    Fast mode trains in memory so that CI never reuses a run of older code.
    """
    if any(not part or part.startswith(".") or "/" in part or "\\" in part for part in (chapter, name)):
        raise ValueError(f"run_dir({chapter!r}, {name!r}): chapter and name must be plain folder names")
    return None if fast_mode() else runs_dir() / chapter / name


def omniglot_config(
    algo: str,
    *,
    iterations: int,
    n_way: int = 5,
    k_shot: int = 5,
    n_query: int = 5,
    meta_batch_size: int = 8,
    inner_lr: Optional[float] = None,
    inner_steps: Optional[int] = None,
    test_inner_steps: Optional[int] = None,
    outer_lr: float = 1e-3,
    hidden: int = 32,
    image_size: int = 28,
    test_tasks: int = 200,
    seed: int = 0,
    device: str = "cpu",
    first_order: bool = False,
    out_dir: Optional[str | Path] = None,
):
    """The ``TrainConfig`` of :func:`train_omniglot` (chapters 01 and 03; docs/FULL_SCALE.md prints it as commands).

    Inner settings default per family: gradient-based (maml, fomaml, metasgd, anil) alpha=0.4, 1 step in
    training, 3 at test (MAML paper); reptile 5 steps of 0.1 (support only); pretrain: a linear probe
    fitted with 50 steps of 0.5 on frozen features; protonet/matchingnet have no inner loop.
    """

    family = {"reptile": (0.1, 5, 10), "pretrain": (0.5, 1, 50)}.get(algo, (0.4, 1, 3))
    return TrainConfig(
        algo=algo,
        data="omniglot",
        n_way=n_way,
        k_shot=k_shot,
        n_query=n_query,
        inner_lr=inner_lr if inner_lr is not None else family[0],
        inner_steps=inner_steps if inner_steps is not None else family[1],
        test_inner_steps=test_inner_steps if test_inner_steps is not None else family[2],
        outer_lr=outer_lr,
        meta_batch_size=meta_batch_size,
        iterations=iterations,
        eval_every=max(1, iterations),
        val_tasks=0,
        test_tasks=test_tasks,
        seed=seed,
        device=device,
        image_size=image_size,
        hidden=hidden,
        first_order=first_order,
        out_dir=None if out_dir is None else str(out_dir),
        log_every=max(1, iterations // 100),
        checkpoint_every=max(1, min(500, iterations)),
    )


def train_omniglot(algo: str, *, progress: bool = True, **settings: Any):
    """Meta-train ``algo`` on Omniglot's training characters and test on unseen characters (``train``).

    ``settings`` are :func:`omniglot_config`'s. With an ``out_dir`` (full mode: :func:`run_dir`) the run is
    resumed or reused from there, and the equivalent ``mlcourse train`` command is printed first.
    """

    config = omniglot_config(algo, **settings)
    if config.out_dir is not None:
        print(
            f"{algo}: run directory {config.out_dir} (resumed or reused when it holds this run); from a terminal:\n  "
            f"{train_command(config)}"
        )
        notice = training_notice(config)  # nothing silently starts an hour of work
        if notice:
            print("  " + notice)
    return train(config, progress=progress)
