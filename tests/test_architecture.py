"""The package's architecture, beyond what import-linter checks (``make test`` runs ``lint-imports``):
where the library and the course live, and no hidden edges between the package's own modules."""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

import mlcourse

PACKAGE = Path(mlcourse.__file__).parent
NOTEBOOKS = PACKAGE.parent / "notebooks"
LOCAL_IMPORT_REASON = "# local import:"


def _own_module(node: ast.stmt) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] == "mlcourse"
    return isinstance(node, ast.Import) and any(a.name.split(".")[0] == "mlcourse" for a in node.names)


def _function_local_imports(path: Path) -> list[tuple[int, str]]:
    source = path.read_text()
    lines = source.splitlines()
    found = []
    for func in ast.walk(ast.parse(source)):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and _own_module(node):
                if LOCAL_IMPORT_REASON not in lines[node.lineno - 1]:
                    found.append((node.lineno, lines[node.lineno - 1].strip()))
    return found


def test_no_hidden_imports_of_the_package_s_own_modules():
    """A function-local import hides an edge from import-linter; one is allowed only with its reason on the line."""
    offenders = {
        str(p.relative_to(PACKAGE.parent)): hits
        for p in sorted(PACKAGE.rglob("*.py"))
        if (hits := _function_local_imports(p))
    }
    assert not offenders, offenders


def test_the_checker_finds_a_hidden_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\n\ndef f():\n    from mlcourse import train\n    from . import data  # local import: cycle\n"
        "    import json\n    return train\n"
    )
    assert _function_local_imports(sample) == [(4, "from mlcourse import train")]


MAX_FUNCTION_LINES = 60


def _long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """``(name, lines)`` of every function in ``path`` longer than ``limit`` lines (signature and docstring included)."""
    tree = ast.parse(path.read_text())
    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > limit
    ]


def test_no_function_in_the_package_is_longer_than_60_lines():
    """A long function does several jobs: each job gets a name instead."""
    offenders = {
        str(p.relative_to(PACKAGE.parent)): hits for p in sorted(PACKAGE.rglob("*.py")) if (hits := _long_functions(p))
    }
    assert not offenders, offenders


def test_the_length_checker_counts_a_function_s_lines(tmp_path):
    sample = tmp_path / "sample.py"
    body = "".join(f"    x{i} = {i}\n" for i in range(5))
    sample.write_text(f"def short():\n{body}\n\ndef outer():\n    def inner():\n{body.replace('    ', '        ')}")
    assert _long_functions(sample, limit=5) == [("short", 6), ("outer", 7), ("inner", 6)]


def test_folders_name_the_layers():
    """A newcomer finds the algorithm core, the training loop and each chapter's code from the names alone."""
    assert (PACKAGE / "algorithms" / "core.py").is_file() and (PACKAGE / "train" / "loop.py").is_file()
    course = PACKAGE / "course"
    chapters = sorted(p.name for p in course.iterdir() if re.fullmatch(r"ch\d\d", p.name))
    notebooks = sorted(p.name[:2] for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert [c[2:] for c in chapters] == notebooks, "one course folder per chapter"
    assert all((course / c / "__init__.py").is_file() for c in chapters)
    assert not list(course.glob("ch[0-9][0-9]*.py")), "a chapter's code lives in its folder"
    library = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if p.is_dir()}
    for course_only in ("experiments", "widgets", "plots", "exercises", "bilevel", "project", "scaling", "sinusoid"):
        assert course_only not in library, f"{course_only} belongs under mlcourse/course/"


def _notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def test_each_notebook_imports_its_own_chapter_folder_and_calls_only_what_it_names():
    """A notebook reaches chapter code through its own folder's ``__init__`` (its ``__all__``), never through
    another chapter's folder or a module inside one."""
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        chapter, code = f"ch{path.name[:2]}", _notebook_code(path)
        imported = set(re.findall(r"from mlcourse\.course(?:\.(ch\d\d)[.\w]*)? import ([\w, ]+)", code))
        folders = {m for m, _ in imported if m} | {
            n.strip() for m, names in imported if not m for n in names.split(",") if re.fullmatch(r"ch\d\d", n.strip())
        }
        assert folders <= {chapter}, (path.name, folders)
        module = importlib.import_module(f"mlcourse.course.{chapter}")
        called = set(re.findall(rf"(?<![\w.]){chapter}\.(\w+)", code))
        assert called <= set(module.__all__), (path.name, sorted(called - set(module.__all__)))
        assert all(hasattr(module, name) for name in module.__all__), path.name


def test_no_name_a_chapter_folder_exports_hides_one_of_its_modules():
    """``from mlcourse.course.ch08 import sweeps`` must give the module: a function of the same name exported by the
    folder's ``__init__`` would shadow it."""
    for folder in sorted((PACKAGE / "course").glob("ch[0-9][0-9]")):
        module = importlib.import_module(f"mlcourse.course.{folder.name}")
        modules = {p.stem for p in folder.glob("*.py")} - {"__init__"}
        assert not modules & set(module.__all__), (folder.name, sorted(modules & set(module.__all__)))


def _entry_points(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in ("main", "_main")]
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            found.append("if __name__ == '__main__'")
    return found


def test_one_command_line_entry():
    """`mlcourse` is the only entry point: no other module of the package parses a command line of its own."""
    mains = {
        str(p.relative_to(PACKAGE.parent)): e
        for p in PACKAGE.rglob("*.py")
        if p.name not in ("cli.py", "__main__.py") and (e := _entry_points(p))
    }
    assert mains == {}
    assert _entry_points(PACKAGE / "cli.py") == ["main", "if __name__ == '__main__'"]
