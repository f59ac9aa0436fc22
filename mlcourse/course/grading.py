"""Graded exercises with nbgrader: the student version of a chapter and the grading of filled-in notebooks.

The committed notebooks are the **instructor version**: an exercise is a solution cell (nbgrader metadata
``solution``; the answer between ``### BEGIN SOLUTION`` and ``### END SOLUTION``) followed by a locked, graded test
cell (``grade``, ``points``) whose visible assertions a student sees and whose ``### BEGIN HIDDEN TESTS`` block only
the grader runs; a *think* question is a markdown cell with ``solution`` and ``grade`` set (a written answer, graded
by hand; its model answer between the same delimiters). nbgrader does the rest in a temporary course directory:

* ``mlcourse student-notebooks [CHAPTER ...] --out DIR`` (``make student``): ``nbgrader generate_assignment``:
  solutions replaced by ``raise NotImplementedError()``, model answers and hidden tests removed, outputs cleared.
* ``mlcourse grade PATH [--full]``: ``nbgrader autograde`` of one notebook or of every notebook in a folder against
  the instructor version (a student cannot edit the tests), executed in fast mode unless ``--full``; prints each
  exercise's points, and "needs manual grading" for the think questions.

The visible tests call the property checks of ``mlcourse.course.exercises`` (pass or fail with a hint, never an
expected value); the reference computations of the hidden tests are written in the hidden blocks themselves, so
neither the installed package nor the student version holds a solution.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from mlcourse.config import FAST_ENV, NOTEBOOKS, chapter_notebooks

STUDENT = "student"


def _nbgrader_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if "nbgrader" in c.get("metadata", {})]


def graded_chapters(directory: Path = NOTEBOOKS) -> list[Path]:
    """The chapter notebooks that carry nbgrader exercises (a graded test cell), in order."""
    return [
        p
        for p in chapter_notebooks(directory)
        if any(c["metadata"]["nbgrader"].get("grade") for c in _nbgrader_cells(p))
    ]


def _chapter(name: str, directory: Path = NOTEBOOKS) -> Path:
    """``"08"``, ``"08_scalability"`` or a path -> the notebook."""
    path = Path(name)
    if path.suffix == ".ipynb" and path.exists():
        return path
    found = sorted(directory.glob(f"{name}*.ipynb"))
    if len(found) != 1:
        known = ", ".join(p.stem for p in graded_chapters(directory)) or "none"
        raise ValueError(f"chapter {name!r} names {len(found)} notebooks; graded chapters: {known}")
    return found[0]


def _nbgrader(root: Path, *args: str, timeout: int = 1800, fast: bool = True) -> None:
    """Run an nbgrader command in the course directory ``root``; notebooks execute in fast mode unless ``fast`` is
    False (``MLCOURSE_FAST=0``: the chapter's full scale, up to an hour for some chapters)."""
    command = [
        sys.executable,
        "-m",
        "nbgrader",
        *args,
        f"--CourseDirectory.root={root}",
        f"--db=sqlite:///{root / 'gradebook.db'}",
    ]
    # nbgrader runs `alembic` (its database migrations) from the PATH: the tools of this Python's environment first
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    env[FAST_ENV] = "1" if fast else "0"
    try:
        proc = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"nbgrader {args[0]} took longer than {timeout} s and was stopped; pass a larger --timeout"
        ) from None
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"nbgrader {args[0]} failed ({proc.returncode}): {tail}")


def _release(root: Path, notebook: Path) -> Path:
    """Put ``notebook`` into a course directory as assignment ``notebook.stem`` and generate its student version."""
    source = root / "source" / notebook.stem
    source.mkdir(parents=True, exist_ok=True)
    shutil.copy(notebook, source / notebook.name)
    _nbgrader(root, "generate_assignment", notebook.stem, "--force")
    return root / "release" / notebook.stem / notebook.name


def student_notebooks(chapters: Optional[Iterable[str]] = None, out: str | os.PathLike = "build/student") -> list[Path]:
    """Write the student version of each chapter (default: every graded chapter) into ``out``."""
    paths = [_chapter(c) for c in chapters] if chapters else graded_chapters()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="mlcourse-nbgrader-") as tmp:
        for notebook in paths:
            target = out / notebook.name
            shutil.copy(_release(Path(tmp), notebook), target)
            written.append(target)
    return written


@dataclass
class ExerciseGrade:
    """One graded cell: its ``grade_id``, the points scored (``None``: a written answer not graded by hand yet) and the
    points available."""

    grade_id: str
    score: Optional[float]
    max_score: float

    @property
    def needs_manual_grading(self) -> bool:
        return self.score is None


