"""Omniglot: import (zips or folders, structure checks), processed cache, splits, rotations, errors,
a 5-way 1-shot task batch, and the real reference copy beside the repo when present."""

from __future__ import annotations

import json
import shutil
import time
import zipfile

import pytest
import torch
from conftest import SYNTHETIC_OMNIGLOT, write_synthetic_omniglot

from mlcourse.data import DataFormatError, EpisodeSampler, import_omniglot, load_omniglot, omniglot

N_BG = sum(SYNTHETIC_OMNIGLOT["images_background"].values())  # 10 characters
N_EV = sum(SYNTHETIC_OMNIGLOT["images_evaluation"].values())  # 6 characters


def leftovers(folder):
    """Temporary files that an interrupted write would leave behind."""
    return [p.name for p in folder.rglob("*") if p.name.startswith(".") or p.name.endswith(".part")]


def test_import_and_load_lake_splits(synthetic_omniglot, data_root):
    target = import_omniglot(synthetic_omniglot)
    assert target == data_root / "omniglot"
    assert sorted(p.name for p in target.iterdir()) == ["images_background.zip", "images_evaluation.zip"]
    bg = load_omniglot("background", image_size=28, rotations=False)
    ev = load_omniglot("evaluation", image_size=28, rotations=False)
    assert bg.images.shape == (N_BG, 20, 1, 28, 28) and bg.images.dtype == torch.uint8
    assert ev.images.shape == (N_EV, 20, 1, 28, 28)
    assert bg.class_names[:4] == ["Alpha/character01", "Alpha/character02", "Alpha/character03", "Beta/character01"]
    assert bg.superclass.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 3, 3]  # alphabets sorted: Alpha, Beta, Delta, Gamma
    assert bg.superclass_names[:4] == ["Alpha", "Beta", "Delta", "Gamma"]
    assert set(ev.superclass.tolist()) == {4, 5} and len(ev.superclass_names) == 6  # global alphabet indices
    # strokes bright on a dark background (inverted like MAML): most pixels are background
    assert bg.images.float().mean() < 128
    assert sorted(p.name for p in target.glob("processed_*")) == [
        "processed_28_background.pt",
        "processed_28_evaluation.pt",
    ]
    assert not leftovers(data_root)


def test_rotations_are_new_classes(synthetic_omniglot, data_root):
    import_omniglot(synthetic_omniglot)
    plain = load_omniglot("background", rotations=False, image_size=16)
    rot = load_omniglot("background", rotations=True, image_size=16)
    assert rot.num_classes == 4 * plain.num_classes and rot.images.shape[2:] == (1, 16, 16)
    assert rot.class_names[:4] == [f"Alpha/character01/rot{d:03d}" for d in (0, 90, 180, 270)]
    for k in range(4):
        assert torch.equal(rot.images[4 * 3 + k], torch.rot90(plain.images[3], k, dims=(-2, -1)))
    assert torch.equal(rot.superclass, plain.superclass.repeat_interleave(4))
    assert load_omniglot("background", image_size=16, max_classes=5).num_classes == 5


def test_processed_cache_is_reused_and_invalidated(synthetic_omniglot, data_root, monkeypatch):
    import_omniglot(synthetic_omniglot)
    first = load_omniglot("evaluation", rotations=False)
    calls = []
    decode = omniglot._decode
    monkeypatch.setattr(omniglot, "_decode", lambda *a: calls.append(1))  # a cached load decodes nothing
    second = load_omniglot("evaluation", rotations=False)
    assert not calls and torch.equal(first.images, second.images)
    monkeypatch.setattr(omniglot, "_decode", decode)
    # importing a different copy drops the processed caches
    other = write_synthetic_omniglot(data_root.parent / "other", seed=1)
    import_omniglot(other)
    assert not list((data_root / "omniglot").glob("processed_*.pt"))
    third = load_omniglot("evaluation", rotations=False)
    assert not torch.equal(first.images, third.images)


