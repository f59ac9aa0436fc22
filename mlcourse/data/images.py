"""``ImageClassDataset``: a whole few-shot image data set as one uint8 tensor.

Omniglot and CIFAR-100 loaders return it; ``EpisodeSampler`` draws tasks from it with batched tensor
ops on whatever device the dataset lives on (``dataset.to("cuda")`` keeps uint8 and moves it all).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch
from torch import Tensor


def positive_int(name: str, value: object, upper: Optional[int] = None) -> int:
    """Check an integer argument >= 1 (and <= ``upper``); the error names the value and the allowed range."""
    allowed = f"1..{upper}" if upper is not None else ">= 1"
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ValueError(f"{name}={value!r} is not allowed; {name} must be an integer, allowed {allowed}")
    value = operator.index(value)  # type: ignore[arg-type]
    if value < 1 or (upper is not None and value > upper):
        raise ValueError(f"{name}={value} is out of range; allowed {allowed}")
    return value


@dataclass(repr=False)
class ImageClassDataset:
    """Images of ``num_classes`` classes with the same number of images each.

    * ``images``: uint8 ``[num_classes, per_class, C, H, W]`` (0..255).
    * ``class_names``: one name per class (Omniglot ``"Alphabet/characterNN[/rotDDD]"``, CIFAR fine names).
    * ``superclass``: int64 ``[num_classes]`` or ``None`` (Omniglot: alphabet index, CIFAR-100: coarse
      label); indices into ``superclass_names``.
    * ``name``: e.g. ``"omniglot/train"``; ``meta`` holds free-form details (split scheme, image size).
    """

    images: Tensor
    class_names: list[str]
    superclass: Optional[Tensor] = None
    superclass_names: Optional[list[str]] = None
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.images, Tensor) or self.images.dtype != torch.uint8 or self.images.dim() != 5:
            got = f"{getattr(self.images, 'dtype', type(self.images))} {tuple(getattr(self.images, 'shape', ()))}"
            raise ValueError(f"ImageClassDataset.images must be a uint8 tensor [num_classes, per_class, C, H, W], got {got}")
        if len(self.class_names) != self.images.shape[0]:
            raise ValueError(f"ImageClassDataset: {len(self.class_names)} class names for {self.images.shape[0]} classes")
        if self.superclass is not None:
            if self.superclass.shape != (self.images.shape[0],):
                raise ValueError("ImageClassDataset.superclass must be shaped [num_classes]")
            self.superclass = self.superclass.to(dtype=torch.int64, device=self.images.device)

    @property
    def num_classes(self) -> int:
        return int(self.images.shape[0])

    @property
    def per_class(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``."""
        return tuple(int(s) for s in self.images.shape[2:])  # type: ignore[return-value]

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def num_superclasses(self) -> int:
        """Number of distinct superclasses present in this dataset (0 when there are none)."""
        return 0 if self.superclass is None else int(torch.unique(self.superclass).numel())

    def __len__(self) -> int:
        return self.num_classes

    def to(self, device: torch.device | str | None) -> "ImageClassDataset":
        """The same data set on ``device`` (images stay uint8: GPU-resident sampling)."""
        return ImageClassDataset(
            images=self.images.to(device),
            class_names=list(self.class_names),
            superclass=None if self.superclass is None else self.superclass.to(device),
            superclass_names=None if self.superclass_names is None else list(self.superclass_names),
            name=self.name,
            meta=dict(self.meta),
        )

    def subset(self, classes: Sequence[int] | Tensor, name: Optional[str] = None) -> "ImageClassDataset":
        """Only the given classes (in that order)."""
        index = torch.as_tensor(classes, dtype=torch.int64)
        if index.numel() and (index.min() < 0 or index.max() >= self.num_classes):
            raise ValueError(f"class indices must lie in 0..{self.num_classes - 1}")
        return ImageClassDataset(
            images=self.images[index.to(self.images.device)],
            class_names=[self.class_names[i] for i in index.tolist()],
            superclass=None if self.superclass is None else self.superclass[index.to(self.superclass.device)],
            superclass_names=None if self.superclass_names is None else list(self.superclass_names),
            name=self.name if name is None else name,
            meta=dict(self.meta),
        )

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        sup = f", superclasses={self.num_superclasses}" if self.superclass is not None else ""
        return (f"ImageClassDataset(name={self.name!r}, classes={self.num_classes}, per_class={self.per_class}, "
                f"image={c}x{h}x{w}{sup}, device={self.device})")
