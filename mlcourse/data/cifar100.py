"""CIFAR-100 for few-shot learning: download, import, class splits.

The cache holds torchvision's layout, ``<data_dir()>/cifar100/cifar-100-python/{train,test,meta}`` (so
``torchvision.datasets.CIFAR100(root=data_dir()/"cifar100")`` reads it too). ``load_cifar100`` pools the
train and test images of each fine class (600 per class in the real data set) into one uint8 tensor
``[classes, 600, 3, 32, 32]`` and keeps the classes of one split; ``superclass`` is the coarse label.

Class splits (``CIFAR100_SCHEMES``), committed as ``data/splits/cifar100_<scheme>.json`` by
``write_cifar100_split_files`` (fine class names, sorted by CIFAR-100 label index):

* ``article``: the seed article's protocol, 80 meta-training / 20 meta-test classes. The article lists
  neither the classes nor a validation split, so ours is ``numpy.random.RandomState(0).permutation(100)``
  over the fine labels: the first 80 are ``trainval`` (the article's training classes), the last 20
  ``test``; we carve ``val`` = the last 16 of those 80 (in permuted order) and ``train`` = the other 64.
  Train on ``trainval`` to match the article; use ``train``/``val`` for model selection.
* ``cifar-fs``: CIFAR-FS (Bertinetto et al., ICLR 2019), 64/16/20 classes.
* ``fc100``: FC100 (Oreshkin et al., NeurIPS 2018), 12/4/4 superclasses = 60/20/20 classes.

Every scheme offers ``train``, ``val``, ``test`` and ``trainval`` (= train + val).
"""
from __future__ import annotations

import json
import os
import pickle
import tarfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from .. import config
from .download import DataError, DataFormatError, atomic_dir, atomic_path, download_file, verify_checksum
from .images import ImageClassDataset, positive_int

CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
CIFAR100_FOLDER = "cifar-100-python"
CIFAR100_FILES = ("train", "test", "meta")
CIFAR100_SCHEMES = ("article", "cifar-fs", "fc100")
CIFAR100_SPLITS = ("train", "val", "test", "trainval")
SPLITS_DIR = config.REPO_ROOT / "data" / "splits"

IMPORT_HINT = (
    "To use a local copy instead, run `mlcourse data import cifar100 PATH` (PATH: cifar-100-python.tar.gz "
    "or the extracted cifar-100-python/ folder), or in Python `mlcourse.data.import_cifar100(PATH)`."
)

# CIFAR-100's coarse classes and their fine classes (the data set's own grouping; label indices follow
# the alphabetical order of the names, as in the data set's meta file).
CIFAR100_COARSE_TO_FINE: dict[str, tuple[str, ...]] = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}
CIFAR100_COARSE_NAMES: tuple[str, ...] = tuple(sorted(CIFAR100_COARSE_TO_FINE))
CIFAR100_FINE_NAMES: tuple[str, ...] = tuple(sorted(f for fs in CIFAR100_COARSE_TO_FINE.values() for f in fs))

# CIFAR-FS (Bertinetto, Henriques, Torr & Vedaldi, "Meta-learning with differentiable closed-form
# solvers", ICLR 2019): held-out classes; the 64 training classes are the rest.
CIFAR_FS_VAL = ("beaver", "beetle", "butterfly", "camel", "cattle", "crab", "crocodile", "flatfish", "lamp",
                "maple_tree", "motorcycle", "otter", "sea", "shark", "television", "tractor")
CIFAR_FS_TEST = ("baby", "bed", "bicycle", "chimpanzee", "fox", "leopard", "man", "pickup_truck", "plain",
                 "poppy", "rocket", "rose", "snail", "sweet_pepper", "table", "telephone", "wardrobe", "whale",
                 "woman", "worm")
# FC100 (Oreshkin, Rodriguez & Lacoste, "TADAM", NeurIPS 2018): superclass split 12/4/4.
FC100_VAL = ("large_carnivores", "large_omnivores_and_herbivores", "non-insect_invertebrates", "small_mammals")
FC100_TEST = ("aquatic_mammals", "insects", "medium_mammals", "people")


def cifar100_dir(root: str | os.PathLike | None = None) -> Path:
    """``<root or data_dir()>/cifar100`` (torchvision root; the data lives in ``cifar-100-python/``)."""
    return Path(root if root is not None else config.data_dir()).expanduser() / "cifar100"


