"""Omniglot (Lake et al., 2015): download, import, processed cache and splits.

Files in the cache (``mlcourse.config.data_dir()/omniglot``):

* ``images_background.zip`` (964 characters, 30 alphabets), ``images_evaluation.zip`` (659 characters,
  20 alphabets): the official archives (downloaded with their md5 checked) or an imported local copy
  (its structure checked: alphabets, characters, 20 PNGs each, every member's CRC).
* ``processed_<S>_{background,evaluation}.pt``: each archive's characters decoded and resized to
  ``S x S`` as one uint8 tensor ``[964 or 659, 20, 1, S, S]`` (written atomically; rebuilt when the
  archive changes; ``background``/``evaluation`` loads decode only their archive). Decoding all 32,460
  PNGs takes ~10 s on an idle 2-core machine (30-50 s on a busy one); a cached load takes 0.05-0.8 s.

Pixels: the 105x105 black-on-white PNGs are resized with Lanczos (antialiased) and inverted, so strokes
are bright (255) on a 0 background, as in MAML's pipeline.

Characters are the classes, in "Lake order": background alphabets (sorted by name), then evaluation
alphabets, characters by number within each alphabet, drawings sorted by file name.

Splits (``OMNIGLOT_SPLITS``):

* ``background`` / ``evaluation``: Lake's split (964 / 659 characters).
* ``trainval`` / ``train`` / ``val`` / ``test``: the Vinyals-style split used by MAML: 1200 of the 1623
  characters for meta-training, the other 423 for test. The assignment is the committed file
  ``data/splits/omniglot_vinyals.json`` made by ``make_omniglot_vinyals_split`` (characters in Lake
  order, permuted by ``numpy.random.RandomState(0)``; the first 1200 are ``trainval``, of which the last
  100 are ``val`` and the first 1100 ``train``; the remaining 423 are ``test``).

``rotations=True`` adds the 90/180/270-degree rotated copies of every character as new classes (x4, as
in MAML and Vinyals et al.); rotated copies keep their alphabet as superclass. Classes of one character
are adjacent: class ``4*c + r`` is character ``c`` rotated by ``90*r`` degrees.
"""
from __future__ import annotations

import io
import json
import os
import re
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .. import config
from .download import DataError, DataFormatError, atomic_path, copy_atomic, download_file, file_checksum
from .images import ImageClassDataset, positive_int

OMNIGLOT_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
OMNIGLOT_MD5 = {
    "images_background": "68d2efa1b9178cc56df9314c21c6e718",
    "images_evaluation": "6b91aef0f799c5bb55b94e3f2daec811",
}
OMNIGLOT_PARTS = ("images_background", "images_evaluation")
#: expected (alphabets, characters) per archive; every character has IMAGES_PER_CHARACTER drawings.
OMNIGLOT_STRUCTURE = {"images_background": (30, 964), "images_evaluation": (20, 659)}
IMAGES_PER_CHARACTER = 20
OMNIGLOT_SPLITS = ("train", "val", "test", "trainval", "background", "evaluation")
IMAGE_SIZE_RANGE = (8, 105)
VINYALS_SPLIT_FILE = config.REPO_ROOT / "data" / "splits" / "omniglot_vinyals.json"
VINYALS_SIZES = {"trainval": 1200, "val": 100}
CACHE_FORMAT = 1

IMPORT_HINT = (
    "To use a local copy instead, run `mlcourse data import omniglot PATH` (PATH: a folder holding "
    "images_background.zip and images_evaluation.zip, or the extracted images_background/ and "
    "images_evaluation/ folders), or in Python `mlcourse.data.import_omniglot(PATH)`."
)

_PNG = re.compile(r"^(images_background|images_evaluation)/([^/]+)/(character\d+)/([^/]+\.png)$")


def omniglot_dir(root: str | os.PathLike | None = None) -> Path:
    """``<root or data_dir()>/omniglot``."""
    return Path(root if root is not None else config.data_dir()).expanduser() / "omniglot"