@dataclass
class Report:
    """The grades of one submission of one chapter."""

    notebook: str
    grades: list[ExerciseGrade]
    submission: str = ""

    @property
    def score(self) -> float:
        """Points scored so far (answers waiting for a human grader count 0 here)."""
        return sum(g.score or 0.0 for g in self.grades)

    @property
    def max_score(self) -> float:
        return sum(g.max_score for g in self.grades)

    @property
    def pending(self) -> list[str]:
        """The grade ids still to be graded by hand."""
        return [g.grade_id for g in self.grades if g.needs_manual_grading]

    def __str__(self) -> str:
        lines = [
            f"{g.grade_id}: needs manual grading (of {g.max_score:g})"
            if g.needs_manual_grading
            else f"{g.grade_id}: {g.score:g} / {g.max_score:g}"
            for g in self.grades
        ]
        pending = sum(g.max_score for g in self.grades if g.needs_manual_grading)
        total = f"{self.notebook}: {self.score:g} / {self.max_score:g} points"
        if pending:
            total += f" ({pending:g} of them wait for manual grading)"
        head = [f"== {self.submission}"] if self.submission else []
        return "\n".join([*head, *lines, total])


def _chapter_of(submitted: Path, chapter: Optional[str]) -> Path:
    """The instructor notebook a submission belongs to: ``chapter``, else the file name's prefix (``08_...``), else
    the grade ids of its nbgrader cells (``ch08-ex1-answer``)."""
    if chapter:
        return _chapter(chapter)
    prefix = submitted.stem.split("_")[0]
    if prefix.isdigit() and len(sorted(NOTEBOOKS.glob(f"{prefix}*.ipynb"))) == 1:
        return _chapter(prefix)
    try:
        ids = [c["metadata"]["nbgrader"].get("grade_id", "") for c in _nbgrader_cells(submitted)]
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{submitted} is not a notebook ({exc})") from exc
    found = {i[2:4] for i in ids if i.startswith("ch") and i[2:4].isdigit()}
    if len(found) != 1:
        raise ValueError(f"cannot tell which chapter {submitted.name} belongs to; name it NN_... or pass --chapter")
    return _chapter(found.pop())


def _autograde(instructor: Path, submissions: list[Path], *, full: bool, timeout: int) -> list[Report]:
    """Grade every submission of one chapter in one nbgrader course directory (one student per submission)."""
    from nbgrader.api import Gradebook  # noqa: PLC0415 - third party, only when grading

    students = [f"{STUDENT}{i:03d}" for i in range(len(submissions))]
    graded = [
        (c["metadata"]["nbgrader"]["grade_id"], c["cell_type"])
        for c in _nbgrader_cells(instructor)
        if c["metadata"]["nbgrader"].get("grade")
    ]
    with tempfile.TemporaryDirectory(prefix="mlcourse-nbgrader-") as tmp:
        root = Path(tmp)
        _release(root, instructor)
        for student, path in zip(students, submissions):
            target = root / "submitted" / student / instructor.stem
            target.mkdir(parents=True)
            shutil.copy(path, target / instructor.name)
        _nbgrader(
            root,
            "autograde",
            instructor.stem,
            "--create",
            "--force",
            f"--ExecutePreprocessor.timeout={timeout}",
            timeout=(timeout * 2 + 300) * len(submissions),  # each submission executes the whole notebook
            fast=not full,
        )
        reports = []
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
            for student, path in zip(students, submissions):
                grades = []
                for grade_id, _ in graded:
                    g = gradebook.find_grade(grade_id, instructor.stem, instructor.stem, student)
                    score = g.manual_score if g.manual_score is not None else g.auto_score
                    grades.append(ExerciseGrade(grade_id, None if score is None else float(score), float(g.max_score)))
                reports.append(Report(instructor.stem, grades, submission=str(path)))
    return reports


def grade(
    submitted: str | os.PathLike, chapter: Optional[str] = None, timeout: int = 600, *, full: bool = False
) -> Report:
    """Grade one filled-in student notebook with ``nbgrader autograde`` against the instructor version of its chapter
    (found from the file name unless ``chapter`` is given): the graded cells come from the instructor version. The
    notebook runs in fast mode (``MLCOURSE_FAST=1``) unless ``full``; ``timeout``: seconds allowed per cell."""
    submitted = Path(submitted)
    if not submitted.is_file():
        raise FileNotFoundError(f"no notebook {str(submitted)!r} to grade")
    return _autograde(_chapter_of(submitted, chapter), [submitted], full=full, timeout=timeout)[0]


def grade_folder(
    folder: str | os.PathLike, chapter: Optional[str] = None, timeout: int = 600, *, full: bool = False
) -> list[Report]:
    """Grade every ``*.ipynb`` in ``folder`` (one nbgrader run per chapter), in file-name order; the chapter of each
    comes from ``chapter``, its file name or its graded cells."""
    folder = Path(folder)
    paths = sorted(folder.glob("*.ipynb"))
    if not folder.is_dir() or not paths:
        raise FileNotFoundError(f"no notebooks (*.ipynb) to grade in {str(folder)!r}")
    by_chapter: dict[Path, list[Path]] = {}
    for path in paths:
        by_chapter.setdefault(_chapter_of(path, chapter), []).append(path)
    reports = [r for nb, subs in by_chapter.items() for r in _autograde(nb, subs, full=full, timeout=timeout)]
    return sorted(reports, key=lambda r: paths.index(Path(r.submission)))


__all__ = ["graded_chapters", "student_notebooks", "grade", "grade_folder", "Report", "ExerciseGrade"]
