"""The course's commands of the ``mlcourse`` command line: the chapters' full-scale experiments, the book and
grading, each a typed options dataclass (``mlcourse.cliparse.Command``). Registered through the entry-point group
``mlcourse.commands`` (pyproject), so that the library's entry point imports no course module for its own commands
(``mlcourse train`` loads no plotting library).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Optional

import tyro

from mlcourse.cliparse import CLIError, Command, Flag, arg, require
from mlcourse.config import fast_mode
from mlcourse.course import book, ch01, ch02, ch04, ch05, ch08, grading

CHAPTERS_HELP = "chapter numbers, e.g. 01 04"


@dataclass(frozen=True)
class StudentOptions:
    """Write the student version of the graded chapters (nbgrader: solutions and hidden tests removed)."""

    chapters: Annotated[
        tuple[str, ...], tyro.conf.Positional, arg(CHAPTERS_HELP, metavar="CHAPTER", default="every graded chapter")
    ] = ()
    out: Annotated[str, arg("folder for the student notebooks", metavar="DIR")] = "build/student"


@dataclass(frozen=True)
class BookOptions:
    """Build the course as a static HTML site, every chapter executed (make book)."""

    chapters: Annotated[
        tuple[str, ...], tyro.conf.Positional, arg(CHAPTERS_HELP, metavar="CHAPTER", default="every chapter")
    ] = ()
    out: Annotated[str, arg("folder of the site", metavar="DIR")] = "build/book"
    fast: Annotated[Flag, arg("fast mode, as CI builds it (default: $MLCOURSE_FAST)", default="")] = False
    all_full: Annotated[
        Flag,
        arg(
            "full mode for chapter 07 too: it then benchmarks this machine instead of reading the committed files",
            default="",
        ),
    ] = False
    timeout: Annotated[int, arg("seconds allowed per cell (>= 1)")] = 1800


@dataclass(frozen=True)
class GradeOptions:
    """Grade filled-in student notebooks (nbgrader autograde; fast mode unless --full)."""

    notebook: Annotated[
        str,
        tyro.conf.Positional,
        arg("a student's notebook (build/student/08_scalability.ipynb) or a folder of them", metavar="NOTEBOOK"),
    ]
    chapter: Annotated[
        Optional[str], tyro.conf.DisallowNone, arg("the chapter", default="from each file name or its graded cells")
    ] = None
    full: Annotated[Flag, arg("execute in full mode (MLCOURSE_FAST=0): up to 1 h a chapter", default="")] = False
    timeout: Annotated[
        Optional[int], tyro.conf.DisallowNone, arg("seconds allowed per cell (>= 1)", default="600; 3600 with --full")
    ] = None


def _cmd_student(args: StudentOptions) -> int:
    for path in grading.student_notebooks(list(args.chapters), args.out):
        print(f"wrote {path}")
    return 0


def _cmd_book(args: BookOptions) -> int:
    require(args.timeout >= 1, "--timeout", args.timeout, "an integer >= 1 (seconds per cell)")
    fast = args.fast or fast_mode()
    if args.all_full and fast:
        raise CLIError("--all-full and fast mode (--fast or MLCOURSE_FAST=1) exclude each other")
    index = book.build_book(
        args.out, fast=fast, all_full=args.all_full, selected=list(args.chapters), timeout=args.timeout
    )
    print(f"open {index} in a browser")
    return 0


def _cmd_grade(args: GradeOptions) -> int:
    timeout = args.timeout if args.timeout is not None else (3600 if args.full else 600)
    require(timeout >= 1, "--timeout", timeout, "an integer >= 1 (seconds per cell)")
    if os.path.isdir(args.notebook):
        reports = grading.grade_folder(args.notebook, args.chapter, timeout, full=args.full)
    else:
        reports = [grading.grade(args.notebook, args.chapter, timeout, full=args.full)]
    print("\n\n".join(str(r) for r in reports))
    return 0


def register() -> dict[str, Command]:
    """The course's subcommands: ``{name: Command}``, each chapter's own (its ``COMMANDS``) and the book's."""
    return {
        **ch01.COMMANDS,
        **ch02.COMMANDS,
        **ch04.COMMANDS,
        **ch05.COMMANDS,
        **ch08.COMMANDS,
        "student-notebooks": Command(
            "write the student version of the graded chapters (nbgrader)", StudentOptions, _cmd_student
        ),
        "book": Command(
            "build the course as a static HTML site, every chapter executed (make book)", BookOptions, _cmd_book
        ),
        "grade": Command(
            "grade filled-in student notebooks (nbgrader autograde; fast mode unless --full)",
            GradeOptions,
            _cmd_grade,
        ),
    }
