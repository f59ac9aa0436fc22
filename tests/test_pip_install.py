"""Issue 24: the package installs with pip alone and its chapters run there, as on a notebook service.

A fresh virtual environment sees this environment's heavy packages (torch, jupyter, ...) through a folder of links,
minus learn2learn and mlcourse itself, so pip downloads nothing big; chapter 01's setup cell then installs the package
the way Colab would (`%pip install`, from a copy of this checkout instead of the repository's URL, by
``MLCOURSE_INSTALL_SOURCE``), and chapters 01 and 07 run in fast mode without learn2learn. There is no network here
but PyPI: the chapters read Omniglot from this project's data cache (``make data-omniglot`` imported it) or from an
import of ``../shared/data/omniglot`` into a temporary cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from mlcourse.config import INSTALL_SOURCE_ENV

pytestmark = pytest.mark.slow  # a fresh virtual environment and a pip install: `make test` only, not `make test-fast`

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ("01_background.ipynb", "07_tools.ipynb")
HIDDEN = ("learn2learn", "mlcourse", "__editable__", "_mlcourse")  # not seen by the fresh environment
SHARED_OMNIGLOT = ROOT.parent / "shared" / "data" / "omniglot"
RUNNER = """
import sys, nbformat
from nbclient import NotebookClient

source, out, workdir = sys.argv[1:4]
nb = nbformat.read(source, as_version=4)
try:
    NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": workdir}}).execute()
finally:
    nbformat.write(nb, out)
"""


def _copy_checkout(dest: Path) -> Path:
    """The files of the checkout (tracked and new, not ignored), as `pip install <URL>` would fetch them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def _fresh_venv(where: Path) -> Path:
    """A new virtual environment that sees this one's packages, except learn2learn and mlcourse, through a .pth."""
    subprocess.run([sys.executable, "-m", "venv", str(where / "venv")], check=True)
    shared = where / "shared-site-packages"
    shared.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(HIDDEN) and entry.name != "__pycache__":
            (shared / entry.name).symlink_to(entry)
    python = where / "venv" / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "shared_packages.pth").write_text(f"import site; site.addsitedir({str(shared)!r})\n")
    return python


def _data_dir(tmp: Path) -> Path | None:
    """Where the chapters find Omniglot offline: this project's cache, else an import of the shared copy."""
    if all(
        (ROOT / "data" / "omniglot" / f"{part}.zip").is_file() for part in ("images_background", "images_evaluation")
    ):
        return ROOT / "data"
    if SHARED_OMNIGLOT.is_dir():
        data = tmp / "data"
        env = {**os.environ, "MLCOURSE_DATA_DIR": str(data)}
        cmd = [sys.executable, "-m", "mlcourse.cli", "data", "import", "omniglot", str(SHARED_OMNIGLOT)]
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        return data
    return None  # no copy here: the chapters download the official archives (checksummed)


def _setup_cell_seconds(nb_path: Path) -> float:
    """How long the executed setup cell took (nbclient's timestamps): in chapter 01, the pip install."""
    from datetime import datetime

    cell = next(c for c in json.loads(nb_path.read_text())["cells"] if "".join(c["source"]).startswith("# Setup:"))
    stamps = cell["metadata"]["execution"]
    start, end = (
        datetime.fromisoformat(stamps[k].replace("Z", "+00:00")) for k in ("iopub.execute_input", "shell.execute_reply")
    )
    return (end - start).total_seconds()


