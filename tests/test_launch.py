"""Issue 24: one repository setting behind every launch link and install line, and the package list of the wheel.

``mlcourse.config.REPOSITORY_URL`` is the one place the repository's address is written; pyproject.toml's
``[project.urls]``, the README's "Open in Colab"/Binder links and every chapter's setup cell must agree with it
(the book's links are generated from it; tests/test_book.py checks the pages).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from mlcourse.config import INSTALL_SOURCE_ENV, REPOSITORY_URL, chapter_notebooks
from mlcourse.course import book

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
COLAB_LINK = re.compile(
    r"https://colab\.research\.google\.com/github/([^/\s)]+)/([^/\s)]+)/blob/main/notebooks/([^\s)\"']+)"
)
BINDER_LINK = re.compile(r"https://mybinder\.org/v2/gh/([^/\s)]+)/([^/\s)]+)/HEAD\?labpath=notebooks/([^\s)\"']+)")


def _setup_cell(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return next("".join(c["source"]) for c in cells if "".join(c["source"]).startswith("# Setup: run this cell first."))


def _owner_repo() -> tuple[str, str]:
    owner, repo = REPOSITORY_URL.removeprefix("https://github.com/").split("/")
    return owner, repo


def test_pyproject_names_the_same_repository():
    assert PYPROJECT["project"]["urls"]["Repository"] == REPOSITORY_URL


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.stem)
def test_setup_cell_installs_the_package_from_the_one_url_when_it_is_missing(path):
    cell = _setup_cell(path)
    lines = cell.splitlines()
    assert len(lines) <= 16, "the setup cell stays short"
    assert "try:\n    import mlcourse\nexcept ImportError:" in cell
    installs = [line.strip() for line in lines if line.strip().startswith("%pip")]
    assert installs == ['%pip install -q "$SOURCE"'], installs
    sources = re.findall(r'os\.environ\.get\("([A-Z_]+)", "git\+([^"]+)"\)', cell)
    assert sources == [(INSTALL_SOURCE_ENV, REPOSITORY_URL)], sources
    assert 'resolve_device("auto")' in cell  # the GPU when there is one


def test_setup_cells_are_the_same_in_every_chapter():
    cells = {_setup_cell(p) for p in chapter_notebooks()}
    assert len(cells) == 1, "every chapter opens with the same setup cell"


def test_readme_lists_every_chapter_with_its_launch_links():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = book.launch_table()
    assert table in readme, (
        "the README's chapter table differs from the one setting: paste the output of "
        '`python -c "from mlcourse.course import book; print(book.launch_table())"`'
    )
    for pattern in (COLAB_LINK, BINDER_LINK):
        found = pattern.findall(readme)
        assert sorted(f for _, _, f in found) == sorted(p.name for p in chapter_notebooks()), found
        assert {(owner, repo) for owner, repo, _ in found} == {_owner_repo()}
    assert f'pip install "mlcourse @ git+{REPOSITORY_URL}"' in readme


def test_launch_links_have_the_services_forms():
    links = book.launch_links("01_background.ipynb", "https://github.com/someone/fork")
    assert links == {
        "colab": "https://colab.research.google.com/github/someone/fork/blob/main/notebooks/01_background.ipynb",
        "binder": "https://mybinder.org/v2/gh/someone/fork/HEAD?labpath=notebooks/01_background.ipynb",
    }
    for bad in ("https://gitlab.com/a/b", "https://github.com/only-owner", "git@github.com:a/b.git"):
        with pytest.raises(ValueError, match="allowed: https://github.com/<owner>/<name>"):
            book.launch_links("01_background.ipynb", bad)
    with pytest.raises(ValueError, match="allowed: a file name"):
        book.launch_links("notebooks/01_background.ipynb")


def test_binder_finds_an_environment_it_can_build():
    """Binder reads environment.yml (no binder/ folder overrides it); it must not ask pip for learn2learn, which
    PyPI cannot build on the Python it names."""
    assert not (ROOT / "binder").exists()
    env = (ROOT / "environment.yml").read_text()
    assert not re.search(r"^\s*- learn2learn", env, flags=re.M)
    # and it installs the course's own package from the launched commit (repo2docker runs postBuild afterwards)
    post_build = ROOT / "postBuild"
    assert os.access(post_build, os.X_OK) and "pip install --no-deps ." in post_build.read_text()


def test_wheel_package_list_covers_every_package_folder():
    """pyproject.toml lists the packages (so that it can map the committed files into the wheel): the list must
    hold every folder of mlcourse/ with Python files, and the mapped folders must exist."""
    tool = PYPROJECT["tool"]["setuptools"]
    folders = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "mlcourse").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    listed = set(tool["packages"])
    mapped = tool["package-dir"]
    assert listed - set(mapped) == folders, (sorted(folders - listed), sorted(listed - set(mapped) - folders))
    assert set(mapped) <= listed and all((ROOT / d).is_dir() for d in mapped.values()), mapped
    assert all(name.startswith("mlcourse._project.") for name in mapped)


def test_a_pip_install_reads_the_committed_files_inside_the_package_and_caches_data_outside(tmp_path, monkeypatch):
    from mlcourse import config

    installed = tmp_path / "site-packages" / "mlcourse"
    installed.mkdir(parents=True)
    assert config._project_root(installed) == installed / "_project"  # no checkout around the package
    assert config._project_root(config.PACKAGE_DIR) == ROOT and not config.INSTALLED_COPY
    monkeypatch.delenv(config.DATA_ENV, raising=False)
    monkeypatch.setattr(config, "INSTALLED_COPY", True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert config.data_dir() == tmp_path / "cache" / "mlcourse" / "data"
    assert config.runs_dir() == tmp_path / "cache" / "mlcourse" / "runs"  # runs are never written into the package
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path / "mine"))
    assert config.data_dir() == tmp_path / "mine"
