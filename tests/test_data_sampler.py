"""EpisodeSampler: shapes, labels, classes, no replacement, determinism, resume, stratification, errors."""

from __future__ import annotations

import pytest
import torch

from mlcourse.data import EpisodeSampler, ImageClassDataset, TaskBatch


def toy_dataset(
    num_classes: int = 20, per_class: int = 10, num_super: int = 4, channels: int = 1, size: int = 6
) -> ImageClassDataset:
    """Distinct random images; pixel (0, 0, 0) = class index, (0, 0, 1) = image index in the class."""
    g = torch.Generator().manual_seed(123)
    images = torch.randint(0, 256, (num_classes, per_class, channels, size, size), generator=g, dtype=torch.uint8)
    images[:, :, 0, 0, 0] = torch.arange(num_classes, dtype=torch.uint8)[:, None]
    images[:, :, 0, 0, 1] = torch.arange(per_class, dtype=torch.uint8)[None, :]
    return ImageClassDataset(
        images=images,
        class_names=[f"c{i}" for i in range(num_classes)],
        superclass=torch.arange(num_classes) % num_super,
        superclass_names=[f"s{i}" for i in range(num_super)],
        name="toy",
    )


def decode(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(class index, image index) of float images [..., C, H, W] made by toy_dataset."""
    raw = (x * 255).round().long()
    return raw[..., 0, 0, 0], raw[..., 0, 0, 1]


def check_batch(batch: TaskBatch, dataset: ImageClassDataset, n: int, k: int, q: int, t: int) -> None:
    """Exact shapes, float32 in [0, 1], class-major labels 0..N-1, labels <-> classes <-> images agree."""
    c, h, w = dataset.image_shape
    assert batch.support_x.shape == (t, n * k, c, h, w) and batch.query_x.shape == (t, n * q, c, h, w)
    assert batch.support_x.dtype == torch.float32 and 0 <= batch.support_x.min() and batch.support_x.max() <= 1
    assert batch.support_y.dtype == torch.int64 and batch.classes.shape == (t, n)
    assert torch.equal(batch.support_y, torch.arange(n).repeat_interleave(k).expand(t, -1))
    assert torch.equal(batch.query_y, torch.arange(n).repeat_interleave(q).expand(t, -1))
    for task in range(t):
        assert len(set(batch.classes[task].tolist())) == n  # classes without replacement
        for x, y in ((batch.support_x[task], batch.support_y[task]), (batch.query_x[task], batch.query_y[task])):
            want = dataset.images[batch.classes[task, y]].float() / 255  # [M, per_class, C, H, W]
            assert (want == x[:, None]).flatten(2).all(-1).any(-1).all()  # each image belongs to its labelled class


def test_toy_batch_shapes_labels_and_no_replacement():
    data = toy_dataset()
    sampler = EpisodeSampler(data, n_way=5, k_shot=3, n_query=4, seed=0)
    batch = sampler.sample(16)
    check_batch(batch, data, 5, 3, 4, 16)
    cls_s, img_s = decode(batch.support_x)
    cls_q, img_q = decode(batch.query_x)
    assert torch.equal(cls_s, torch.gather(batch.classes, 1, batch.support_y))
    assert torch.equal(cls_q, torch.gather(batch.classes, 1, batch.query_y))
    # images within a class are distinct across support and query
    pick = torch.cat([img_s.view(16, 5, 3), img_q.view(16, 5, 4)], dim=2)
    assert (pick.sort(dim=2).values.diff(dim=2) != 0).all()


def test_determinism_and_resume():
    data = toy_dataset()
    a = EpisodeSampler(data, 5, 1, 2, seed=7).sample(8)
    b = EpisodeSampler(data, 5, 1, 2, seed=7).sample(8)
    c = EpisodeSampler(data, 5, 1, 2, seed=8).sample(8)
    for f in ("support_x", "query_x", "classes"):
        assert torch.equal(getattr(a, f), getattr(b, f))
    assert not torch.equal(a.classes, c.classes)
    sampler = EpisodeSampler(data, 5, 1, 2, seed=3)
    sampler.sample(4)
    state = sampler.state_dict()
    expected = sampler.sample(4)
    fresh = EpisodeSampler(data, 5, 1, 2, seed=99)
    fresh.load_state_dict(state)
    resumed = fresh.sample(4)
    assert torch.equal(expected.support_x, resumed.support_x) and torch.equal(expected.classes, resumed.classes)
    with pytest.raises(ValueError, match="n_way=5 but this sampler has n_way=4"):
        EpisodeSampler(data, 4, 1, 2).load_state_dict(state)


def test_class_frequencies_are_uniform():
    data = toy_dataset(num_classes=10, per_class=4)
    batch = EpisodeSampler(data, 5, 1, 1, seed=0).sample(4000)
    counts = torch.bincount(batch.classes.flatten(), minlength=10).float()
    assert (counts / counts.mean() - 1).abs().max() < 0.05  # each class in 2000 tasks on average


def test_stratified_sampling_stratifies():
    data = toy_dataset(num_classes=20, num_super=4)  # superclass = class % 4, 5 classes each
    plain = EpisodeSampler(data, 4, 1, 1, seed=0).sample(500)
    strat = EpisodeSampler(data, 4, 1, 1, stratified=True, seed=0).sample(500)
    supers = lambda b: data.superclass[b.classes]  # noqa: E731
    assert (supers(strat).sort(dim=1).values == torch.arange(4)).all()  # N distinct superclasses per task
    assert (supers(plain).sort(dim=1).values.diff(dim=1) == 0).any()  # unstratified tasks repeat some
    counts = torch.bincount(strat.classes.flatten(), minlength=20).float()  # classes within a superclass uniform
    assert counts.min() > 0.6 * counts.mean()
    # uneven superclasses: 3 superclasses with 1, 2 and 7 classes
    uneven = ImageClassDataset(
        images=data.images[:10],
        class_names=data.class_names[:10],
        superclass=torch.tensor([0, 1, 1, 2, 2, 2, 2, 2, 2, 2]),
        name="uneven",
    )
    batch = EpisodeSampler(uneven, 3, 1, 1, stratified=True, seed=1).sample(300)
    assert (uneven.superclass[batch.classes].sort(dim=1).values == torch.arange(3)).all()
    assert (batch.classes == 0).any(dim=1).all()  # the lone class of superclass 0 is in every task
    check_batch(batch, uneven, 3, 1, 1, 300)


def test_device_argument_and_dataset_to():
    data = toy_dataset().to("cpu")
    batch = EpisodeSampler(data, 3, 1, 1, device="cpu").sample(2)
    assert batch.support_x.device.type == "cpu" and data.images.dtype == torch.uint8


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_way=30, k_shot=1, n_query=1), "n_way=30 but the split has 20 classes; allowed 1..20"),
        (dict(n_way=0, k_shot=1, n_query=1), "n_way=0 is out of range; allowed 1..20"),
        (dict(n_way=-2, k_shot=1, n_query=1), "n_way=-2 is out of range; allowed 1..20"),
        (dict(n_way=5, k_shot=0, n_query=1), "k_shot=0 is out of range; allowed 1..9"),
        (dict(n_way=5, k_shot=1, n_query=0), "n_query=0 is out of range; allowed 1..9"),
        (dict(n_way=5, k_shot=2.5, n_query=1), "k_shot=2.5 is not allowed; k_shot must be an integer"),
        (
            dict(n_way=5, k_shot=6, n_query=5),
            r"k_shot \+ n_query = 6 \+ 5 = 11 but each class has 10 images; "
            r"allowed k_shot \+ n_query <= 10",
        ),
        (dict(n_way=5, k_shot=1, n_query=1, stratified=True), "n_way=5 but the split has 4 superclasses; allowed 1..4"),
        (dict(n_way=5, k_shot=1, n_query=1, seed=-1), "seed=-1 is not allowed"),
    ],
)
def test_sampler_errors_name_value_and_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EpisodeSampler(toy_dataset(), **kwargs)


def test_num_tasks_and_missing_superclass_errors():
    sampler = EpisodeSampler(toy_dataset(), 5, 1, 1)
    for bad in (0, -1):
        with pytest.raises(ValueError, match=f"num_tasks={bad} is out of range; allowed >= 1"):
            sampler.sample(bad)
    data = toy_dataset()
    data.superclass = None
    with pytest.raises(ValueError, match="stratified=True needs superclasses"):
        EpisodeSampler(data, 2, 1, 1, stratified=True)


def test_dataset_validation_and_subset():
    with pytest.raises(ValueError, match="uint8"):
        ImageClassDataset(images=torch.zeros(2, 3, 1, 4, 4), class_names=["a", "b"])
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        ImageClassDataset(images=torch.zeros(3, 3, 1, 4, 4, dtype=torch.uint8), class_names=["a", "b"])
    data = toy_dataset()
    sub = data.subset([3, 1])
    assert sub.class_names == ["c3", "c1"] and torch.equal(sub.images[0], data.images[3])
    assert "classes=2" in repr(sub)
