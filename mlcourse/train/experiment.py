"""Building a run from its configuration: the data sets, the model and learner, and the train/validation/test task
samplers (:func:`build_experiment`; chapter 05 passes data it loaded once, and a model of its own)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn

from .. import data, models
from ..algorithms import make_learner
from ..config import resolve_device, seed_everything
from .config import _OMNIGLOT_SPLITS, CLASSIFICATION_ONLY, TEST_SEED, VAL_SEED_OFFSET, ConfigError, TrainConfig


class SinusoidSampler:
    """``SinusoidTasks`` with its own seeded generator and ``state_dict`` (same interface as ``EpisodeSampler``)."""

    def __init__(
        self, tasks: Any, k_shot: int, n_query: int, *, device: torch.device | str | None = None, seed: int = 0
    ) -> None:
        self.tasks, self.k_shot, self.n_query, self.seed = tasks, k_shot, n_query, seed
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)

    def sample(self, num_tasks: int):
        return self.tasks.sample(num_tasks, self.k_shot, self.n_query, generator=self.generator, device=self.device)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "seed": self.seed}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"].cpu())
        self.seed = state.get("seed", self.seed)


@dataclass
class Experiment:
    """What :func:`build_experiment` returns: ``samplers`` has ``"train"``, ``"val"`` and ``"test"``."""

    config: TrainConfig
    model: nn.Module
    learner: nn.Module
    samplers: dict[str, Any]
    device: torch.device


def _data_api() -> Any:
    """The data loaders ``build_experiment`` and ``mlcourse data`` call, looked up in :mod:`mlcourse.data` when
    called: one seam, which a test replaces to train on synthetic images."""
    from types import SimpleNamespace

    names = ("SinusoidTasks", "EpisodeSampler", "load_omniglot", "load_cifar100", "import_omniglot")
    names += ("download_omniglot", "import_cifar100", "download_cifar100")
    return SimpleNamespace(**{name: getattr(data, name) for name in names})


def build_experiment(
    config: TrainConfig,
    device: torch.device | str | None = None,
    *,
    datasets: Optional[Mapping[str, Any]] = None,
) -> Experiment:
    """Data samplers (train/val/test splits), model and learner for ``config`` (chapters 03-08, CLI).

    ``datasets``: image data sets already loaded (``{"train", "val", "test"}``; chapter 05 loads them once for a
    whole grid) instead of loading them here; a split left out gets no sampler. The model is initialised from
    ``config.seed`` (``seed_everything`` runs right before it is built).
    """
    config.validate()
    device = resolve_device(device if device is not None else config.device)
    if config.data == "sinusoid":
        tasks = _data_api().SinusoidTasks()
        samplers: dict[str, Any] = {
            s: SinusoidSampler(tasks, config.k_shot, config.n_query, device=device, seed=seed)
            for s, seed in _split_seeds(config).items()
        }
        seed_everything(config.seed)
        model: nn.Module = models.SinusoidMLP(hidden=config.hidden, layers=2)
        num_classes = None
    else:
        if datasets is None:
            datasets = load_datasets(config)
        elif "val" not in datasets and config.val_tasks > 0:
            raise ValueError(f"val_tasks={config.val_tasks} but no 'val' split was loaded; load it or set val_tasks=0")
        samplers = episode_samplers(config, datasets, device)
        seed_everything(config.seed)
        model = models.Conv4(
            in_channels=int(datasets["train"].images.shape[2]),
            n_out=config.n_way,
            hidden=config.hidden,
            image_size=config.image_size,
            norm="tasknorm" if config.norm_mode == "tasknorm" else "batch",
            attention=config.attention,
        )
        num_classes = int(datasets["train"].num_classes)
    model = model.to(device)
    learner = build_learner(config, model, device, num_classes)
    return Experiment(config=config, model=model, learner=learner, samplers=samplers, device=device)


def _split_seeds(config: TrainConfig) -> dict[str, int]:
    """Each split's sampler seed: training from the run's seed, validation offset from it, test fixed."""
    return {"train": config.seed, "val": config.seed + VAL_SEED_OFFSET, "test": TEST_SEED}


def load_datasets(config: TrainConfig) -> dict[str, Any]:
    """The image data sets of ``config``'s splits (Omniglot's split scheme may read one data set for two splits)."""
    api = _data_api()
    splits = list(_split_seeds(config))
    if config.data == "cifar100":
        return {s: api.load_cifar100(s, split_scheme=config.split_scheme) for s in splits}
    loaded: dict[str, Any] = {}
    names = _OMNIGLOT_SPLITS[config.split_scheme]
    for name in names:
        if name not in loaded:
            loaded[name] = api.load_omniglot(name, image_size=config.image_size, rotations=config.rotations)
    return {split: loaded[name] for split, name in zip(splits, names)}


def episode_samplers(config: TrainConfig, datasets: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """One seeded episode sampler per loaded split; training tasks take the training shape (``train_n_way``,
    ``train_k_shot``) and, when ``config.stratified``, superclass stratification. Validation and test tasks stay
    uniform: stratifying them would change the evaluation protocol."""
    samplers = {}
    for split, seed in _split_seeds(config).items():
        if split not in datasets:
            continue
        training = split == "train"
        samplers[split] = _data_api().EpisodeSampler(
            datasets[split].to(device),
            config.training_n_way if training else config.n_way,
            config.training_k_shot if training else config.k_shot,
            config.n_query,
            stratified=config.stratified and training,
            device=device,
            seed=seed,
        )
    return samplers


def build_learner(
    config: TrainConfig, model: nn.Module, device: torch.device, num_classes: Optional[int] = None
) -> nn.Module:
    """``config``'s learner around ``model`` (``num_classes``: the pretrained baseline's head over the training
    classes)."""
    extra: dict[str, Any] = {}
    if config.algo == "pretrain" and config.is_classification:
        extra["num_classes"] = num_classes
    if config.inner_batch is not None:
        extra["inner_batch"] = config.inner_batch
    for name in ("backprop_steps", "imaml_lambda", "cg_steps", "cg_damping"):
        if getattr(config, name) is not None:
            extra[name] = getattr(config, name)
    return make_learner(
        config.algo,
        model,
        inner_lr=config.inner_lr,
        inner_steps=config.inner_steps,
        first_order=config.first_order,
        vectorise=config.vectorise,
        compile=config.compile_enabled(device.type),
        norm_mode=config.norm_mode,
        batched=config.batched_enabled(device.type),
        **extra,
    ).to(device)


def test_sampler(
    exp: Experiment,
    *,
    n_way: Optional[int] = None,
    k_shot: Optional[int] = None,
    n_query: Optional[int] = None,
    seed: int = TEST_SEED,
) -> Any:
    """A sampler of the experiment's test split with another task shape or seed (``mlcourse eval --n-way``,
    the shipped runs of chapters 01/03/05: a ProtoNet trained for 5-way tasks tested on 20-way ones).

    Only learners without an ``n_way``-sized head can change ``n_way`` (protonet, matchingnet, and pretrain,
    which fits a fresh head); the error names the value and what is allowed.
    """
    config = exp.config
    n_way = config.n_way if n_way is None else n_way
    k_shot = config.k_shot if k_shot is None else k_shot
    n_query = config.n_query if n_query is None else n_query
    if not config.is_classification:
        if n_way != 1:
            raise ConfigError(f"n_way={n_way!r} is not used by regression; allowed 1")
        return SinusoidSampler(exp.samplers["test"].tasks, k_shot, n_query, device=exp.device, seed=seed)
    if n_way != config.n_way and config.algo not in (*CLASSIFICATION_ONLY, "pretrain"):
        raise ConfigError(
            f"n_way={n_way!r} differs from the run's n_way={config.n_way} but {config.algo}'s head has "
            f"{config.n_way} outputs; allowed {config.n_way} (other values for protonet, matchingnet, pretrain)"
        )
    base = exp.samplers["test"]
    return type(base)(base.dataset, n_way, k_shot, n_query, device=exp.device, seed=seed)


# --------------------------------------------------------------------------------------------------
# evaluation
