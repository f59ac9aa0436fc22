"""Checksummed downloads: success, checksum mismatch (file removed), no network (import instructions),
interrupts (nothing half-written), atomic writes."""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request

import pytest

from mlcourse.data import ChecksumError, DownloadError, download_omniglot, load_cifar100, load_omniglot, omniglot
from mlcourse.data import download as dl


def no_network(*args, **kwargs):
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def test_download_file_ok_and_mismatch(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello world" * 1000)
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = tmp_path / "cache" / "file.bin"
    assert dl.download_file(src.as_uri(), dest, md5=md5, progress=False) == dest
    assert dest.read_bytes() == src.read_bytes()
    dest2 = tmp_path / "cache" / "file2.bin"
    dl.download_file(src.as_uri(), dest2, sha256=sha, progress=False)
    bad = tmp_path / "cache" / "bad.bin"
    with pytest.raises(
        ChecksumError, match=f"checksum mismatch for bad.bin .*expected md5 {'a' * 32}, got {md5}; the file was removed"
    ):
        dl.download_file(src.as_uri(), bad, md5="a" * 32, progress=False)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["file.bin", "file2.bin"]


def test_verify_checksum_removes_file(tmp_path):
    path = tmp_path / "x.zip"
    path.write_bytes(b"abc")
    with pytest.raises(
        ChecksumError,
        match=r"checksum mismatch for x.zip: expected md5 0+, got "
        r"900150983cd24fb0d6963f7d28e17f72; the file was removed",
    ):
        dl.verify_checksum(path, md5="0" * 32)
    assert not path.exists()


def test_no_network_says_how_to_import(data_root, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(DownloadError) as info:
        download_omniglot(progress=False)
    message = str(info.value)
    assert "images_background.zip" in message and "no network access" in message
    assert "mlcourse data import omniglot PATH" in message and "mlcourse.data.import_omniglot(PATH)" in message
    with pytest.raises(DownloadError, match="mlcourse data import omniglot PATH"):
        load_omniglot("background")  # a load with no data downloads, and says the same
    with pytest.raises(
        DownloadError, match=r"mlcourse data import cifar100 PATH.*mlcourse.data.import_cifar100\(PATH\)"
    ):
        load_cifar100("train")
    assert not any(data_root.rglob("*.*"))  # nothing half-written


def test_http_error(tmp_path, monkeypatch):
    def not_found(*args, **kwargs):
        raise urllib.error.HTTPError("https://x/y.zip", 404, "Not Found", {}, None)

    monkeypatch.setattr(urllib.request, "urlopen", not_found)
    with pytest.raises(DownloadError, match="the server answered HTTP 404"):
        dl.download_file("https://x/y.zip", tmp_path / "y.zip", import_hint="HINT")


def test_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    class Response(io.BytesIO):
        headers = {"Content-Length": "3000000"}
        calls = 0

        def read(self, n=-1):
            Response.calls += 1
            if Response.calls > 1:
                raise KeyboardInterrupt
            return b"x" * 1000

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Response())
    with pytest.raises(KeyboardInterrupt):
        dl.download_file("https://example.org/big.zip", tmp_path / "cache" / "big.zip", md5="0" * 32, progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_download_omniglot_with_checksums(synthetic_omniglot, data_root):
    sums = {p: dl.file_checksum(synthetic_omniglot / f"{p}.zip") for p in omniglot.OMNIGLOT_PARTS}
    bad = dict(sums, images_evaluation="0" * 32)
    with pytest.raises(ChecksumError, match="checksum mismatch for images_evaluation.zip"):
        download_omniglot(base_url=synthetic_omniglot.as_uri(), md5=bad, progress=False)
    assert sorted(p.name for p in (data_root / "omniglot").iterdir()) == ["images_background.zip"]
    download_omniglot(base_url=synthetic_omniglot.as_uri(), md5=sums, progress=False)
    assert load_omniglot("evaluation", rotations=False).num_classes == 6
    assert omniglot.OMNIGLOT_MD5 == {
        "images_background": "68d2efa1b9178cc56df9314c21c6e718",
        "images_evaluation": "6b91aef0f799c5bb55b94e3f2daec811",
    }


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    dest = tmp_path / "f.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError):
        with dl.atomic_path(dest) as tmp:
            tmp.write_text("new, half")
            raise RuntimeError("boom")
    assert dest.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]
    with dl.atomic_path(dest) as tmp:
        tmp.write_text("new")
    assert dest.read_text() == "new" and oct(dest.stat().st_mode & 0o077) != "0o0"