def _outputs(nb_path: Path) -> str:
    nb = json.loads(nb_path.read_text())
    texts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            texts.append("".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", "")))
            texts.append("\n".join(out.get("traceback", [])))
    return "\n".join(texts)


@pytest.mark.slow
def test_pip_alone_installs_a_package_with_which_chapters_01_and_07_run(tmp_path):
    start = time.perf_counter()
    source = _copy_checkout(tmp_path / "checkout")
    python = _fresh_venv(tmp_path)
    probe = "import importlib.util as u; print(u.find_spec('mlcourse') is None, u.find_spec('learn2learn') is None)"
    before = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    before = before.stdout.split()
    assert before == ["True", "True"], "the fresh environment must see neither mlcourse nor learn2learn"
    work = tmp_path / "work"  # only the notebooks, as a notebook service opens them
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MLCOURSE_DATA_DIR")}
    env.update({INSTALL_SOURCE_ENV: str(source), "MLCOURSE_FAST": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    env.update({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONNOUSERSITE": "1"})
    data = _data_dir(tmp_path)
    if data is not None:
        env["MLCOURSE_DATA_DIR"] = str(data)
    timings = {}
    for chapter in CHAPTERS:  # chapter 01's setup cell installs the package; chapter 07's finds it installed
        t0 = time.perf_counter()
        shutil.copy(ROOT / "notebooks" / chapter, work / chapter)
        run = subprocess.run(
            [str(python), "-c", RUNNER, str(work / chapter), str(work / f"executed-{chapter}"), str(work)],
            env=env, cwd=work, capture_output=True, text=True, timeout=1500,
        )  # fmt: skip
        assert run.returncode == 0, (
            f"{chapter} failed in the pip-installed environment ({timings}):\n{run.stderr[-4000:]}"
        )
        timings[chapter] = round(time.perf_counter() - t0)
    timings["pip install (chapter 01's setup cell)"] = round(_setup_cell_seconds(work / f"executed-{CHAPTERS[0]}"))
    where = subprocess.run(
        [str(python), "-c", "import mlcourse, mlcourse.config as c; print(mlcourse.__file__, c.INSTALLED_COPY)"],
        env=env, cwd=work, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert where[0].startswith(str(tmp_path / "venv")) and where[1] == "True", where  # installed, not the checkout
    after = subprocess.run([str(python), "-c", probe], env=env, cwd=work, capture_output=True, text=True, check=True)
    assert after.stdout.split() == ["False", "True"], "pip must install mlcourse without learn2learn"
    chapter_07 = _outputs(work / "executed-07_tools.ipynb")
    assert "learn2learn is not installed here" in chapter_07 and "make setup" in chapter_07
    assert "exercise 1 needs learn2learn" in chapter_07  # exercise 1 (learn2learn) says it cannot run here
    assert "Traceback" not in chapter_07 and "Traceback" not in _outputs(work / "executed-01_background.ipynb")
    bench = subprocess.run(
        [str(python), "-m", "mlcourse.cli", "bench", "--tiny", "--algorithms", "maml", "--implementations", "vectorised",
         "learn2learn", "--repeats", "1", "--no-memory", "--device", "cpu", "--out", str(tmp_path / "bench.json")],
        env=env, cwd=work, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert bench.returncode == 0, bench.stderr[-2000:]
    notices = [line for line in bench.stdout.splitlines() if "learn2learn is not installed" in line]
    assert len(notices) == 1 and "make setup" in notices[0], bench.stdout
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert {r["implementation"] for r in rows} == {"vectorised"}, rows
    print(f"fresh pip environment: {time.perf_counter() - start:.0f} s in all; chapters: {timings}")


def test_bench_skips_the_learn2learn_rows_with_one_line_where_it_is_missing(tmp_path, monkeypatch, capsys):
    from mlcourse import bench

    monkeypatch.setattr(bench, "load_learn2learn", lambda source=None: None)
    argv = ["--tiny", "--algorithms", "maml", "--implementations", "vectorised", "learn2learn", "--repeats", "1",
            "--no-memory", "--device", "cpu", "--out", str(tmp_path / "bench.json")]  # fmt: skip
    assert bench.bench_command(bench.COMMAND.parse("bench", argv)) == 0
    notices = [line for line in capsys.readouterr().out.splitlines() if "learn2learn" in line and "skipped" in line]
    assert notices == [f"learn2learn is not installed, so its rows are skipped; {bench.L2L_INSTALL_HINT}"]
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert [r["implementation"] for r in rows] == ["vectorised"]