# ----------------------------------------------------------------------------------------- structure
def _index_members(names: list[str], part: str, where: str) -> dict[str, dict[str, list[str]]]:
    """{alphabet: {character: [png member names sorted]}} from archive member names; checks the counts."""
    tree: dict[str, dict[str, list[str]]] = {}
    for name in names:
        m = _PNG.match(name)
        if m is None or m.group(1) != part:
            continue
        tree.setdefault(m.group(2), {}).setdefault(m.group(3), []).append(name)
    want_alphabets, want_chars = OMNIGLOT_STRUCTURE[part]
    n_alpha = len(tree)
    n_chars = sum(len(chars) for chars in tree.values())
    bad = [f"{a}/{c} ({len(p)} PNGs)" for a, chars in sorted(tree.items()) for c, p in sorted(chars.items())
           if len(p) != IMAGES_PER_CHARACTER]
    if n_alpha != want_alphabets or n_chars != want_chars or bad:
        detail = f"; characters without {IMAGES_PER_CHARACTER} PNGs: {', '.join(bad[:5])}" if bad else ""
        raise DataFormatError(
            f"{where} is not a complete Omniglot {part}: expected {want_alphabets} alphabets and {want_chars} "
            f"characters with {IMAGES_PER_CHARACTER} PNGs each under {part}/<Alphabet>/characterNN/, found "
            f"{n_alpha} alphabets and {n_chars} characters{detail}. {IMPORT_HINT}"
        )
    return {a: {c: sorted(p) for c, p in sorted(chars.items(), key=lambda kv: int(kv[0][9:]))}
            for a, chars in sorted(tree.items())}


def check_omniglot_zip(path: str | os.PathLike, part: str) -> dict[str, dict[str, list[str]]]:
    """Verify an Omniglot archive: a readable zip, every member's CRC, the expected structure.

    Raises ``DataFormatError`` naming the file for a wrong, truncated or corrupt archive.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            tree = _index_members(names, part, str(path))
            broken = archive.testzip()
    except zipfile.BadZipFile as exc:
        raise DataFormatError(f"{path} is not a valid zip archive (truncated or corrupt?): {exc}. {IMPORT_HINT}") from exc
    except (OSError, EOFError) as exc:
        raise DataFormatError(f"{path} could not be read (truncated or corrupt?): {exc}. {IMPORT_HINT}") from exc
    if broken is not None:
        raise DataFormatError(f"{path} is corrupt: member {broken} fails its CRC check. {IMPORT_HINT}")
    return tree


def _zip_folder(folder: Path, part: str, dest: Path) -> None:
    """Check an extracted ``images_*`` folder and write it as a zip (same layout as the official one)."""
    files = sorted(p for p in folder.rglob("*.png") if p.is_file())
    names = [f"{part}/{p.relative_to(folder).as_posix()}" for p in files]
    _index_members(names, part, str(folder))
    with atomic_path(dest) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
            for path, name in zip(files, names):
                archive.write(path, name)
        check_omniglot_zip(tmp, part)


def _drop_processed(directory: Path) -> None:
    for cached in directory.glob("processed_*.pt"):
        cached.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------ import/download
def import_omniglot(source_path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Import a local Omniglot copy into the cache and return the cache folder (chapter 01, CLI).

    ``source_path``: a folder holding ``images_background.zip`` and ``images_evaluation.zip`` or the
    extracted ``images_background/`` and ``images_evaluation/`` folders (also looked for in
    ``omniglot-py/`` and ``python/`` below it). Copies need not be byte-identical to the official archives,
    so the STRUCTURE is verified (964 + 659 characters, 30 + 20 alphabets, 20 PNGs each, CRCs) before
    anything is written; each archive lands atomically. Idempotent.
    """
    source = Path(source_path).expanduser()
    if not source.exists():
        raise FileNotFoundError(f"Omniglot source {source} does not exist. {IMPORT_HINT}")
    if source.is_file():
        raise DataFormatError(f"{source} is a file; give the FOLDER that holds images_background.zip and "
                              f"images_evaluation.zip (or the extracted folders). {IMPORT_HINT}")
    candidates = [source, source / "omniglot-py", source / "python", source / "omniglot"]
    plan: dict[str, tuple[str, Path]] = {}
    for part in OMNIGLOT_PARTS:
        for base in candidates:
            if (base / f"{part}.zip").is_file():
                plan[part] = ("zip", base / f"{part}.zip")
                break
            if (base / part).is_dir():
                plan[part] = ("folder", base / part)
                break
        else:
            raise DataFormatError(f"{source} holds neither {part}.zip nor an extracted {part}/ folder. {IMPORT_HINT}")
    # Verify everything first, write afterwards.
    for part, (kind, path) in plan.items():
        if kind == "zip":
            check_omniglot_zip(path, part)
    target = omniglot_dir(root)
    target.mkdir(parents=True, exist_ok=True)
    changed = False
    for part, (kind, path) in plan.items():
        dest = target / f"{part}.zip"
        if kind == "zip":
            if dest.exists() and dest.resolve() == path.resolve():
                continue
            if dest.exists() and dest.stat().st_size == path.stat().st_size and file_checksum(dest) == file_checksum(path):
                continue
            copy_atomic(path, dest)
        else:
            _zip_folder(path, part, dest)
        changed = True
    if changed:
        _drop_processed(target)
    return target


