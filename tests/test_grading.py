"""Graded exercises (nbgrader): the instructor version's solutions pass their own tests (nbval runs the committed
notebooks), the generated student version runs top to bottom and fails exactly the graded code cells, neither the
student version nor the installed package holds a solution or a hidden test, and the grader scores a folder of
submissions exercise by exercise (think questions: "needs manual grading")."""

from __future__ import annotations

import io
import json
import re
import subprocess
import tokenize
from contextlib import redirect_stdout
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import mlcourse
from mlcourse import cli
from mlcourse.course import grading

pytestmark = pytest.mark.slow  # executes whole chapters through nbgrader: `make test` only, not `make test-fast`

CHAPTERS = grading.graded_chapters()
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


def _nbg(cell) -> dict:
    return cell["metadata"].get("nbgrader", {})


def _graded_code(nb) -> list[str]:
    return [_nbg(c)["grade_id"] for c in nb["cells"] if _nbg(c).get("grade") and c["cell_type"] == "code"]


def test_every_chapter_carries_graded_exercises_and_think_questions():
    assert [p.stem[:2] for p in CHAPTERS] == ["01", "02", "03", "04", "05", "06", "07", "08"]
    for path in CHAPTERS:
        cells = json.loads(path.read_text())["cells"]
        graded = [c for c in cells if _nbg(c).get("grade") and c["cell_type"] == "code"]
        solutions = [c for c in cells if _nbg(c).get("solution") and c["cell_type"] == "code"]
        think = [c for c in cells if _nbg(c).get("grade") and c["cell_type"] == "markdown"]
        assert 2 <= len(graded) <= 4 and len(solutions) == len(graded), path.name
        assert all(_nbg(c)["locked"] and _nbg(c)["points"] > 0 for c in graded)
        assert all("### BEGIN HIDDEN TESTS" in "".join(c["source"]) for c in graded)
        assert all("### BEGIN SOLUTION" in "".join(c["source"]) for c in solutions)
        assert 1 <= len(think) <= 2, path.name  # written answers, graded by hand, with a model answer
        assert all(
            _nbg(c)["solution"] and _nbg(c)["points"] > 0 and SOLUTION.search("".join(c["source"])) for c in think
        )


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    return {p.stem: p for p in grading.student_notebooks([p.stem[:2] for p in CHAPTERS], out)}


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_the_student_version_runs_and_fails_exactly_the_graded_cells(path, student, monkeypatch):
    monkeypatch.setenv("MLCOURSE_FAST", "1")
    nb = nbformat.read(student[path.stem], as_version=4)
    text = json.dumps(nb)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "raise NotImplementedError()" in text
    assert "YOUR ANSWER HERE" in text  # the think questions' answer cells
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    NotebookClient(nb, timeout=900, allow_errors=True, resources={"metadata": {"path": str(path.parent)}}).execute()
    failed = [
        c.metadata.get("nbgrader", {}).get("grade_id", c.get("id"))
        for c in nb.cells
        if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.get("outputs", []))
    ]
    assert failed == _graded_code(nb)


def _blocks(pattern: re.Pattern, cell_type: str = "code") -> list[str]:
    """The text of every solution or hidden-test block of the instructor notebooks."""
    found = []
    for path in CHAPTERS:
        for cell in json.loads(path.read_text())["cells"]:
            if _nbg(cell) and cell["cell_type"] == cell_type:
                found += pattern.findall("".join(cell["source"]))
    return found


def _markdown() -> list[str]:
    return [
        "".join(c["source"])
        for path in CHAPTERS
        for c in json.loads(path.read_text())["cells"]
        if c["cell_type"] == "markdown"
    ]


def _numbers(code: str) -> set[str]:
    """Numeric literals of 3 significant digits or more, normalised (``123_456`` -> ``123456``)."""
    out = set()
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return out
    for tok in tokens:
        if tok.type == tokenize.NUMBER:
            digits = re.sub(r"[eE][-+]?\d+$", "", tok.string.replace("_", "")).replace(".", "").strip("0")
            if len(digits) >= 3:
                out.add(tok.string.replace("_", ""))
    return out


def _package_sources() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in Path(mlcourse.__file__).parent.rglob("*.py"))


