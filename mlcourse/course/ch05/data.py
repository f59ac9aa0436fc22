"""Chapter 05's data: CIFAR-100 when its files are in the data folder, otherwise Omniglot (the offline fallback,
e.g. CI), said with the reason; the splits loaded once for the whole grid; and how often a uniform task draws its
classes from distinct superclasses, which the article's "stratified" sampling forces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor

from mlcourse.config import fast_mode, resolve_device
from mlcourse.data import EpisodeSampler, load_omniglot
from mlcourse.data.cifar100 import CIFAR100_FILES, CIFAR100_FOLDER, CIFAR100_SCHEMES, cifar100_dir, load_cifar100
from mlcourse.data.download import DataError

DOWNLOAD_COMMAND = ".venv/bin/mlcourse data download cifar100"


@dataclass
class DataChoice:
    """What :func:`choose_dataset` decided: ``data`` ("cifar100"/"omniglot"), its split scheme, and why."""

    data: str
    split_scheme: str
    reason: str
    requested: str = "cifar100"
    root: Optional[str] = None

    @property
    def fallback(self) -> bool:
        return self.data != self.requested

    @property
    def label(self) -> str:
        if self.data == "omniglot":
            return "Omniglot (Vinyals split, 28x28, rotations as new classes)"
        return {"article": "CIFAR-100, the article's 80/20 class split", "cifar-fs": "CIFAR-FS", "fc100": "FC100"}.get(
            self.split_scheme, f"CIFAR-100 ({self.split_scheme})"
        )

    def describe(self) -> str:
        head = f"data set: {self.label}"
        return f"{head}\n  why: {self.reason}"


def cifar100_available(root: str | Path | None = None) -> tuple[bool, str]:
    """``(True, where)`` when CIFAR-100's python files are in the data directory and readable,
    ``(False, why not)`` otherwise. Never downloads."""

    folder = cifar100_dir(root) / CIFAR100_FOLDER
    missing = [f for f in CIFAR100_FILES if not (folder / f).is_file()]
    if missing:
        return False, (
            f"CIFAR-100 is not on this machine ({folder} lacks {', '.join(missing)}); this machine may be "
            f"offline (as in CI). Get it with one command: `{DOWNLOAD_COMMAND}`"
        )
    try:
        load_cifar100("test", split_scheme="article", root=root, download=False)
    except (DataError, OSError, ValueError) as exc:
        first = str(exc).split(". ")[0]
        return False, f"the CIFAR-100 copy in {folder} cannot be read ({first}); re-run `{DOWNLOAD_COMMAND}`"
    return True, f"CIFAR-100 found in {folder}"


def choose_dataset(
    split_scheme: str = "article", root: str | Path | None = None, *, prefer: str = "cifar100"
) -> DataChoice:
    """CIFAR-100 (``split_scheme``: article / cifar-fs / fc100) when present, else Omniglot, and why.

    ``prefer="omniglot"`` skips CIFAR-100. Omniglot is downloaded on first use by its loader (or imported
    with ``mlcourse data import omniglot PATH``).
    """

    if split_scheme not in CIFAR100_SCHEMES:
        raise ValueError(
            f"split_scheme={split_scheme!r} is not a CIFAR-100 split; allowed: {', '.join(CIFAR100_SCHEMES)}"
        )
    if prefer not in ("cifar100", "omniglot"):
        raise ValueError(f"prefer={prefer!r}; allowed: cifar100, omniglot")
    root_s = None if root is None else str(root)
    if prefer == "omniglot":
        return DataChoice("omniglot", "vinyals", "Omniglot was asked for (prefer='omniglot')", "omniglot", root_s)
    ok, why = cifar100_available(root)
    if ok:
        return DataChoice("cifar100", split_scheme, why, "cifar100", root_s)
    return DataChoice(
        "omniglot",
        "vinyals",
        f"{why}. Falling back to Omniglot: the same pipeline (samplers, "
        "Conv-4, algorithms, evaluation) on another image data set.",
        "cifar100",
        root_s,
    )


def load_splits(
    choice: DataChoice,
    *,
    train_split: str = "train",
    device: torch.device | str | None = None,
    image_size: int = 28,
    validation: Optional[bool] = None,
) -> dict[str, Any]:
    """``{"train", "val", "test"}`` ``ImageClassDataset``s of ``choice`` (loaded once, shared by the grid).

    ``train_split="trainval"`` trains on train + val (for the article's split: all 80 training classes,
    as the article did; validation then reuses training classes). Omniglot: Vinyals split with rotations.
    ``validation=False`` skips the val split (default: skipped in fast mode, which does not validate).
    """

    device = resolve_device(device or "cpu")
    if train_split not in ("train", "trainval"):
        raise ValueError(f"train_split={train_split!r}; allowed: train, trainval")
    validation = (not fast_mode()) if validation is None else validation
    out: dict[str, Any] = {}
    for split, name in (("train", train_split), ("val", "val"), ("test", "test")):
        if split == "val" and not validation:
            continue
        if choice.data == "omniglot":
            ds = load_omniglot(name, image_size=image_size, rotations=True, root=choice.root)
        else:
            ds = load_cifar100(name, split_scheme=choice.split_scheme, root=choice.root, download=False)
        out[split] = ds.to(device)
    return out


def distinct_superclasses(classes: Tensor, superclass: Tensor) -> Tensor:
    """``[T]`` bool: does task ``t`` draw its ``n_way`` classes from ``n_way`` different superclasses?"""
    sup = superclass.to(classes.device)[classes]  # [T, N]
    ordered = sup.sort(dim=1).values
    return (ordered[:, 1:] != ordered[:, :-1]).all(dim=1)


def uniform_distinct_probability(superclass: Tensor, n_way: int) -> float:
    """Exact probability that ``n_way`` classes drawn uniformly without replacement come from distinct
    superclasses: ``e_N(sizes) / C(classes, N)`` (``e_N`` = elementary symmetric polynomial)."""
    sizes = torch.bincount(superclass.cpu()).to(torch.float64)
    sizes = sizes[sizes > 0]
    e = torch.zeros(n_way + 1, dtype=torch.float64)
    e[0] = 1.0
    for s in sizes:
        e[1:] = e[1:] + s * e[:-1].clone()
    return float(e[n_way] / math.comb(int(sizes.sum()), n_way))


def stratification_report(dataset: Any, n_way: int = 5, num_tasks: int = 500, seed: int = 0) -> dict[str, float]:
    """Fraction of tasks with ``n_way`` distinct superclasses: uniform vs stratified sampler, and the exact
    uniform probability."""

    out = {"exact_uniform": uniform_distinct_probability(dataset.superclass, n_way)}
    for name, strat in (("uniform", False), ("stratified", True)):
        sampler = EpisodeSampler(dataset, n_way, 1, 1, stratified=strat, seed=seed)
        out[name] = float(distinct_superclasses(sampler.sample_classes(num_tasks), dataset.superclass).double().mean())
    return out