def download_omniglot(root: str | os.PathLike | None = None, *, base_url: str = OMNIGLOT_URL,
                      md5: Optional[dict[str, str]] = None, progress: bool = True) -> Path:
    """Download the official archives (md5-checked) unless the cache already has them (chapter 01, CLI).

    ``base_url``/``md5`` override the source and checksums (tests use ``file://`` URLs). Without network
    the ``DownloadError`` says how to import a local copy instead.
    """
    target = omniglot_dir(root)
    checksums = dict(OMNIGLOT_MD5 if md5 is None else md5)
    changed = False
    for part in OMNIGLOT_PARTS:
        dest = target / f"{part}.zip"
        if dest.exists():
            continue
        download_file(base_url.rstrip("/") + f"/{part}.zip", dest, md5=checksums.get(part), import_hint=IMPORT_HINT,
                      progress=progress)
        changed = True
    if changed:
        _drop_processed(target)
    return target


def _ensure_archives(root: Optional[str | os.PathLike], download: bool) -> Path:
    target = omniglot_dir(root)
    missing = [p for p in OMNIGLOT_PARTS if not (target / f"{p}.zip").is_file()]
    if missing:
        if not download:
            raise DataError(f"Omniglot is not in {target} (missing {', '.join(m + '.zip' for m in missing)}). "
                            f"Run `mlcourse data download omniglot`. {IMPORT_HINT}")
        download_omniglot(root)
    return target


# ------------------------------------------------------------------------------------------ decoding
def _decode(data: bytes, image_size: int) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("L")
        if im.size != (image_size, image_size):
            im = im.resize((image_size, image_size), Image.LANCZOS)
        return 255 - np.asarray(im, dtype=np.uint8)


def _build_processed(target: Path, part: str, image_size: int) -> dict:
    """Decode and resize every drawing of one archive -> uint8 [characters, 20, 1, S, S]."""
    path = target / f"{part}.zip"
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataFormatError(f"{path} is not a valid zip archive (truncated or corrupt?): {exc}; delete it and "
                              f"download or import Omniglot again. {IMPORT_HINT}") from exc
    alphabets: list[str] = []
    class_names: list[str] = []
    superclass: list[int] = []
    jobs: list[tuple[str, list[bytes]]] = []
    with archive:
        tree = _index_members(archive.namelist(), part, str(path))
        for alphabet, chars in tree.items():
            alphabets.append(alphabet)
            for char, members in chars.items():
                jobs.append((f"{alphabet}/{char}", [archive.read(m) for m in members]))
                class_names.append(f"{alphabet}/{char}")
                superclass.append(len(alphabets) - 1)

    def decode_character(job: tuple[str, list[bytes]]) -> np.ndarray:
        try:
            return np.stack([_decode(data, image_size) for data in job[1]])
        except Exception as exc:
            raise DataFormatError(f"{path}: could not decode {job[0]}: {exc}; the archive is corrupt, "
                                  f"import or download it again. {IMPORT_HINT}") from exc

    # PIL releases the GIL while decoding and resizing, so threads use any spare cores.
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        images = list(pool.map(decode_character, jobs))
    tensor = torch.from_numpy(np.stack(images)).unsqueeze(2).contiguous()  # [characters, 20, 1, S, S]
    st = path.stat()
    return {"format": CACHE_FORMAT, "image_size": image_size, "part": part, "images": tensor,
            "class_names": class_names, "alphabets": alphabets,
            "superclass": torch.tensor(superclass, dtype=torch.int64),
            "fingerprint": [int(st.st_size), int(st.st_mtime_ns)]}