def test_no_solution_or_hidden_test_in_the_student_version_or_the_package(student):
    """What the hidden tests and solutions hold, collected from the instructor notebooks: the names they define, their
    numeric literals (those the exercise statements do not give), their assertions, the solution blocks and the lines
    of the model answers, none of which may appear in the student version or in the installed package; and no hidden
    test imports from ``mlcourse.course.exercises`` (nothing there is a solution)."""
    hidden, solutions = _blocks(HIDDEN), _blocks(SOLUTION)
    assert len(hidden) >= 20 and len(solutions) >= 20
    blocks = hidden + solutions
    names = {n for b in blocks for n in re.findall(r"^\s*def (\w+)", b, re.M)} - {"answer"}
    stated = set(re.findall(r"\d[\d.]*", "\n".join(_markdown())))  # constants the exercise statements give (1.96)
    numbers = set().union(*(_numbers(b) for b in hidden)) - stated
    asserts = {line.strip() for b in hidden for line in b.splitlines() if line.strip().startswith("assert ")}
    answers = {_squeeze(b) for b in solutions}
    prose = {line.strip() for b in _blocks(SOLUTION, "markdown") for line in b.splitlines() if len(line.strip()) > 30}
    assert not any("mlcourse.course.exercises" in b for b in hidden)
    package = _package_sources()
    student_code = {
        stem: "\n".join(c.source for c in nbformat.read(p, as_version=4).cells) for stem, p in student.items()
    }
    for where, text in [("the package", package), *student_code.items()]:
        assert not [n for n in names if re.search(rf"\b{n}\b", text)], where
        assert not numbers & _numbers(text), where
        assert not [line for line in asserts | prose if line in text], where
        assert not [a for a in answers if a in _squeeze(text)], where


def _squeeze(code: str) -> str:
    """Code without comments and with whitespace collapsed, to find a solution block inside other text."""
    return " ".join(re.sub(r"#.*", "", code).split())


def _solved(instructor: Path, target: Path) -> Path:
    """The instructor version with the delimiters removed: every answer right, the model answers as written ones."""
    nb = nbformat.read(instructor, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = "\n".join(line for line in cell.source.splitlines() if "### " not in line)
    nbformat.write(nb, target)
    return target


@pytest.mark.slow
def test_the_grader_scores_a_folder_of_submissions(student, tmp_path, capsys):
    """Chapter 03 in fast mode, through the command line: right (the instructor's answers), wrong (each answer a
    plausible mistake) and empty (the student version) in one folder."""
    from exercise_cells import with_body
    from test_exercises import WRONG

    wrong = {}  # the first plausible mistake listed for each of chapter 03's answers
    for chapter_id, answer_id, (body, _) in WRONG:
        if chapter_id == "03":
            wrong.setdefault(answer_id, body)

    chapter = next(p for p in CHAPTERS if p.stem.startswith("03"))
    folder = tmp_path / "submissions"
    folder.mkdir()
    _solved(chapter, folder / "03_right.ipynb")
    nb = nbformat.read(student[chapter.stem], as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in wrong:
            cell.source = with_body("03", grade_id, wrong[grade_id])
    nbformat.write(nb, folder / "03_wrong.ipynb")
    (folder / "03_empty.ipynb").write_bytes(student[chapter.stem].read_bytes())

    with redirect_stdout(io.StringIO()) as out:
        assert cli.main(["grade", str(folder)]) == 0
    printed = {
        Path(block.splitlines()[0]).stem: block for block in out.getvalue().split("== ")[1:]
    }  # one block per submission, in file-name order
    assert list(printed) == ["03_empty", "03_right", "03_wrong"]
    empty, right, wrong = (_scores(printed[k]) for k in ("03_empty", "03_right", "03_wrong"))
    code = [i for i in right if i.endswith("-tests")]
    assert len(code) == 4 and right.keys() == wrong.keys() == empty.keys()
    assert all(right[i] == 1.0 for i in code) and all(wrong[i] == 0.0 and empty[i] == 0.0 for i in code)
    assert right["ch03-think1"] is None  # a written answer waits for a human grader
    assert not empty["ch03-think1"]  # an unanswered question scores nothing (0, or not graded yet)
    assert "4 / 5 points (1 of them wait for manual grading)" in printed["03_right"]


def _scores(block: str) -> dict:
    """``grade_id -> points`` (``None``: needs manual grading) from one submission's printed report."""
    scores = {}
    for line in block.splitlines()[1:]:
        if m := re.match(r"(ch\d\d-[\w-]+): needs manual grading", line):
            scores[m.group(1)] = None
        elif m := re.match(r"(ch\d\d-[\w-]+): ([\d.]+) / ", line):
            scores[m.group(1)] = float(m.group(2))
    return scores


def test_nbgrader_past_its_time_limit_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    def too_slow(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], kwargs.get("timeout"))

    monkeypatch.setattr(grading.subprocess, "run", too_slow)
    with pytest.raises(RuntimeError, match="took longer than 5 s and was stopped; pass a larger --timeout"):
        grading._nbgrader(tmp_path, "autograde", "03_algorithms", timeout=5)
