"""Checksummed downloads and atomic file writes for the data cache (``mlcourse.config.data_dir()``).

Used by ``download_omniglot``/``download_cifar100`` (chapter 01's setup, ``mlcourse data download``) and by
the importers. Every file lands in the cache in one step: it is written to a temporary file in the same
folder, verified, then ``os.replace``-d into place. Whatever goes wrong (a checksum mismatch, no network,
a ``KeyboardInterrupt``) the temporary file is removed, so the cache never holds a half-written file.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Optional

from ..atomic import DIR_MODE, atomic_path

CHUNK = 1 << 20




class DataError(RuntimeError):
    """Base class of the data errors (missing, corrupt or unverifiable files)."""


class ChecksumError(DataError):
    """A downloaded file's checksum differs from the expected one (the file has been removed)."""


class DownloadError(DataError):
    """A download failed (no network, HTTP error); the message says how to import a local copy."""


class DataFormatError(DataError, ValueError):
    """A local copy does not have the expected structure (wrong, truncated or corrupt archive)."""


def file_checksum(path: str | os.PathLike, algorithm: str = "md5") -> str:
    """Hex digest of a file (``md5`` or ``sha256``), read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _expected(md5: Optional[str], sha256: Optional[str]) -> Optional[tuple[str, str]]:
    if md5 and sha256:
        raise ValueError("give md5 or sha256, not both")
    if md5:
        return "md5", md5.lower()
    if sha256:
        return "sha256", sha256.lower()
    return None


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``dest``; on success it replaces ``dest`` (old content removed)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent))
    try:
        yield tmp
        os.chmod(tmp, DIR_MODE)
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
            os.replace(dest, old / "x")
            os.replace(tmp, dest)
            _remove(old)
        else:
            os.replace(tmp, dest)
    except BaseException:
        _remove(tmp)
        raise


def copy_atomic(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy ``src`` to ``dest`` through a temporary file (never half-written)."""
    with atomic_path(dest) as tmp:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, CHUNK)
    return Path(dest)


def verify_checksum(path: str | os.PathLike, *, md5: Optional[str] = None, sha256: Optional[str] = None,
                    remove: bool = True) -> None:
    """Raise ``ChecksumError`` (naming the file, expected and actual digest) when ``path`` does not match.

    With ``remove=True`` the mismatching file is deleted first, and the message says so.
    """
    expected = _expected(md5, sha256)
    if expected is None:
        return
    algorithm, want = expected
    got = file_checksum(path, algorithm)
    if got != want:
        path = Path(path)
        if remove:
            _remove(path)
        raise ChecksumError(
            f"checksum mismatch for {path.name}: expected {algorithm} {want}, got {got}"
            + ("; the file was removed" if remove else "")
            + ". The download was corrupted or the file changed on the server; try again."
        )


def download_file(url: str, dest: str | os.PathLike, *, md5: Optional[str] = None, sha256: Optional[str] = None,
                  import_hint: str = "", progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (temporary file, checksum, atomic rename) and return ``dest``.

    ``md5``/``sha256``: the expected digest; a mismatch removes the file and raises ``ChecksumError``
    (``dest.name``, expected vs got). Network failures raise ``DownloadError`` whose message ends with
    ``import_hint`` (how to import a local copy instead). ``file://`` URLs work too (the tests use them).
    """
    dest = Path(dest)
    expected = _expected(md5, sha256)
    digest = hashlib.new(expected[0]) if expected else None
    hint = f" {import_hint}" if import_hint else ""
    with atomic_path(dest) as tmp:
        try:
            response = urllib.request.urlopen(url, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise DownloadError(f"could not download {dest.name} from {url}: the server answered HTTP {exc.code} "
                                f"({exc.reason}).{hint}") from exc
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DownloadError(f"could not download {dest.name} from {url}: {reason}. "
                                f"This machine seems to have no network access.{hint}") from exc
        with response:
            total = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
            bar = None
            if progress:
                try:
                    from tqdm.auto import tqdm

                    bar = tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                               desc=f"download {dest.name}", leave=False)
                except Exception:  # pragma: no cover - tqdm is a dependency, but never fail on a bar
                    bar = None
            try:
                with open(tmp, "wb") as out:
                    while True:
                        try:
                            chunk = response.read(CHUNK)
                        except (socket.timeout, TimeoutError, ConnectionError, OSError) as exc:
                            raise DownloadError(f"download of {dest.name} from {url} was interrupted: {exc}.{hint}") from exc
                        if not chunk:
                            break
                        out.write(chunk)
                        if digest is not None:
                            digest.update(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
        if expected is not None:
            algorithm, want = expected
            got = digest.hexdigest()
            if got != want:
                raise ChecksumError(
                    f"checksum mismatch for {dest.name} downloaded from {url}: expected {algorithm} {want}, "
                    f"got {got}; the file was removed. Try again, or import a verified local copy.{hint}"
                )
    return dest