def _load_part(target: Path, part: str, image_size: int) -> dict:
    """One archive's processed tensor from ``processed_<S>_<part>.pt``, built (atomically) when missing/stale."""
    cache = target / f"processed_{image_size}_{part.split('_')[1]}.pt"
    st = (target / f"{part}.zip").stat()
    if cache.exists():
        try:
            data = torch.load(cache, map_location="cpu", weights_only=True)
            if data.get("format") == CACHE_FORMAT and data.get("fingerprint") == [int(st.st_size), int(st.st_mtime_ns)]:
                return data
        except Exception:
            pass  # unreadable or stale cache: rebuild it below
    data = _build_processed(target, part, image_size)
    with atomic_path(cache) as tmp:
        torch.save(data, tmp)
    return data


def _load_processed(target: Path, image_size: int, parts: tuple[str, ...] = OMNIGLOT_PARTS) -> dict:
    """The processed archives in ``parts``, concatenated in Lake order (superclass = global alphabet index)."""
    loaded = [_load_part(target, part, image_size) for part in parts]
    offsets = np.cumsum([0] + [len(d["alphabets"]) for d in loaded])
    return {"images": torch.cat([d["images"] for d in loaded]) if len(loaded) > 1 else loaded[0]["images"],
            "class_names": [n for d in loaded for n in d["class_names"]],
            "alphabets": [a for d in loaded for a in d["alphabets"]],
            "superclass": torch.cat([d["superclass"] + int(o) for d, o in zip(loaded, offsets)]),
            "part": torch.cat([torch.full((len(d["class_names"]),), OMNIGLOT_PARTS.index(d["part"]), dtype=torch.int64)
                               for d in loaded])}


# ---------------------------------------------------------------------------------------------- splits
def omniglot_character_names(root: str | os.PathLike | None = None) -> list[str]:
    """All character names ``"Alphabet/characterNN"`` in Lake order, read from the archives' listings."""
    target = omniglot_dir(root)
    names: list[str] = []
    for part in OMNIGLOT_PARTS:
        with zipfile.ZipFile(target / f"{part}.zip") as archive:
            tree = _index_members(archive.namelist(), part, str(target / f"{part}.zip"))
        names += [f"{a}/{c}" for a, chars in tree.items() for c in chars]
    return names


def make_omniglot_vinyals_split(character_names: list[str], seed: int = 0) -> dict[str, list[str]]:
    """The Vinyals-style split from the 1623 names in Lake order (generator of ``omniglot_vinyals.json``).

    ``numpy.random.RandomState(seed).permutation`` (stable across NumPy versions) orders the characters;
    the first 1200 are ``trainval`` (first 1100 ``train``, last 100 ``val``), the other 423 ``test``.
    Lists keep the permuted order.
    """
    order = np.random.RandomState(seed).permutation(len(character_names))
    names = [character_names[i] for i in order]
    n_trainval, n_val = VINYALS_SIZES["trainval"], VINYALS_SIZES["val"]
    return {"train": names[: n_trainval - n_val], "val": names[n_trainval - n_val : n_trainval],
            "test": names[n_trainval:]}


