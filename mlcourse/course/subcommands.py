"""The course's commands of the ``mlcourse`` command line: the chapters' full-scale experiments, the book and
grading. Registered through the entry-point group ``mlcourse.commands`` (pyproject), so that the library's entry
point imports no course module for its own commands (``mlcourse train`` loads no plotting library).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from mlcourse.cliparse import CLIError
from mlcourse.config import fast_mode
from mlcourse.course import book, ch05_project, ch08_scaling, experiments, grading

Handler = Callable[[argparse.Namespace], int]


def register(commands: argparse._SubParsersAction) -> dict[str, Handler]:
    """Add the course's subcommands to ``commands``; returns ``{name: handler}``."""
    _experiments(commands)
    _book_and_grading(commands)
    ch05_project.add_arguments(
        commands.add_parser(
            "cifar-grid", help="chapter 05: the comparison grid at full scale (a results.json per variant)"
        )
    )
    ch08_scaling.add_arguments(
        commands.add_parser("scaling", help="chapter 08: time and memory sweeps (or --distributed: 1 vs 2 processes)")
    )
    return {
        "scratch-baseline": experiments.run_scratch,
        "sinusoid-paper": experiments.run,
        "blackbox-vs-maml": experiments.run,
        "blackbox-ood": experiments.run,
        "article-vs-maml": experiments.run,
        "student-notebooks": _cmd_student,
        "grade": _cmd_grade,
        "book": _cmd_book,
        "cifar-grid": ch05_project.run,
        "scaling": ch08_scaling.run,
    }


def _experiments(commands: argparse._SubParsersAction) -> None:
    """The chapters' full-scale experiments (each writes a committed results file)."""
    experiments.add_sinusoid_arguments(
        commands.add_parser(
            "sinusoid-paper", help="chapter 02: the MAML paper's sinusoid run at full scale (resumable)"
        )
    )
    experiments.add_arguments(
        commands.add_parser(
            "article-vs-maml",
            help="chapter 04: the article's rule vs MAML at full size (results/ch04_article_vs_maml.json)",
        )
    )
    experiments.add_scratch_arguments(
        commands.add_parser(
            "scratch-baseline", help="chapter 01: a fresh Conv-4 trained on each test task's support set"
        )
    )
    experiments.add_arguments(
        commands.add_parser(
            "blackbox-vs-maml", help="chapter 08: a black-box (in-context) learner against MAML on the sinusoids"
        )
    )
    experiments.add_ood_arguments(
        commands.add_parser(
            "blackbox-ood",
            help="chapter 08: the black-box learner and MAML on sinusoids outside the training range",
            description="Chapter 08: the black-box learner and MAML on sinusoids outside the training range "
            "(results/ch08_blackbox_ood.json).",
        )
    )


def _book_and_grading(commands: argparse._SubParsersAction) -> None:
    """``student-notebooks``, ``book`` and ``grade``."""
    s = commands.add_parser("student-notebooks", help="write the student version of the graded chapters (nbgrader)")
    s.add_argument("chapters", nargs="*", help="e.g. 08 (default: every chapter with graded exercises)")
    s.add_argument("--out", default="build/student", help="folder for the student notebooks (default build/student)")
    b = commands.add_parser("book", help="build the course as a static HTML site, every chapter executed (make book)")
    b.add_argument("chapters", nargs="*", help="e.g. 01 04 (default: every chapter)")
    b.add_argument("--out", default="build/book", help="folder of the site (default build/book)")
    b.add_argument("--fast", action="store_true", help="fast mode, as CI builds it (default: $MLCOURSE_FAST)")
    b.add_argument(
        "--all-full",
        action="store_true",
        help="full mode for every chapter, also those that then train for 15-60 min each (02, 05, 06, 08)",
    )
    b.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    g = commands.add_parser(
        "grade", help="grade filled-in student notebooks (nbgrader autograde; fast mode unless --full)"
    )
    g.add_argument("notebook", help="a student's notebook (build/student/08_scalability.ipynb) or a folder of them")
    g.add_argument("--chapter", default=None, help="the chapter (default: from each file name or its graded cells)")
    g.add_argument("--full", action="store_true", help="execute in full mode (MLCOURSE_FAST=0): up to 1 h a chapter")
    g.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell (default 600; 3600 with --full)")


def _cmd_student(args: argparse.Namespace) -> int:
    for path in grading.student_notebooks(args.chapters, args.out):
        print(f"wrote {path}")
    return 0


def _cmd_book(args: argparse.Namespace) -> int:
    if args.timeout < 1:
        raise CLIError(f"--timeout {args.timeout} is not allowed; allowed: an integer >= 1 (seconds per cell)")
    fast = args.fast or fast_mode()
    if args.all_full and fast:
        raise CLIError("--all-full and fast mode (--fast or MLCOURSE_FAST=1) exclude each other")
    index = book.build_book(args.out, fast=fast, all_full=args.all_full, selected=args.chapters, timeout=args.timeout)
    print(f"open {index} in a browser")
    return 0


def _cmd_grade(args: argparse.Namespace) -> int:
    timeout = args.timeout if args.timeout is not None else (3600 if args.full else 600)
    if timeout < 1:
        raise CLIError(f"--timeout {timeout} is not allowed; allowed: an integer >= 1 (seconds per cell)")
    if os.path.isdir(args.notebook):
        reports = grading.grade_folder(args.notebook, args.chapter, timeout, full=args.full)
    else:
        reports = [grading.grade(args.notebook, args.chapter, timeout, full=args.full)]
    print("\n\n".join(str(r) for r in reports))
    return 0
