"""Graded exercises (nbgrader): the instructor version's solutions pass their own tests (nbval runs the committed
notebooks), the generated student version runs top to bottom and fails exactly the graded cells, and the grader
scores a partly filled-in notebook exercise by exercise."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient

from mlcourse.course import grading

CHAPTERS = grading.graded_chapters()


def _graded(nb) -> list[str]:
    return [
        c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")
    ]


def test_some_chapters_carry_graded_exercises_with_points_and_hidden_tests():
    assert [p.stem[:2] for p in CHAPTERS] == ["01", "02", "03", "04", "05", "06", "07", "08"]
    for path in CHAPTERS:
        cells = json.loads(path.read_text())["cells"]
        graded = [c for c in cells if c["metadata"].get("nbgrader", {}).get("grade")]
        solutions = [c for c in cells if c["metadata"].get("nbgrader", {}).get("solution")]
        assert 2 <= len(graded) <= 4 and len(solutions) == len(graded)
        assert all(c["metadata"]["nbgrader"]["locked"] and c["metadata"]["nbgrader"]["points"] > 0 for c in graded)
        assert all("### BEGIN HIDDEN TESTS" in "".join(c["source"]) for c in graded)
        assert all("### BEGIN SOLUTION" in "".join(c["source"]) for c in solutions)


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
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    NotebookClient(nb, timeout=900, allow_errors=True, resources={"metadata": {"path": str(path.parent)}}).execute()
    failed = [
        c.metadata.get("nbgrader", {}).get("grade_id", c.get("id"))
        for c in nb.cells
        if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.get("outputs", []))
    ]
    assert failed == _graded(nb)


@pytest.mark.slow
def test_the_grader_scores_each_exercise(student, tmp_path, monkeypatch):
    """A student version with only exercise 2 answered (the instructor's solution pasted in) scores 1 of 3."""
    monkeypatch.setenv("MLCOURSE_FAST", "1")
    chapter = next(p for p in CHAPTERS if p.stem.startswith("08"))
    instructor = nbformat.read(chapter, as_version=4)
    nb = nbformat.read(student[chapter.stem], as_version=4)
    solution = next(c for c in instructor.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ch08-ex2-answer")
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "ch08-ex2-answer":
            cell.source = "\n".join(line for line in solution.source.splitlines() if "### " not in line)
    filled = tmp_path / chapter.name
    nbformat.write(nb, filled)
    report = grading.grade(filled)
    assert [(g.grade_id, g.score, g.max_score) for g in report.grades] == [
        ("ch08-ex1-tests", 0.0, 1.0),
        ("ch08-ex2-tests", 1.0, 1.0),
        ("ch08-ex3-tests", 0.0, 1.0),
    ]
    assert "1 / 3 points" in str(report)