# --------------------------------------------------------------------------------------- split files
def make_cifar100_splits(scheme: str) -> dict[str, list[str]]:
    """Fine class names per split (``train``/``val``/``test``), sorted by label index (generator)."""
    fine = list(CIFAR100_FINE_NAMES)
    order = {n: i for i, n in enumerate(fine)}
    if scheme == "article":
        perm = np.random.RandomState(0).permutation(len(fine))
        trainval, test = perm[:80], perm[80:]
        train, val = trainval[:64], trainval[64:]
        out = {"train": [fine[i] for i in train], "val": [fine[i] for i in val], "test": [fine[i] for i in test]}
    elif scheme == "cifar-fs":
        held = set(CIFAR_FS_VAL) | set(CIFAR_FS_TEST)
        out = {"train": [f for f in fine if f not in held], "val": list(CIFAR_FS_VAL), "test": list(CIFAR_FS_TEST)}
    elif scheme == "fc100":
        held = set(FC100_VAL) | set(FC100_TEST)
        supers = {"train": [c for c in CIFAR100_COARSE_NAMES if c not in held], "val": list(FC100_VAL),
                  "test": list(FC100_TEST)}
        out = {k: [f for c in v for f in CIFAR100_COARSE_TO_FINE[c]] for k, v in supers.items()}
    else:
        raise ValueError(f"unknown CIFAR-100 split scheme {scheme!r}; allowed: {', '.join(map(repr, CIFAR100_SCHEMES))}")
    return {k: sorted(v, key=order.__getitem__) for k, v in out.items()}


_SPLIT_DOCS = {
    "article": ("The seed article's CIFAR-100 protocol: 80 meta-training and 20 meta-test fine classes. The article "
                "lists neither the classes nor a validation split; generated here by "
                "numpy.random.RandomState(0).permutation(100) over the fine labels: the first 80 are the training "
                "classes (train + val = 'trainval'), the last 20 'test'; 'val' = the last 16 of the 80 in permuted "
                "order (our own carve-out), 'train' = the other 64.",
                "mlcourse (seeded permutation; see mlcourse.data.cifar100.make_cifar100_splits)"),
    "cifar-fs": ("CIFAR-FS class split: 64 train / 16 val / 20 test fine classes.",
                 "Bertinetto, Henriques, Torr & Vedaldi, 'Meta-learning with differentiable closed-form solvers', "
                 "ICLR 2019"),
    "fc100": ("FC100 superclass split: 12 / 4 / 4 coarse classes (60 / 20 / 20 fine classes).",
              "Oreshkin, Rodriguez & Lacoste, 'TADAM: Task dependent adaptive metric for improved few-shot "
              "learning', NeurIPS 2018"),
}


def split_file(scheme: str) -> Path:
    return SPLITS_DIR / f"cifar100_{scheme}.json"


def write_cifar100_split_files(out_dir: str | os.PathLike = SPLITS_DIR) -> list[Path]:
    """Write ``cifar100_{article,cifar-fs,fc100}.json`` (run by the maintainers; the files are committed).

    Format: ``{"description", "source", "generator", "train": [fine names], "val": [...], "test": [...]}``
    (FC100 also lists ``"superclasses"`` per split).
    """
    paths = []
    for scheme in CIFAR100_SCHEMES:
        split = make_cifar100_splits(scheme)
        description, source = _SPLIT_DOCS[scheme]
        doc: dict[str, Any] = {"description": description, "source": source,
                               "generator": "mlcourse.data.cifar100.write_cifar100_split_files", **split}
        if scheme == "fc100":
            doc["superclasses"] = {k: sorted({c for c, fs in CIFAR100_COARSE_TO_FINE.items() if set(fs) & set(v)})
                                   for k, v in split.items()}
        path = Path(out_dir) / f"cifar100_{scheme}.json"
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(doc, indent=1) + "\n")
        paths.append(path)
    return paths


def cifar100_split_classes(scheme: str, split: str) -> list[str]:
    """Fine class names of ``split`` in ``scheme``, read from the committed split file."""
    if scheme not in CIFAR100_SCHEMES:
        raise ValueError(f"unknown CIFAR-100 split scheme {scheme!r}; allowed: {', '.join(map(repr, CIFAR100_SCHEMES))}")
    if split not in CIFAR100_SPLITS:
        raise ValueError(f"unknown CIFAR-100 split {split!r}; allowed: {', '.join(map(repr, CIFAR100_SPLITS))}")
    doc = json.loads(split_file(scheme).read_text())
    if split == "trainval":
        return sorted(doc["train"] + doc["val"], key=CIFAR100_FINE_NAMES.index)
    return list(doc[split])