def test_import_extracted_folders_and_idempotence(synthetic_omniglot, data_root, tmp_path):
    folders = write_synthetic_omniglot(tmp_path / "extracted", extracted=True)
    import_omniglot(folders)
    a = load_omniglot("background", rotations=False)
    import_omniglot(folders)  # again: same content
    b = load_omniglot("background", rotations=False)
    assert torch.equal(a.images, b.images)
    with zipfile.ZipFile(data_root / "omniglot" / "images_background.zip") as z:
        assert z.namelist()[0].startswith("images_background/Alpha/character01/")


def test_import_rejects_wrong_truncated_and_corrupt_archives(synthetic_omniglot, data_root, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(synthetic_omniglot / "images_evaluation.zip", bad)
    # truncated
    raw = (synthetic_omniglot / "images_background.zip").read_bytes()
    (bad / "images_background.zip").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataFormatError, match="images_background.zip is not a valid zip archive"):
        import_omniglot(bad)
    assert not (data_root / "omniglot").exists() or not list((data_root / "omniglot").iterdir())
    # corrupt member (CRC)
    data = bytearray(raw)
    with zipfile.ZipFile(synthetic_omniglot / "images_background.zip") as z:
        info = z.infolist()[-1]
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + 10] ^= 0xFF
    (bad / "images_background.zip").write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match="images_background.zip (is corrupt|is not a valid)"):
        import_omniglot(bad)
    # wrong structure: a character with 19 drawings
    with (
        zipfile.ZipFile(synthetic_omniglot / "images_background.zip") as src,
        zipfile.ZipFile(bad / "images_background.zip", "w") as dst,
    ):
        for name in src.namelist()[1:]:
            dst.writestr(name, src.read(name))
    with pytest.raises(
        DataFormatError,
        match=r"expected 4 alphabets and 10 characters with 20 PNGs each.*"
        r"Alpha/character01 \(19 PNGs\)",
    ):
        import_omniglot(bad)
    # swapped archives
    shutil.copy(synthetic_omniglot / "images_evaluation.zip", bad / "images_background.zip")
    with pytest.raises(DataFormatError, match="found 0 alphabets"):
        import_omniglot(bad)
    (bad / "images_background.zip").unlink()
    with pytest.raises(DataFormatError, match="neither images_background.zip nor an extracted"):
        import_omniglot(bad)
    with pytest.raises(FileNotFoundError, match="mlcourse data import omniglot PATH"):
        import_omniglot(tmp_path / "missing")
    assert not list((data_root / "omniglot").glob("*")) if (data_root / "omniglot").exists() else True


def test_interrupted_import_leaves_nothing(synthetic_omniglot, data_root, monkeypatch):
    from mlcourse.data import download

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(download.shutil, "copyfileobj", interrupted)
    with pytest.raises(KeyboardInterrupt):
        import_omniglot(synthetic_omniglot)
    assert [p.name for p in (data_root / "omniglot").iterdir()] == []


def test_vinyals_splits_on_synthetic_data(synthetic_omniglot, data_root, monkeypatch):
    import_omniglot(synthetic_omniglot)
    names = omniglot.omniglot_character_names()
    assert len(names) == N_BG + N_EV
    split = {"train": names[:8], "val": names[8:10], "test": names[10:]}
    split["trainval"] = split["train"] + split["val"]
    monkeypatch.setattr(omniglot, "_vinyals_split", lambda: split)
    sizes = {s: load_omniglot(s, rotations=False).num_classes for s in ("train", "val", "test", "trainval")}
    assert sizes == {"train": 8, "val": 2, "test": 6, "trainval": 10}
    assert load_omniglot("test", rotations=True).num_classes == 24
    assert load_omniglot("val", rotations=False).class_names == names[8:10]


