"""Shared test fixtures. Data fixtures: a private data dir, small synthetic Omniglot/CIFAR-100 copies in the
real file formats, and the reference data beside the repo (``../shared/data``) when present."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

# Tiny tensors: one thread avoids oversubscribing the 2-core CI machine (20x faster for small convs).
torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Synthetic Omniglot: {part: {alphabet: number of characters}}; 20 PNGs per character as in the real set.
SYNTHETIC_OMNIGLOT = {
    "images_background": {"Alpha": 3, "Beta": 3, "Gamma": 2, "Delta": 2},
    "images_evaluation": {"Epsilon": 3, "Zeta": 3},
}


def synthetic_structure() -> dict[str, tuple[int, int]]:
    return {part: (len(alphabets), sum(alphabets.values())) for part, alphabets in SYNTHETIC_OMNIGLOT.items()}


def _png(rng: np.random.Generator) -> bytes:
    from PIL import Image

    pixels = rng.random((105, 105)) > 0.2  # white background (True), random black strokes
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert("1").save(buffer, format="PNG")
    return buffer.getvalue()


def write_synthetic_omniglot(folder: Path, extracted: bool = False, seed: int = 0) -> Path:
    """Omniglot-format zips (or extracted folders) with SYNTHETIC_OMNIGLOT's structure, in ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for part, alphabets in SYNTHETIC_OMNIGLOT.items():
        members = {}
        serial = 0
        for alphabet, n_chars in alphabets.items():
            for c in range(1, n_chars + 1):
                serial += 1
                for drawer in range(1, 21):
                    members[f"{part}/{alphabet}/character{c:02d}/{serial:04d}_{drawer:02d}.png"] = _png(rng)
        if extracted:
            for name, data in members.items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)
        else:
            with zipfile.ZipFile(folder / f"{part}.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for name, data in members.items():
                    archive.writestr(name, data)
    return folder


@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    """A private ``MLCOURSE_DATA_DIR`` (tests never write into the repo's data/)."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("MLCOURSE_DATA_DIR", str(root))
    return root


@pytest.fixture(scope="session")
def omniglot_zips(tmp_path_factory) -> Path:
    """A folder with small synthetic images_background.zip / images_evaluation.zip (built once)."""
    return write_synthetic_omniglot(tmp_path_factory.mktemp("omniglot_src"))


@pytest.fixture
def synthetic_omniglot(omniglot_zips, data_root, monkeypatch) -> Path:
    """The synthetic source folder, with the expected structure set to the synthetic one."""
    from mlcourse.data import omniglot

    monkeypatch.setattr(omniglot, "OMNIGLOT_STRUCTURE", synthetic_structure())
    return omniglot_zips


def write_cifar100(
    folder: Path,
    train_per_class: int = 5,
    test_per_class: int = 1,
    seed: int = 0,
    str_keys: bool = False,
    tarball: bool = True,
) -> Path:
    """CIFAR-100 python-format files (100 classes; real key names and dtypes) as a .tar.gz or a folder.

    Image ``j`` of fine class ``f`` (train images first) has byte 0 = ``f`` and byte 1 = ``j``.
    """
    from mlcourse.data.cifar100 import CIFAR100_COARSE_NAMES, CIFAR100_COARSE_TO_FINE, CIFAR100_FINE_NAMES

    rng = np.random.default_rng(seed)
    coarse_of = {f: CIFAR100_COARSE_NAMES.index(c) for c, fs in CIFAR100_COARSE_TO_FINE.items() for f in fs}
    key = (lambda k: k) if str_keys else (lambda k: k.encode())
    files = {}
    offset = 0
    for part, per_class in (("train", train_per_class), ("test", test_per_class)):
        fine = np.repeat(np.arange(100), per_class)
        within = np.tile(np.arange(per_class), 100) + offset
        perm = rng.permutation(fine.size)  # the real files are not sorted by class
        fine, within = fine[perm], within[perm]
        data = rng.integers(0, 256, size=(fine.size, 3072), dtype=np.uint8)
        data[:, 0], data[:, 1] = fine, within
        coarse = [coarse_of[CIFAR100_FINE_NAMES[f]] for f in fine]
        entry = {
            key("filenames"): [f"img_{i}.png".encode() for i in range(fine.size)],
            key("batch_label"): f"{part} batch".encode(),
            key("fine_labels"): fine.tolist(),
            key("coarse_labels"): coarse,
            key("data"): data,
        }
        files[part] = pickle.dumps(entry, protocol=2)
        offset += per_class
    files["meta"] = pickle.dumps(
        {
            key("fine_label_names"): [n.encode() for n in CIFAR100_FINE_NAMES],
            key("coarse_label_names"): [n.encode() for n in CIFAR100_COARSE_NAMES],
        },
        protocol=2,
    )
    folder.mkdir(parents=True, exist_ok=True)
    if not tarball:
        inner = folder / "cifar-100-python"
        inner.mkdir(exist_ok=True)
        for name, data in files.items():
            (inner / name).write_bytes(data)
        return inner
    path = folder / "cifar-100-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="session")
def cifar100_tarball(tmp_path_factory) -> Path:
    """A small cifar-100-python.tar.gz (100 classes x 6 images) in the real format (built once)."""
    return write_cifar100(tmp_path_factory.mktemp("cifar_src"))


@pytest.fixture
def shared_omniglot() -> Path:
    """``../shared/data/omniglot`` beside the repo (CI has it); skipped where it is missing."""
    path = SHARED_DATA / "omniglot"
    if not (path / "images_background.zip").is_file():
        _missing_reference(f"no reference Omniglot copy at {path}")
    return path


@pytest.fixture
def shared_cifar_splits() -> Path:
    path = SHARED_DATA / "cifar100_splits"
    if not path.is_dir():
        _missing_reference(f"no reference CIFAR-100 split files at {path}")
    return path


def _missing_reference(message: str) -> None:
    """CI always has ``../shared/data`` beside the clone, so there a missing copy is a failure; on a
    user's machine (no reference copy) the comparison is skipped with the reason."""
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must have ../shared/data beside the clone)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is ~5x faster on a shared 2-core machine. Restored after the module.
    Modules of tiny float64 checks use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
