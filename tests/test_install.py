"""The install contract of issue 2: pyproject.toml and environment.yml name the same packages,
the README opens with the two commands, and .ci/run calls the README's test command (issue 24: learn2learn is
the optional `compare` extra; tests/test_pip_install.py installs the package with pip alone)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


OPTIONAL_EXTRA = (
    "compare"  # learn2learn (built by `make setup`), higher, TorchOpt: not in environment.yml (Binder, conda)
)


def _pyproject_packages(skip: tuple[str, ...] = ()) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"]}
    for extra, requirements in project.get("optional-dependencies", {}).items():
        if extra not in skip:
            names |= {_name(r) for r in requirements}
    return names


def _environment_packages() -> set[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    in_pip = False
    names: set[str] = set()
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("- pip:"):
            in_pip = True
            continue
        if in_pip and stripped.startswith("- "):
            names.add(_name(stripped[2:]))
        elif in_pip and stripped and not stripped.startswith("#"):
            in_pip = False
    return names


def test_environment_yml_and_pyproject_name_the_same_packages() -> None:
    pyproject, environment = _pyproject_packages(skip=(OPTIONAL_EXTRA,)), _environment_packages()
    assert pyproject, "no dependencies found in pyproject.toml"
    assert pyproject == environment, (
        f"only in pyproject.toml: {sorted(pyproject - environment)}; "
        f"only in environment.yml: {sorted(environment - pyproject)}"
    )


def test_required_packages_are_declared() -> None:
    for package in ("torch", "jupyterlab", "ipywidgets", "matplotlib", "nbval", "learn2learn"):
        assert package in _pyproject_packages(), package


def test_learn2learn_is_an_optional_extra_that_make_setup_installs() -> None:
    """`pip install` alone needs no compiler: learn2learn is only in the `compare` extra (with the other libraries the
    benchmark measures, higher and TorchOpt), which scripts/setup.sh installs (after building learn2learn with
    scripts/install_learn2learn.sh)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "learn2learn" not in {_name(r) for r in project["dependencies"]}
    assert [_name(r) for r in project["optional-dependencies"][OPTIONAL_EXTRA]] == ["learn2learn", "higher", "torchopt"]
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "scripts/install_learn2learn.sh" in setup and f'-e ".[dev,{OPTIONAL_EXTRA}]"' in setup
    assert project["requires-python"] == ">=3.10"
    versions = {
        c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if c.startswith("Programming Language :: Python :: 3.")
    }
    assert versions == {"3.10", "3.11", "3.12", "3.13"}, versions


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    first_two = [b.strip().splitlines()[0].split("#")[0].strip() for b in blocks[:2]]
    assert first_two == ["make course", "make test"], first_two
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.M), ".ci/run must call the README's test command"


def test_layout_holds_what_it_is_for() -> None:
    """The user's layout: nine chapters in notebooks/, the package, data/ with its README and the split files (never
    the data itself), tests/, and environment.yml naming the packages the user asked for."""
    chapters = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert [c[:3] for c in chapters] == [f"{i:02d}_" for i in range(9)], chapters
    assert (ROOT / "mlcourse" / "__init__.py").is_file() and (ROOT / "mlcourse" / "course" / "__init__.py").is_file()
    tracked = subprocess.run(["git", "ls-files", "data"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if tracked:  # a git checkout: only the README and the split lists are committed under data/
        assert all(p == "data/README.md" or p.startswith("data/splits/") for p in tracked), tracked
        assert "data/splits/omniglot_vinyals.json" in tracked
    assert len(list((ROOT / "tests").glob("test_*.py"))) >= 30
    env = (ROOT / "environment.yml").read_text()
    for package in ("jupyterlab", "torch", "ipywidgets", "matplotlib", "nbval"):
        assert re.search(rf"^\s*- {package}\b", env, flags=re.M), package
    assert "learn2learn" in env and "scripts/install_learn2learn.sh" in env  # the optional extra: how to install it


def test_package_and_learn2learn_import_in_this_environment() -> None:
    import learn2learn  # noqa: F401  (built from source by scripts/install_learn2learn.sh)

    import mlcourse

    assert learn2learn.__version__ == "0.2.0"
    assert mlcourse.__version__