def test_omniglot_batch_5way_1shot(synthetic_omniglot, data_root):
    from test_data_sampler import check_batch

    import_omniglot(synthetic_omniglot)
    data = load_omniglot("background")  # 40 classes with rotations
    batch = EpisodeSampler(data, n_way=5, k_shot=1, n_query=15, seed=0).sample(4)
    assert batch.support_x.shape == (4, 5, 1, 28, 28) and batch.query_x.shape == (4, 75, 1, 28, 28)
    check_batch(batch, data, 5, 1, 15, 4)
    again = EpisodeSampler(data, n_way=5, k_shot=1, n_query=15, seed=0).sample(4)
    other = EpisodeSampler(data, n_way=5, k_shot=1, n_query=15, seed=1).sample(4)
    assert torch.equal(batch.support_x, again.support_x) and torch.equal(batch.query_x, again.query_x)
    assert not torch.equal(batch.support_x, other.support_x)
    strat = EpisodeSampler(data, n_way=4, k_shot=1, n_query=1, stratified=True).sample(50)
    assert (data.superclass[strat.classes].sort(dim=1).values.diff(dim=1) != 0).all()
    with pytest.raises(ValueError, match="n_way=5 but the split has 4 superclasses; allowed 1..4"):
        EpisodeSampler(data, n_way=5, k_shot=1, n_query=1, stratified=True)


def test_fast_mode_changes_nothing(synthetic_omniglot, data_root, monkeypatch):
    import_omniglot(synthetic_omniglot)
    full = load_omniglot("background")
    monkeypatch.setenv("MLCOURSE_FAST", "1")
    fast = load_omniglot("background")
    assert torch.equal(full.images, fast.images) and full.class_names == fast.class_names


def test_load_errors(synthetic_omniglot, data_root):
    import_omniglot(synthetic_omniglot)
    with pytest.raises(
        ValueError,
        match="unknown Omniglot split 'training'; allowed: 'train', 'val', 'test', "
        "'trainval', 'background', 'evaluation'",
    ):
        load_omniglot("training")
    for bad in (4, 106, 0, 28.0):
        with pytest.raises(ValueError, match=f"image_size={bad!r} is out of range; allowed integers 8..105"):
            load_omniglot("background", image_size=bad)
    with pytest.raises(ValueError, match="max_classes=41 is out of range; allowed 1..40"):
        load_omniglot("background", max_classes=41)


def test_missing_data_without_download(data_root):
    with pytest.raises(omniglot.DataError, match="mlcourse data import omniglot PATH"):
        load_omniglot("background", download=False)


# ------------------------------------------------------------------------------ committed split file
def test_vinyals_split_file():
    doc = json.loads(omniglot.VINYALS_SPLIT_FILE.read_text())
    assert (len(doc["train"]), len(doc["val"]), len(doc["test"])) == (1100, 100, 423)
    everything = doc["train"] + doc["val"] + doc["test"]
    assert len(set(everything)) == 1623
    assert "RandomState(0)" in doc["description"]


def test_real_omniglot_copy(shared_omniglot, data_root):
    """The reference copy beside the repo: structure check, split file, a full load and a task batch."""
    import_omniglot(shared_omniglot)
    names = omniglot.omniglot_character_names()
    assert len(names) == 1623
    assert omniglot.make_omniglot_vinyals_split(names) == {
        k: v for k, v in omniglot._vinyals_split().items() if k != "trainval"
    }  # the generator reproduces the file
    # decoding all 32,460 drawings takes 10-40 s on 2 cores; the evaluation archive alone is 40% of that
    t0 = time.perf_counter()
    ev = load_omniglot("evaluation", rotations=False)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    ev_rot = load_omniglot("evaluation")
    cached = time.perf_counter() - t0
    print(f"Omniglot evaluation: first load {first:.1f} s, cached load (rotations) {cached:.2f} s")
    assert ev.images.shape == (659, 20, 1, 28, 28) and ev_rot.images.shape == (4 * 659, 20, 1, 28, 28)
    assert ev.num_superclasses == 20 and len(ev.superclass_names) == 50 and ev.superclass.min() == 30
    assert ev.class_names[0] == "Angelic/character01" and ev.superclass_names[30] == "Angelic"
    assert cached < 2.0
    batch = EpisodeSampler(ev_rot, 5, 1, 15, seed=0).sample(8)
    assert batch.support_x.shape == (8, 5, 1, 28, 28) and batch.query_x.shape == (8, 75, 1, 28, 28)
    assert torch.equal(batch.support_y, torch.arange(5).expand(8, -1))
    assert 0.05 < batch.support_x.mean() < 0.3  # mostly dark background, bright strokes
