"""Every image learner learns: on a synthetic few-shot problem (each class a fixed random stroke pattern, images
noisy copies of it), a few dozen CPU meta-iterations bring the query loss on tasks of *unseen* classes well below
chance. Catches a learner whose meta-gradient is exact (tests/test_algorithms.py) but wired to nothing."""

from __future__ import annotations

import math

import pytest
import torch

from mlcourse.algorithms import make_learner
from mlcourse.data import EpisodeSampler
from mlcourse.data.images import ImageClassDataset
from mlcourse.models import Conv4

N_WAY, K_SHOT, N_QUERY, SIZE = 5, 1, 4, 16
CHANCE = math.log(N_WAY)  # the cross-entropy of a uniform guess


def _patterns(num_classes: int, seed: int) -> ImageClassDataset:
    g = torch.Generator().manual_seed(seed)
    prototypes = (torch.rand(num_classes, 1, 1, SIZE, SIZE, generator=g) < 0.25).float()
    noise = torch.rand(num_classes, 8, 1, SIZE, SIZE, generator=g)
    images = ((prototypes * 0.8 + noise * 0.35).clamp(0, 1) * 255).to(torch.uint8)
    return ImageClassDataset(images, [f"class{i}" for i in range(num_classes)], name=f"patterns/{seed}")


SETTINGS = {  # algorithm: (inner_lr, inner_steps, outer_lr)
    "maml": (0.4, 1, 3e-3),
    "fomaml": (0.4, 1, 3e-3),
    "metasgd": (0.4, 1, 3e-3),
    "reptile": (0.1, 3, 3e-3),
    "anil": (0.4, 1, 3e-3),
    "protonet": (0.4, 1, 3e-3),
    "matchingnet": (0.4, 1, 3e-3),
    "protomaml": (0.1, 1, 3e-3),
}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_query_loss_falls_well_below_chance_on_unseen_classes(name: str) -> None:
    inner_lr, steps, outer_lr = SETTINGS[name]
    torch.manual_seed(0)
    learner = make_learner(name, Conv4(hidden=16, image_size=SIZE, n_out=N_WAY), inner_lr=inner_lr, inner_steps=steps)
    train = EpisodeSampler(_patterns(60, seed=1), N_WAY, K_SHOT, N_QUERY, seed=2)
    test = EpisodeSampler(_patterns(20, seed=3), N_WAY, K_SHOT, N_QUERY, seed=4)
    test_batch = test.sample(20)
    before = float(learner.evaluate(test_batch, inner_steps=steps + 2)["query_loss"].mean())
    optimizer = torch.optim.Adam(learner.parameters(), lr=outer_lr)
    for _ in range(40):
        optimizer.zero_grad()
        learner(train.sample(4)).loss.backward()
        optimizer.step()
    after = learner.evaluate(test_batch, inner_steps=steps + 2)
    loss, accuracy = float(after["query_loss"].mean()), float(after["query_accuracy"].mean())
    assert loss < 0.6 * CHANCE and loss < 0.6 * before, (name, before, loss)  # learned, not just adapted
    assert accuracy > 0.6, (name, accuracy)
