"""``EpisodeSampler``: N-way K-shot classification tasks from an ``ImageClassDataset``.

All tasks of a batch are drawn at once with tensor ops on the dataset's device (the whole data set is
resident there as uint8): classes by ``topk`` of uniform noise (= a random subset without replacement,
in random order), images within each class the same way, one gather, then uint8 -> float32 / 255 on the
sampler's device. A ``torch.Generator`` on the dataset's device makes it reproducible from ``seed``;
``state_dict()``/``load_state_dict()`` resume exactly. (CPU and CUDA generators give different streams:
the same seed on another device gives other, equally valid, tasks.)
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .images import ImageClassDataset, positive_int
from .tasks import TaskBatch


class EpisodeSampler:
    """Sample ``TaskBatch``es of ``n_way``-way ``k_shot``-shot tasks with ``n_query`` queries per class.

    * classes are distinct within a task, images are distinct within a class (support and query never
      share an image);
    * labels are ``0..n_way-1`` in class-major order (support: K images of label 0, then label 1, ...);
      ``classes[t, i]`` is the dataset's class index of label ``i`` in task ``t``;
    * ``stratified=True`` (the seed article's stratified sampling): draw ``n_way`` distinct superclasses
      (Omniglot alphabets, CIFAR-100 coarse classes) uniformly, then one class uniformly within each, then
      the images; needs ``n_way <=`` the number of superclasses in the split.
    """

    def __init__(self, dataset: ImageClassDataset, n_way: int, k_shot: int, n_query: int, *,
                 stratified: bool = False, device: torch.device | str | None = None, seed: int = 0) -> None:
        if not isinstance(dataset, ImageClassDataset):
            raise TypeError(f"EpisodeSampler needs an ImageClassDataset, got {type(dataset).__name__}")
        num_classes, per_class = dataset.num_classes, dataset.per_class
        if isinstance(n_way, int) and not isinstance(n_way, bool) and n_way > num_classes:
            raise ValueError(f"n_way={n_way} but the split has {num_classes} classes; allowed 1..{num_classes}")
        self.n_way = positive_int("n_way", n_way, num_classes)
        if per_class < 2:
            raise ValueError(f"each class has {per_class} image(s); a task needs at least 1 support and 1 query image")
        self.k_shot = positive_int("k_shot", k_shot, per_class - 1)
        self.n_query = positive_int("n_query", n_query, per_class - 1)
        if self.k_shot + self.n_query > per_class:
            raise ValueError(
                f"k_shot + n_query = {self.k_shot} + {self.n_query} = {self.k_shot + self.n_query} but each class "
                f"has {per_class} images; allowed k_shot + n_query <= {per_class}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed={seed!r} is not allowed; seed must be a non-negative integer")
        self.dataset = dataset
        self.stratified = bool(stratified)
        self.seed = seed
        self.data_device = dataset.images.device
        self.device = torch.device(device) if device is not None else self.data_device
        self.generator = torch.Generator(device=self.data_device)
        self.generator.manual_seed(seed)

        if self.stratified:
            if dataset.superclass is None:
                raise ValueError(f"stratified=True needs superclasses, but dataset {dataset.name!r} has none")
            present, inverse = torch.unique(dataset.superclass, return_inverse=True)
            num_super = int(present.numel())
            if self.n_way > num_super:
                raise ValueError(
                    f"stratified sampling draws n_way distinct superclasses: n_way={self.n_way} but the split has "
                    f"{num_super} superclasses; allowed 1..{num_super}"
                )
            counts = torch.bincount(inverse, minlength=num_super)
            # members[s, j] = the j-th class of superclass s (padded with 0; never read beyond counts[s]).
            order = torch.argsort(inverse, stable=True)
            starts = torch.cumsum(counts, 0) - counts
            rank = torch.arange(num_classes, device=self.data_device) - starts[inverse[order]]
            members = torch.zeros(num_super, int(counts.max()), dtype=torch.int64, device=self.data_device)
            members[inverse[order], rank] = order
            self._super_counts = counts
            self._super_members = members
            self.num_superclasses = num_super

        n, k, q = self.n_way, self.k_shot, self.n_query
        self._support_y = torch.arange(n, device=self.device).repeat_interleave(k)
        self._query_y = torch.arange(n, device=self.device).repeat_interleave(q)

    def __repr__(self) -> str:
        return (f"EpisodeSampler({self.dataset.name!r}, n_way={self.n_way}, k_shot={self.k_shot}, "
                f"n_query={self.n_query}, stratified={self.stratified}, device={self.device}, seed={self.seed})")

    def _rand(self, *shape: int) -> Tensor:
        return torch.rand(shape, generator=self.generator, device=self.data_device)

    def sample_classes(self, num_tasks: int) -> Tensor:
        """Class indices ``[num_tasks, n_way]`` (distinct within each row), on the dataset's device."""
        num_tasks = positive_int("num_tasks", num_tasks)
        if not self.stratified:
            return self._rand(num_tasks, self.dataset.num_classes).topk(self.n_way, dim=1).indices
        supers = self._rand(num_tasks, self.num_superclasses).topk(self.n_way, dim=1).indices  # [T, N]
        counts = self._super_counts[supers]
        within = (self._rand(num_tasks, self.n_way) * counts).long().clamp_max(counts - 1)
        return self._super_members[supers, within]

    def sample(self, num_tasks: int) -> TaskBatch:
        """``num_tasks`` tasks as one ``TaskBatch`` (images float32 in [0, 1] on the sampler's device)."""
        num_tasks = positive_int("num_tasks", num_tasks)
        n, k, q = self.n_way, self.k_shot, self.n_query
        classes = self.sample_classes(num_tasks)  # [T, N]
        picks = self._rand(num_tasks, n, self.dataset.per_class).topk(k + q, dim=2).indices  # [T, N, K+Q]
        images = self.dataset.images[classes.unsqueeze(-1), picks]  # [T, N, K+Q, C, H, W] uint8
        images = images.to(self.device).float().div_(255.0)
        shape = images.shape[3:]
        support_x = images[:, :, :k].reshape(num_tasks, n * k, *shape)
        query_x = images[:, :, k:].reshape(num_tasks, n * q, *shape)
        return TaskBatch(
            support_x=support_x,
            support_y=self._support_y.expand(num_tasks, -1).clone(),
            query_x=query_x,
            query_y=self._query_y.expand(num_tasks, -1).clone(),
            classes=classes.to(self.device),
        )

    def __iter__(self):
        """Endless single-task batches (``next(iter(sampler))``); use ``sample(T)`` for meta-batches."""
        while True:
            yield self.sample(1)

    def state_dict(self) -> dict[str, Any]:
        """Generator state plus the settings, for exact resume from a checkpoint."""
        return {"generator": self.generator.get_state(), "seed": self.seed, "n_way": self.n_way,
                "k_shot": self.k_shot, "n_query": self.n_query, "stratified": self.stratified,
                "dataset": self.dataset.name, "num_classes": self.dataset.num_classes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the generator state saved by ``state_dict()`` (the next ``sample`` continues exactly)."""
        mine = {"n_way": self.n_way, "k_shot": self.k_shot, "n_query": self.n_query, "stratified": self.stratified,
                "num_classes": self.dataset.num_classes}
        for key, value in mine.items():
            if key in state and state[key] != value:
                raise ValueError(f"sampler state has {key}={state[key]!r} but this sampler has {key}={value!r}; "
                                 f"it comes from another sampler")
        self.generator.set_state(state["generator"].cpu() if isinstance(state["generator"], Tensor) else state["generator"])
        self.seed = state.get("seed", self.seed)
