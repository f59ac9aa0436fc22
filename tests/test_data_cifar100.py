"""CIFAR-100: import/download of a small file set in the real format, pooling, split files (against the
published CIFAR-FS/FC100 splits beside the repo), a task batch, and errors."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import write_cifar100

from mlcourse.data import (
    ChecksumError,
    DataFormatError,
    EpisodeSampler,
    cifar100,
    download_cifar100,
    import_cifar100,
    load_cifar100,
)
from mlcourse.data.download import file_checksum


def test_import_tarball_and_pool(cifar100_tarball, data_root):
    target = import_cifar100(cifar100_tarball, md5=file_checksum(cifar100_tarball))
    assert sorted(p.name for p in (target / "cifar-100-python").iterdir()) == ["meta", "test", "train"]
    data = load_cifar100("trainval", split_scheme="cifar-fs")
    assert data.images.shape == (80, 6, 3, 32, 32) and data.images.dtype == torch.uint8
    fine = [cifar100.CIFAR100_FINE_NAMES.index(n) for n in data.class_names]
    assert fine == sorted(fine)
    flat = data.images.reshape(80, 6, -1)
    assert torch.equal(flat[:, :, 0], torch.tensor(fine, dtype=torch.uint8)[:, None].expand(80, 6))  # right class
    # all 6 images of each class, train images first (in file order), then the test image
    assert torch.equal(flat[:, :5, 1].sort(dim=1).values, torch.arange(5, dtype=torch.uint8).expand(80, 5))
    assert (flat[:, 5, 1] == 5).all()
    coarse = [cifar100.CIFAR100_COARSE_NAMES[i] for i in data.superclass.tolist()]
    assert all(n in cifar100.CIFAR100_COARSE_TO_FINE[c] for n, c in zip(data.class_names, coarse))
    assert data.superclass_names == list(cifar100.CIFAR100_COARSE_NAMES)


@pytest.mark.parametrize(
    "scheme, sizes",
    [
        ("article", {"train": 64, "val": 16, "test": 20, "trainval": 80}),
        ("cifar-fs", {"train": 64, "val": 16, "test": 20, "trainval": 80}),
        ("fc100", {"train": 60, "val": 20, "test": 20, "trainval": 80}),
    ],
)
def test_split_sizes_and_disjointness(cifar100_tarball, data_root, scheme, sizes):
    import_cifar100(cifar100_tarball)
    loaded = {s: load_cifar100(s, split_scheme=scheme) for s in sizes}
    assert {s: d.num_classes for s, d in loaded.items()} == sizes
    names = [set(loaded[s].class_names) for s in ("train", "val", "test")]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert len(set.union(*names)) == 100
    assert set(loaded["trainval"].class_names) == names[0] | names[1]
    if scheme == "fc100":  # superclass split: no coarse class is shared between splits
        supers = [set(loaded[s].superclass.tolist()) for s in ("train", "val", "test")]
        assert [len(s) for s in supers] == [12, 4, 4] and not (supers[0] & supers[1] or supers[0] & supers[2])


def test_committed_split_files_match_generator():
    for scheme in cifar100.CIFAR100_SCHEMES:
        doc = json.loads(cifar100.split_file(scheme).read_text())
        assert {k: doc[k] for k in ("train", "val", "test")} == cifar100.make_cifar100_splits(scheme)
        assert doc["description"] and doc["source"]
    article = json.loads(cifar100.split_file("article").read_text())
    assert "RandomState(0)" in article["description"] and "no" in article["description"]  # carved validation


def test_split_files_equal_published_splits(shared_cifar_splits):
    for split in ("train", "val", "test"):
        ref_fs = json.loads((shared_cifar_splits / "cifar-fs" / f"{split}.json").read_text())
        assert sorted(cifar100.cifar100_split_classes("cifar-fs", split)) == sorted(c for _, c in ref_fs)
        ours_fs = {
            (cifar100.CIFAR100_COARSE_NAMES[[n in v for v in cifar100.CIFAR100_COARSE_TO_FINE.values()].index(True)], n)
            for n in cifar100.cifar100_split_classes("cifar-fs", split)
        }
        assert ours_fs == {tuple(pair) for pair in ref_fs}  # and the same fine -> coarse mapping
        ref_fc = json.loads((shared_cifar_splits / "fc100" / f"{split}.json").read_text())
        doc = json.loads(cifar100.split_file("fc100").read_text())
        assert sorted(doc["superclasses"][split]) == sorted(ref_fc)
        assert sorted(doc[split]) == sorted(f for c in ref_fc for f in cifar100.CIFAR100_COARSE_TO_FINE[c])


def test_cifar_task_batch(cifar100_tarball, data_root):
    from test_data_sampler import check_batch

    import_cifar100(cifar100_tarball)
    data = load_cifar100("train", split_scheme="article")
    batch = EpisodeSampler(data, n_way=5, k_shot=1, n_query=5, seed=0).sample(6)
    assert batch.support_x.shape == (6, 5, 3, 32, 32) and batch.query_x.shape == (6, 25, 3, 32, 32)
    check_batch(batch, data, 5, 1, 5, 6)
    same = EpisodeSampler(data, n_way=5, k_shot=1, n_query=5, seed=0).sample(6)
    other = EpisodeSampler(data, n_way=5, k_shot=1, n_query=5, seed=1).sample(6)
    assert torch.equal(batch.query_x, same.query_x) and not torch.equal(batch.query_x, other.query_x)
    strat = EpisodeSampler(data, n_way=10, k_shot=1, n_query=1, stratified=True, seed=0).sample(20)
    assert (data.superclass[strat.classes].sort(dim=1).values.diff(dim=1) != 0).all()
    with pytest.raises(ValueError, match="n_way=30 but the split has 20 classes; allowed 1..20"):
        EpisodeSampler(load_cifar100("test"), n_way=30, k_shot=1, n_query=1)
    with pytest.raises(ValueError, match=r"k_shot \+ n_query = 3 \+ 4 = 7 but each class has 6 images"):
        EpisodeSampler(data, n_way=5, k_shot=3, n_query=4)


def test_import_folder_and_str_keys(tmp_path, data_root):
    folder = write_cifar100(tmp_path / "src", str_keys=True, tarball=False)
    import_cifar100(folder.parent)  # the folder holding cifar-100-python/
    assert load_cifar100("test", split_scheme="fc100").num_classes == 20
    import_cifar100(folder)  # cifar-100-python/ itself
    assert load_cifar100("val", split_scheme="fc100", max_classes=3).num_classes == 3


def test_download_checksum_both_ways(cifar100_tarball, data_root):
    with pytest.raises(
        ChecksumError,
        match=r"checksum mismatch for cifar-100-python.tar.gz .*expected md5 0{32}, "
        r"got [0-9a-f]{32}; the file was removed",
    ):
        download_cifar100(url=cifar100_tarball.as_uri(), md5="0" * 32, progress=False)
    assert not (data_root / "cifar100").exists() or not any((data_root / "cifar100").rglob("*"))
    download_cifar100(url=cifar100_tarball.as_uri(), md5=file_checksum(cifar100_tarball), progress=False)
    assert sorted(p.name for p in (data_root / "cifar100").iterdir()) == ["cifar-100-python"]
    assert load_cifar100("test", split_scheme="cifar-fs").num_classes == 20
    with pytest.raises(ChecksumError, match="expected md5 f{32}"):
        import_cifar100(cifar100_tarball, md5="f" * 32)
    assert cifar100_tarball.exists()  # import never deletes the user's source file


def test_import_errors(cifar100_tarball, data_root, tmp_path):
    raw = cifar100_tarball.read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataFormatError, match="truncated.tar.gz is not a readable tar archive"):
        import_cifar100(truncated)
    assert not (data_root / "cifar100").exists() or not any((data_root / "cifar100").rglob("*"))
    partial = tmp_path / "partial"
    (partial / "cifar-100-python").mkdir(parents=True)
    (partial / "cifar-100-python" / "meta").write_bytes(b"x")
    with pytest.raises(DataFormatError, match="lacks train, test"):
        import_cifar100(partial)
    uneven = write_cifar100(tmp_path / "uneven", train_per_class=5, test_per_class=1, tarball=False)
    (uneven / "test").write_bytes((uneven / "train").read_bytes())  # 10 per class -> fine; now break meta
    (uneven / "meta").write_bytes(b"not a pickle")
    with pytest.raises(DataFormatError, match="'meta' is not a readable pickle"):
        import_cifar100(uneven)
    with pytest.raises(FileNotFoundError, match="mlcourse data import cifar100 PATH"):
        import_cifar100(tmp_path / "nothing")


def test_load_errors(cifar100_tarball, data_root):
    import_cifar100(cifar100_tarball)
    with pytest.raises(
        ValueError, match="unknown CIFAR-100 split 'validation'; allowed: 'train', 'val', 'test', 'trainval'"
    ):
        load_cifar100("validation")
    with pytest.raises(
        ValueError, match="unknown CIFAR-100 split scheme 'fs'; allowed: 'article', 'cifar-fs', 'fc100'"
    ):
        load_cifar100("train", split_scheme="fs")
    with pytest.raises(ValueError, match="max_classes=0 is out of range; allowed 1..20"):
        load_cifar100("test", max_classes=0)


def test_missing_data_without_download(data_root):
    with pytest.raises(cifar100.DataError, match="mlcourse data import cifar100 PATH"):
        load_cifar100("train", download=False)
