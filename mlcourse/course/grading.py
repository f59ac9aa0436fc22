"""Graded exercises with nbgrader: the student version of a chapter and the grading of a filled-in notebook.

The committed notebooks are the **instructor version**: an exercise is a solution cell (nbgrader metadata
``solution``; the answer between ``### BEGIN SOLUTION`` and ``### END SOLUTION``) followed by a locked, graded test
cell (``grade``, ``points``) whose visible assertions a student sees and whose ``### BEGIN HIDDEN TESTS`` block only
the grader runs. nbgrader does the rest in a temporary course directory:

* ``mlcourse student-notebooks [CHAPTER ...] --out DIR`` (``make student``): ``nbgrader generate_assignment``:
  solutions replaced by ``raise NotImplementedError()``, hidden tests and outputs removed.
* ``mlcourse grade NOTEBOOK``: ``nbgrader autograde`` against the instructor version: the graded cells are restored
  from it (a student cannot edit the tests), the notebook is executed, and each exercise's points are printed.

Every chapter with exercises (01-08) is graded this way (:func:`graded_chapters`); the visible tests call the
checkers of ``mlcourse.course.exercises``, the hidden ones compare with its reference solutions on other inputs.
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

from mlcourse.config import NOTEBOOKS, chapter_notebooks

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


def _nbgrader(root: Path, *args: str, timeout: int = 1800) -> None:
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
    proc = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=timeout, env=env)
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
    """One graded cell: its ``grade_id``, the points scored and the points available."""

    grade_id: str
    score: float
    max_score: float


@dataclass
class Report:
    notebook: str
    grades: list[ExerciseGrade]

    @property
    def score(self) -> float:
        return sum(g.score for g in self.grades)

    @property
    def max_score(self) -> float:
        return sum(g.max_score for g in self.grades)

    def __str__(self) -> str:
        lines = [f"{g.grade_id}: {g.score:g} / {g.max_score:g}" for g in self.grades]
        return "\n".join([*lines, f"{self.notebook}: {self.score:g} / {self.max_score:g} points"])


def grade(submitted: str | os.PathLike, chapter: Optional[str] = None, timeout: int = 1800) -> Report:
    """Grade a filled-in student notebook with ``nbgrader autograde`` against the instructor version of its chapter
    (found from the file name unless ``chapter`` is given): the graded cells come from the instructor version."""
    from nbgrader.api import Gradebook  # noqa: PLC0415 - third party, only when grading

    submitted = Path(submitted)
    if not submitted.is_file():
        raise FileNotFoundError(f"no notebook {str(submitted)!r} to grade")
    instructor = _chapter(chapter or submitted.stem.split("_")[0])
    with tempfile.TemporaryDirectory(prefix="mlcourse-nbgrader-") as tmp:
        root = Path(tmp)
        _release(root, instructor)
        target = root / "submitted" / STUDENT / instructor.stem
        target.mkdir(parents=True)
        shutil.copy(submitted, target / instructor.name)
        _nbgrader(
            root,
            "autograde",
            instructor.stem,
            f"--student={STUDENT}",
            "--create",
            "--force",
            f"--ExecutePreprocessor.timeout={timeout}",
            timeout=timeout + 120,
        )
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
            cells = [
                c["metadata"]["nbgrader"]["grade_id"]
                for c in _nbgrader_cells(instructor)
                if c["metadata"]["nbgrader"].get("grade")
            ]
            grades = []
            for grade_id in cells:
                g = gradebook.find_grade(grade_id, instructor.stem, instructor.stem, STUDENT)
                grades.append(ExerciseGrade(grade_id, float(g.score), float(g.max_score)))
    return Report(instructor.stem, grades)


__all__ = ["graded_chapters", "student_notebooks", "grade", "Report", "ExerciseGrade"]