# ------------------------------------------------------------------------------------- file contents
def _unpickle(data: bytes, name: str) -> dict[str, Any]:
    try:
        obj = pickle.loads(data, encoding="bytes")
    except Exception as exc:
        raise DataFormatError(f"CIFAR-100 file {name!r} is not a readable pickle (truncated or corrupt?): {exc}. "
                              f"{IMPORT_HINT}") from exc
    if not isinstance(obj, dict):
        raise DataFormatError(f"CIFAR-100 file {name!r} does not hold a dict. {IMPORT_HINT}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _names(values: Any) -> list[str]:
    return [v.decode("latin1") if isinstance(v, bytes) else str(v) for v in values]


def _parse(files: dict[str, bytes], where: str) -> dict[str, Any]:
    """Check the three pickles and pool train + test per fine class -> images [100, P, 3, 32, 32] uint8."""
    meta = _unpickle(files["meta"], "meta")
    try:
        fine_names = _names(meta["fine_label_names"])
        coarse_names = _names(meta["coarse_label_names"])
    except KeyError as exc:
        raise DataFormatError(f"{where}: meta lacks {exc}; not CIFAR-100's format. {IMPORT_HINT}") from exc
    if len(fine_names) != 100 or len(coarse_names) != 20:
        raise DataFormatError(f"{where}: meta lists {len(fine_names)} fine and {len(coarse_names)} coarse classes; "
                              f"CIFAR-100 has 100 and 20. {IMPORT_HINT}")
    arrays, fines, coarses = [], [], []
    for part in ("train", "test"):
        entry = _unpickle(files[part], part)
        try:
            data, fine, coarse = entry["data"], entry["fine_labels"], entry["coarse_labels"]
        except KeyError as exc:
            raise DataFormatError(f"{where}: {part} lacks {exc}; not CIFAR-100's format. {IMPORT_HINT}") from exc
        data = np.asarray(data)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(fine) != data.shape[0] \
                or len(coarse) != data.shape[0]:
            raise DataFormatError(f"{where}: {part} holds data {data.dtype} {data.shape} with {len(fine)} labels; "
                                  f"expected uint8 [n, 3072] and n labels. {IMPORT_HINT}")
        arrays.append(data)
        fines.append(np.asarray(fine, dtype=np.int64))
        coarses.append(np.asarray(coarse, dtype=np.int64))
    data, fine, coarse = np.concatenate(arrays), np.concatenate(fines), np.concatenate(coarses)
    if fine.size and (fine.min() < 0 or fine.max() > 99 or coarse.min() < 0 or coarse.max() > 19):
        raise DataFormatError(f"{where}: labels out of range (fine 0..99, coarse 0..19). {IMPORT_HINT}")
    counts = np.bincount(fine, minlength=100)
    if counts.min() != counts.max() or counts.min() < 2:
        raise DataFormatError(f"{where}: fine classes hold {counts.min()}..{counts.max()} images (train + test); "
                              f"CIFAR-100 has the same number (600) for every class. {IMPORT_HINT}")
    order = np.argsort(fine, kind="stable")  # class-major, train images first, file order within
    per_class = int(counts[0])
    coarse_of = coarse[order].reshape(100, per_class)
    if not (coarse_of == coarse_of[:, :1]).all():
        raise DataFormatError(f"{where}: a fine class has images with different coarse labels. {IMPORT_HINT}")
    images = torch.from_numpy(data[order].reshape(100, per_class, 3, 32, 32))
    return {"images": images, "fine_names": fine_names, "coarse_names": coarse_names,
            "superclass": torch.from_numpy(coarse_of[:, 0].copy())}


def _read_folder(folder: Path) -> dict[str, bytes]:
    missing = [f for f in CIFAR100_FILES if not (folder / f).is_file()]
    if missing:
        raise DataFormatError(f"{folder} lacks {', '.join(missing)}; expected the extracted {CIFAR100_FOLDER}/ folder "
                              f"with train, test and meta. {IMPORT_HINT}")
    return {f: (folder / f).read_bytes() for f in CIFAR100_FILES}


def _read_tarball(path: Path) -> dict[str, bytes]:
    try:
        with tarfile.open(path, "r:*") as tar:
            found: dict[str, bytes] = {}
            for member in tar:
                parts = member.name.replace("\\", "/").strip("/").split("/")
                if member.isfile() and len(parts) >= 2 and parts[-2] == CIFAR100_FOLDER and parts[-1] in CIFAR100_FILES:
                    handle = tar.extractfile(member)
                    assert handle is not None
                    found[parts[-1]] = handle.read()
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise DataFormatError(f"{path} is not a readable tar archive (truncated or corrupt?): {exc}. {IMPORT_HINT}") from exc
    missing = [f for f in CIFAR100_FILES if f not in found]
    if missing:
        raise DataFormatError(f"{path} lacks {', '.join(f'{CIFAR100_FOLDER}/{m}' for m in missing)}; not the "
                              f"CIFAR-100 python archive. {IMPORT_HINT}")
    return found


# ------------------------------------------------------------------------------------ import/download
def import_cifar100(source_path: str | os.PathLike, root: str | os.PathLike | None = None, *,
                    md5: Optional[str] = None) -> Path:
    """Import CIFAR-100 (python version) from a local tarball or extracted folder; return the cache folder.

    The three pickles are read and checked (keys, dtypes, shapes, 100 fine / 20 coarse classes, equal
    class sizes) before anything is written; they land in ``cifar100/cifar-100-python/`` in one atomic
    step. ``md5``: also require this checksum of a tarball (the official one is ``CIFAR100_MD5``).
    """
    source = Path(source_path).expanduser()
    if not source.exists():
        raise FileNotFoundError(f"CIFAR-100 source {source} does not exist. {IMPORT_HINT}")
    if source.is_dir():
        folder = source / CIFAR100_FOLDER if (source / CIFAR100_FOLDER).is_dir() else source
        files = _read_folder(folder)
    else:
        if md5 is not None:
            verify_checksum(source, md5=md5, remove=False)
        files = _read_tarball(source)
    _parse(files, str(source))
    target = cifar100_dir(root)
    with atomic_dir(target / CIFAR100_FOLDER) as tmp:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
    _CACHE.clear()
    return target


def download_cifar100(root: str | os.PathLike | None = None, *, url: str = CIFAR100_URL,
                      md5: Optional[str] = CIFAR100_MD5, progress: bool = True) -> Path:
    """Download the official tarball (md5-checked), extract it into the cache, delete the tarball.

    Does nothing when the cache already holds the data. ``url``/``md5`` override the source and checksum
    (tests use a ``file://`` URL). Without network the ``DownloadError`` says how to import a local copy.
    """
    target = cifar100_dir(root)
    if all((target / CIFAR100_FOLDER / f).is_file() for f in CIFAR100_FILES):
        return target
    tarball = target / "cifar-100-python.tar.gz"
    download_file(url, tarball, md5=md5, import_hint=IMPORT_HINT, progress=progress)
    try:
        import_cifar100(tarball, root)
    finally:
        tarball.unlink(missing_ok=True)
    return target


_CACHE: dict[tuple, dict[str, Any]] = {}


def _load_pooled(root: Optional[str | os.PathLike], download: bool) -> dict[str, Any]:
    target = cifar100_dir(root)
    folder = target / CIFAR100_FOLDER
    if not all((folder / f).is_file() for f in CIFAR100_FILES):
        if not download:
            raise DataError(f"CIFAR-100 is not in {folder}. Run `mlcourse data download cifar100`. {IMPORT_HINT}")
        download_cifar100(root)
    key = (str(folder.resolve()),) + tuple((folder / f).stat().st_mtime_ns for f in CIFAR100_FILES)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = _parse(_read_folder(folder), str(folder))
    return _CACHE[key]


def load_cifar100(split: str = "train", split_scheme: str = "article", root: str | os.PathLike | None = None, *,
                  max_classes: Optional[int] = None, download: bool = True) -> ImageClassDataset:
    """CIFAR-100 classes of ``split`` in ``split_scheme`` as uint8 ``[classes, 600, 3, 32, 32]``.

    ``split``: ``train``/``val``/``test``/``trainval``; ``split_scheme``: ``article``/``cifar-fs``/``fc100``.
    Train and test images of each class are pooled. ``superclass`` = coarse label (stratified sampling).
    ``max_classes`` keeps the first classes only. Missing data is downloaded (``download=True``).
    """
    class_names = cifar100_split_classes(split_scheme, split)
    pooled = _load_pooled(root, download)
    lookup = {n: i for i, n in enumerate(pooled["fine_names"])}
    missing = [n for n in class_names if n not in lookup]
    if missing:
        raise DataFormatError(f"the CIFAR-100 copy lacks the classes {missing[:5]} of split {split_scheme}/{split}. "
                              f"{IMPORT_HINT}")
    if max_classes is not None:
        max_classes = positive_int("max_classes", max_classes, len(class_names))
        class_names = class_names[:max_classes]
    index = torch.tensor([lookup[n] for n in class_names], dtype=torch.int64)
    return ImageClassDataset(images=pooled["images"][index], class_names=class_names,
                             superclass=pooled["superclass"][index], superclass_names=list(pooled["coarse_names"]),
                             name=f"cifar100-{split_scheme}/{split}",
                             meta={"split": split, "split_scheme": split_scheme, "root": str(cifar100_dir(root))})