def write_omniglot_vinyals_split(character_names: list[str], path: str | os.PathLike = VINYALS_SPLIT_FILE) -> Path:
    """Write ``data/splits/omniglot_vinyals.json`` (run once by the maintainers; the file is committed)."""
    split = make_omniglot_vinyals_split(character_names)
    doc = {
        "description": "Omniglot Vinyals-style character split (1200 trainval = 1100 train + 100 val, 423 test), "
                       "as used by MAML (Finn et al., 2017) after Vinyals et al. (2016). Generated by "
                       "mlcourse.data.omniglot.make_omniglot_vinyals_split: the 1623 characters in Lake order "
                       "(images_background alphabets sorted, then images_evaluation), permuted with "
                       "numpy.random.RandomState(0).",
        "source": "Lake, Salakhutdinov & Tenenbaum (2015), https://github.com/brendenlake/omniglot (MIT)",
        **split,
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
    return Path(path)


def _vinyals_split() -> dict[str, list[str]]:
    doc = json.loads(VINYALS_SPLIT_FILE.read_text())
    return {"train": doc["train"], "val": doc["val"], "test": doc["test"], "trainval": doc["train"] + doc["val"]}


# ------------------------------------------------------------------------------------------------ load
def load_omniglot(split: str = "train", image_size: int = 28, rotations: bool = True,
                  root: str | os.PathLike | None = None, *, max_classes: Optional[int] = None,
                  download: bool = True) -> ImageClassDataset:
    """Omniglot ``split`` as an ``ImageClassDataset`` of uint8 ``[classes, 20, 1, S, S]``.

    ``split``: one of ``OMNIGLOT_SPLITS``; ``image_size`` in 8..105; ``rotations`` multiplies the classes by
    4 (0/90/180/270 degrees, new classes); ``max_classes`` keeps only the first classes (a smaller
    experiment; fast mode changes nothing here). Missing archives are downloaded (``download=True``).
    """
    if split not in OMNIGLOT_SPLITS:
        raise ValueError(f"unknown Omniglot split {split!r}; allowed: {', '.join(repr(s) for s in OMNIGLOT_SPLITS)}")
    low, high = IMAGE_SIZE_RANGE
    if isinstance(image_size, bool) or not isinstance(image_size, int) or not low <= image_size <= high:
        raise ValueError(f"image_size={image_size!r} is out of range; allowed integers {low}..{high} "
                         f"(the originals are 105x105)")
    target = _ensure_archives(root, download)
    if split in ("background", "evaluation"):
        # only this archive is decoded; superclass indices stay global (background alphabets first)
        data = _load_processed(target, image_size, (f"images_{split}",))
        if split == "evaluation":  # alphabet names of the background archive from its listing (no decoding)
            with zipfile.ZipFile(target / "images_background.zip") as archive:
                bg_alphabets = list(_index_members(archive.namelist(), "images_background",
                                                   str(target / "images_background.zip")))
            data["superclass"] = data["superclass"] + len(bg_alphabets)
            data["alphabets"] = bg_alphabets + data["alphabets"]
        index = None
    else:
        data = _load_processed(target, image_size)
        lookup = {n: i for i, n in enumerate(data["class_names"])}
        wanted = _vinyals_split()[split]
        missing = [n for n in wanted if n not in lookup]
        if missing:
            raise DataError(f"the Omniglot copy in {target} lacks {len(missing)} characters of split {split!r} "
                            f"(e.g. {missing[0]}); it is not the full data set. {IMPORT_HINT}")
        index = torch.tensor([lookup[n] for n in wanted], dtype=torch.int64)
    if index is None:
        images, class_names, superclass = data["images"], list(data["class_names"]), data["superclass"]
    else:
        images, superclass = data["images"][index], data["superclass"][index]
        class_names = [data["class_names"][i] for i in index.tolist()]
    if rotations:
        images = torch.stack([torch.rot90(images, k, dims=(-2, -1)) for k in range(4)], dim=1)
        images = images.reshape(-1, *images.shape[2:])
        class_names = [f"{n}/rot{90 * k:03d}" for n in class_names for k in range(4)]
        superclass = superclass.repeat_interleave(4)
    if max_classes is not None:
        max_classes = positive_int("max_classes", max_classes, len(class_names))
        images, class_names, superclass = images[:max_classes], class_names[:max_classes], superclass[:max_classes]
    return ImageClassDataset(images=images.contiguous(), class_names=class_names, superclass=superclass,
                             superclass_names=list(data["alphabets"]), name=f"omniglot/{split}",
                             meta={"image_size": image_size, "rotations": bool(rotations), "split": split,
                                   "root": str(target)})


def time_omniglot_load(image_size: int = 28, root: str | os.PathLike | None = None) -> dict[str, float]:
    """Seconds for a first (decode + cache) and a cached load of ``train`` with rotations (data/README).

    Deletes the processed caches of ``image_size`` first, so the first load really decodes everything.
    """
    target = omniglot_dir(root)
    for cached in target.glob(f"processed_{image_size}_*.pt"):
        cached.unlink()
    t0 = time.perf_counter()
    load_omniglot("train", image_size, rotations=True, root=root, download=False)
    t1 = time.perf_counter()
    load_omniglot("train", image_size, rotations=True, root=root, download=False)
    t2 = time.perf_counter()
    return {"first_load_s": t1 - t0, "cached_load_s": t2 - t1}


__all__ = ["OMNIGLOT_SPLITS", "OMNIGLOT_MD5", "OMNIGLOT_URL", "import_omniglot", "download_omniglot",
           "load_omniglot", "check_omniglot_zip", "make_omniglot_vinyals_split", "write_omniglot_vinyals_split",
           "omniglot_character_names", "omniglot_dir", "time_omniglot_load"]
