"""The syllabus: one path through the course, shown by chapter 00 and by the book's index (:func:`syllabus_html`).

What is editorial is data here: which chapters are core and which optional, what each needs first
(:data:`CHAPTERS`), and three tracks: a 90-minute classroom walkthrough (:data:`WALKTHROUGH`: which sections to run
live and which figures to show from the built book, named by their headings), two weeks of self-study
(:data:`TWO_WEEKS`) and the full course with every exercise. Nothing measured or counted is typed: reading and
exercise times are counted from the notebooks each time the syllabus is rendered (the rules are the constants below
and are printed with the table), and compute times are read from the newest committed book builds in
``results/book/`` (``build-full-*.json``, written by ``make book``; ``build-fast-*.json``, by
``MLCOURSE_FAST=1 make book``).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import nbformat

from mlcourse.config import NOTEBOOKS, REPO_ROOT, chapter_notebooks
from mlcourse.provenance import read as read_provenance

BOOK_RESULTS = REPO_ROOT / "results" / "book"

# Reading: prose at a technical reading pace, each displayed equation worked through, the chapter's code read
# (exercise cells are counted as exercise time instead).
WORDS_PER_MINUTE = 200
MINUTES_PER_DISPLAYED_EQUATION = 2
CODE_LINES_PER_MINUTE = 10
# Exercises, two kinds: code (an nbgrader solution code cell: read the statement, write the reference solution's
# lines, run the checks) and written (a solution Markdown cell: think, then write an answer as long as the reference
# answer); either gets a derivation on paper where its statement has mathematics.
EXERCISE_BASE_MINUTES = 20
EXERCISE_MINUTES_PER_SOLUTION_LINE = 3
WRITTEN_BASE_MINUTES = 10
WRITTEN_WORDS_PER_MINUTE = 20
EXERCISE_MATH_MINUTES = 10
READING_RULE = (
    f"reading = Markdown words at {WORDS_PER_MINUTE} words/min + {MINUTES_PER_DISPLAYED_EQUATION} min per displayed "
    f"equation + code (not the exercises') at {CODE_LINES_PER_MINUTE} lines/min"
)
EXERCISE_RULE = (
    f"a code exercise = {EXERCISE_BASE_MINUTES} min + {EXERCISE_MINUTES_PER_SOLUTION_LINE} min per line of the "
    f"reference solution; a written exercise = {WRITTEN_BASE_MINUTES} min + the reference answer's words at "
    f"{WRITTEN_WORDS_PER_MINUTE} words/min; either + {EXERCISE_MATH_MINUTES} min when its statement has mathematics"
)
EXERCISE_KINDS = ("code", "written")


ROLES = ("core", "optional")


@dataclass(frozen=True)
class ChapterPlan:
    """A chapter's place in the course: ``core`` (the two-week track does its exercises) or ``optional``, the
    chapters it builds on, and in a line why it is there."""

    role: str
    prerequisites: tuple[str, ...]
    why: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"chapter role {self.role!r} is not known; allowed: {', '.join(ROLES)}")


CHAPTERS = {
    "00": ChapterPlan("core", (), "set-up: modes, devices, data; the map of the course and of the field"),
    "01": ChapterPlan("core", ("00",), "the few-shot problem and the evaluation protocol"),
    "02": ChapterPlan("core", ("01",), "inner and outer loop, meta-knowledge, fast adaptation"),
    "03": ChapterPlan("core", ("02",), "the algorithms, compared on one protocol"),
    "04": ChapterPlan("core", ("02", "03"), "the true meta-gradient; the article's rule is not MAML"),
    "05": ChapterPlan("core", ("01", "03"), "class splits, stratified tasks, 95 % intervals, published numbers"),
    "06": ChapterPlan("optional", ("03",), "five applications, one task distribution each"),
    "07": ChapterPlan("optional", ("03", "04"), "learn2learn, higher, torchmeta against the course's core"),
    "08": ChapterPlan("core", ("03", "04"), "what a meta-iteration costs: the article's subject"),
}


@dataclass(frozen=True)
class WalkthroughStep:
    """One step of the 90-minute lecture: a section of a chapter (its heading), run live or shown from the book."""

    chapter: str
    section: str
    action: str
    minutes: int
    show: str


LIVE, BOOK = "run live", "show from the book"
# The lecturer runs each chapter of the walkthrough (Run All, full mode) before class and re-runs the live sections.
WALKTHROUGH = (
    WalkthroughStep("00", "6 · A map of the field", BOOK, 5, "the three families of meta-learners"),
    WalkthroughStep("01", "1 · Few-shot classification, made concrete", BOOK, 5, "one 5-way 5-shot task"),
    WalkthroughStep("01", "2 · Three ways to solve a task", BOOK, 10, "scratch vs fine-tuning vs ProtoNet, 95 % CI"),
    WalkthroughStep("02", "1 · Meta-optimisation: an inner loop inside an outer loop", BOOK, 5, "the two loops"),
    WalkthroughStep(
        "02", "Fast adaptation in a picture: a decision boundary that moves", LIVE, 5, "one inner step moves it"
    ),
    WalkthroughStep(
        "03",
        "3 · Omniglot (eight runs: the article's five algorithms, first-order MAML, ANIL and Proto-MAML)",
        BOOK,
        10,
        "one table of every algorithm on one protocol, published numbers beside",
    ),
    WalkthroughStep("03", "4 · Try it: α, β, K and inner steps", LIVE, 5, "the sliders: α too large overshoots"),
    WalkthroughStep("04", "2 · The exact meta-gradient (one inner step)", LIVE, 10, "the formula checked by autograd"),
    WalkthroughStep("04", "6 · The article's rule is joint training, not MAML", LIVE, 10, "the two gradients differ"),
    WalkthroughStep("05", "6 · Why test tasks must be uniform: measured", BOOK, 5, "stratified test tasks mislead"),
    WalkthroughStep("08", "3 · Time: growth exponents along five axes", BOOK, 10, "cost against steps, shots, width"),
    WalkthroughStep("08", "7 · Widget: re-measure at other inner steps and shots", LIVE, 5, "re-measure at K steps"),
    WalkthroughStep("08", "Summary", BOOK, 5, "what reduces MAML's cost; questions"),
)
WALKTHROUGH_MINUTES = 90


@dataclass(frozen=True)
class StudyDay:
    """One day of the two-week self-study track: chapters read and run in full mode, with or without exercises."""

    day: str
    chapters: tuple[str, ...]
    exercises: bool = True
    note: str = ""


# Two weeks, five days each: every core chapter with its exercises, the optional ones read and run, a day at the
# end of each week to finish the exercises not yet passed.
CATCH_UP = "catch up: finish the week's exercises that do not pass yet"
TWO_WEEKS = (
    StudyDay("week 1 · day 1", ("00", "01")),
    StudyDay("week 1 · day 2", ("02",)),
    StudyDay("week 1 · day 3", ("03",)),
    StudyDay("week 1 · day 4", ("04",)),
    StudyDay("week 1 · day 5", (), note=CATCH_UP),
    StudyDay("week 2 · day 1", ("05",)),
    StudyDay("week 2 · day 2", ("08",)),
    StudyDay("week 2 · day 3", ("06",), exercises=False, note="optional: read and run"),
    StudyDay("week 2 · day 4", ("07",), exercises=False, note="optional: read and run"),
    StudyDay("week 2 · day 5", (), note=CATCH_UP),
)

# --------------------------------------------------------------------------------------------------
# counted from the notebooks

DISPLAYED_EQUATION = re.compile(r"\$\$.+?\$\$|\\begin\{(align|equation|gather)(\*?)\}.+?\\end\{\1\2\}", re.S)
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
HEADING = re.compile(r"^#{1,6} +(.+?)\s*$", re.M)


def _code_lines(source: str) -> list[str]:
    """The lines of code a reader reads: not blank, not a comment."""
    return [line for line in source.splitlines() if line.strip() and not line.strip().startswith("#")]


def _is_exercise_cell(cell: nbformat.NotebookNode) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("solution") or meta.get("grade"))


def reading_minutes(nb: nbformat.NotebookNode) -> float:
    """Minutes to read a chapter by :data:`READING_RULE`: its Markdown, displayed equations and non-exercise code."""
    words = equations = code = 0
    for cell in nb.cells:
        if _is_exercise_cell(cell):
            continue
        if cell.cell_type == "markdown":
            equations += len(DISPLAYED_EQUATION.findall(cell.source))
            words += len(DISPLAYED_EQUATION.sub(" ", cell.source).split())
        elif cell.cell_type == "code":
            code += len(_code_lines(cell.source))
    return words / WORDS_PER_MINUTE + equations * MINUTES_PER_DISPLAYED_EQUATION + code / CODE_LINES_PER_MINUTE


def _exercise_cost(cell: nbformat.NotebookNode, statement: str) -> tuple[str, float]:
    """The kind of one solution cell's exercise and its minutes by :data:`EXERCISE_RULE`."""
    found = SOLUTION.search(cell.source)
    answer = found.group(1) if found else ""
    math_extra = EXERCISE_MATH_MINUTES if "$" in statement else 0
    if cell.cell_type == "code":
        return "code", EXERCISE_BASE_MINUTES + EXERCISE_MINUTES_PER_SOLUTION_LINE * len(
            _code_lines(answer)
        ) + math_extra
    return "written", WRITTEN_BASE_MINUTES + len(answer.split()) / WRITTEN_WORDS_PER_MINUTE + math_extra


def exercise_minutes(nb: nbformat.NotebookNode) -> list[tuple[str, float]]:
    """The kind ("code" or "written") and the minutes of each graded exercise of a chapter (its nbgrader solution
    cells), by :data:`EXERCISE_RULE`. An exercise's statement is the Markdown before its solution cell, back to the
    previous exercise cell or the last heading (``## Exercises``)."""
    found, statement = [], ""
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            found.append(_exercise_cost(cell, statement))
            statement = ""
        elif _is_exercise_cell(cell):
            statement = ""
        elif cell.cell_type == "markdown":
            last_heading = list(HEADING.finditer(cell.source))
            statement = cell.source[last_heading[-1].start() :] if last_heading else statement + cell.source
    return found


def headings(nb: nbformat.NotebookNode) -> list[str]:
    """Every Markdown heading of a chapter outside its exercise cells, without its ``#`` marks (how the tracks name
    sections)."""
    return [
        m.group(1)
        for cell in nb.cells
        if cell.cell_type == "markdown" and not _is_exercise_cell(cell)
        for m in HEADING.finditer(cell.source)
    ]


# --------------------------------------------------------------------------------------------------
# measured by the committed book builds

BUILD_MODES = ("full", "fast")


def build_files(mode: str, folder: Path = BOOK_RESULTS) -> list[Path]:
    """The committed book builds of one mode (``build-full-*.json`` or ``build-fast-*.json``), newest first (their
    names carry the date and time)."""
    if mode not in BUILD_MODES:
        raise ValueError(f"build mode {mode!r} is not known; allowed: {', '.join(BUILD_MODES)}")
    return sorted(folder.glob(f"build-{mode}-*.json"), reverse=True)


def latest_build(mode: str, folder: Path = BOOK_RESULTS) -> tuple[Path, dict[str, Any]]:
    """The newest committed book build of ``mode``: its path and its contents (per-chapter seconds in ``chapters``,
    the chapters it built in fast mode in ``fast_chapters``)."""
    files = build_files(mode, folder)
    if not files:
        raise FileNotFoundError(f"no build-{mode}-*.json in {folder}: run `mlcourse book` and commit build.json there")
    return files[0], json.loads(files[0].read_text(encoding="utf-8"))


def full_mode_run(stem: str, folder: Path = BOOK_RESULTS) -> Optional[tuple[Path, float]]:
    """The newest committed ``make book`` build that ran ``stem`` in full mode (``--all-full`` for chapter 07) and
    its seconds; None when no committed build did."""
    for path in build_files("full", folder):
        build = json.loads(path.read_text(encoding="utf-8"))
        if stem in build["chapters"] and stem not in build.get("fast_chapters", []):
            return path, build["chapters"][stem]
    return None


@dataclass(frozen=True)
class ChapterTimes:
    """One chapter of the syllabus: its plan, the minutes counted from it, the seconds its builds measured."""

    stem: str
    title: str
    plan: ChapterPlan
    reading_min: float
    exercises: tuple[tuple[str, float], ...]
    fast_s: float
    book_s: float
    book_fast: bool

    @property
    def number(self) -> str:
        """ "04" for "04_bilevel_objective"."""
        return self.stem[:2]

    @property
    def exercise_min(self) -> float:
        """All its exercises."""
        return sum(minutes for _, minutes in self.exercises)

    @property
    def study_min(self) -> float:
        """Reading and exercises."""
        return self.reading_min + self.exercise_min


def _title(nb: nbformat.NotebookNode, stem: str) -> str:
    """ "Background" from the chapter's first heading "01 · Background: the few-shot problem"."""
    found = headings(nb)
    return found[0].split(":")[0].split("·")[-1].strip() if found else stem


def chapter_times(notebooks: Optional[Sequence[Path]] = None, folder: Path = BOOK_RESULTS) -> list[ChapterTimes]:
    """Every chapter with its plan, its counted reading and exercise minutes and the seconds measured by the newest
    fast-mode build and the newest ``make book`` build (which may run some in fast mode: ``book_fast``)."""
    paths = list(notebooks) if notebooks is not None else chapter_notebooks()
    (_, fast), (_, full) = latest_build("fast", folder), latest_build("full", folder)
    rows = []
    for path in paths:
        number = path.stem[:2]
        if number not in CHAPTERS:
            raise ValueError(f"chapter {path.stem!r} has no syllabus entry; known: {', '.join(CHAPTERS)}")
        for name, build in (("fast", fast), ("full", full)):
            if path.stem not in build["chapters"]:
                raise ValueError(f"chapter {path.stem!r} is missing from the newest {name}-mode book build")
        nb = nbformat.read(path, as_version=4)
        rows.append(
            ChapterTimes(
                path.stem,
                _title(nb, path.stem),
                CHAPTERS[number],
                reading_minutes(nb),
                tuple(exercise_minutes(nb)),
                fast["chapters"][path.stem],
                full["chapters"][path.stem],
                path.stem in full.get("fast_chapters", []),
            )
        )
    return rows


# --------------------------------------------------------------------------------------------------
# the syllabus, rendered


def hours(minutes: float) -> str:
    """Minutes as hours with one decimal ("2.5 h")."""
    return f"{minutes / 60:.1f} h"


def totals(rows: Sequence[ChapterTimes]) -> dict[str, float]:
    """Sums over ``rows``: reading, exercise and study minutes, the number of exercises of each kind, compute
    seconds."""
    return {
        "reading_min": sum(r.reading_min for r in rows),
        "exercise_min": sum(r.exercise_min for r in rows),
        "study_min": sum(r.study_min for r in rows),
        **{kind: sum(k == kind for r in rows for k, _ in r.exercises) for kind in EXERCISE_KINDS},
        "fast_s": sum(r.fast_s for r in rows),
        "book_s": sum(r.book_s for r in rows),
    }


def count_kinds(exercises: Sequence[tuple[str, float]]) -> str:
    """ "2 code + 1 written" (kinds with none are left out; "none" when there are no exercises)."""
    counts = [f"{sum(k == kind for k, _ in exercises)} {kind}" for kind in EXERCISE_KINDS]
    return " + ".join(c for c in counts if not c.startswith("0 ")) or "none"


def _book_cell(r: ChapterTimes) -> str:
    return f"{r.book_s:.0f} s (fast)*" if r.book_fast else f"{r.book_s:.0f} s"


def chapter_table(rows: Sequence[ChapterTimes]) -> tuple[list[str], list[list[str]]]:
    """The syllabus's main table: one row per chapter and a row of totals (hours, and minutes of compute)."""
    header = ["#", "chapter", "role", "needs", "reading", "exercises", "compute, fast", "compute, make book"]
    body = [
        [
            r.number,
            f"{r.title} — {r.plan.why}",
            r.plan.role,
            ", ".join(r.plan.prerequisites) or "—",
            f"{r.reading_min:.0f} min",
            f"{count_kinds(r.exercises)} · {r.exercise_min:.0f} min",
            f"{r.fast_s:.0f} s",
            _book_cell(r),
        ]
        for r in rows
    ]
    t = totals(rows)
    body.append(
        [
            "",
            "total",
            "",
            "",
            hours(t["reading_min"]),
            f"{count_kinds([e for r in rows for e in r.exercises])} · {hours(t['exercise_min'])}",
            f"{t['fast_s'] / 60:.0f} min",
            f"{t['book_s'] / 60:.0f} min",
        ]
    )
    return header, body


def _footnote(rows: Sequence[ChapterTimes], folder: Path) -> str:
    """What the make-book column means for the chapters ``make book`` builds in fast mode."""
    notes = []
    for r in rows:
        if r.book_fast:
            found = full_mode_run(r.stem, folder)
            notes.append(
                f"{r.number}'s full mode took {found[1]:.0f} s in {found[0].name} (--all-full)"
                if found
                else f"{r.number}'s full mode is in no committed build"
            )
    return (
        "* make book builds this chapter in fast mode: its full mode measures the machine it runs on; "
        + "; ".join(notes)
        if notes
        else ""
    )


def walkthrough_table(rows: Sequence[ChapterTimes]) -> tuple[list[str], list[list[str]], str]:
    """The 90-minute lecture: its steps with their minutes, and what to run before class (measured compute)."""
    header = ["min", "chapter", "section (heading)", "how", "what to show"]
    body = [[str(s.minutes), s.chapter, s.section, s.action, s.show] for s in WALKTHROUGH]
    body.append([str(sum(s.minutes for s in WALKTHROUGH)), "", "total", "", ""])
    used = sorted({s.chapter for s in WALKTHROUGH})
    before = sum(r.book_s for r in rows if r.number in used)
    prepare = (
        f"Before class, run chapters {', '.join(used)} as make book does (Run All): {before / 60:.0f} min of compute "
        f"in the newest make-book build. In class, re-run the cells of the sections marked '{LIVE}' and show the "
        f"figures of the others on the built book's pages (build/book/NN_name.html)."
    )
    return header, body, prepare


def _by_number(rows: Sequence[ChapterTimes]) -> dict[str, ChapterTimes]:
    return {r.number: r for r in rows}


def study_day_minutes(day: StudyDay, rows: Sequence[ChapterTimes]) -> tuple[float, float]:
    """A study day's (reading and exercise minutes, compute seconds as make book runs its chapters)."""
    chapters = [_by_number(rows)[c] for c in day.chapters]
    study = sum(r.study_min if day.exercises else r.reading_min for r in chapters)
    return study, sum(r.book_s for r in chapters)


def two_weeks_table(rows: Sequence[ChapterTimes]) -> tuple[list[str], list[list[str]]]:
    """Two weeks of self-study, day by day, with each day's hours and the total."""
    header = ["day", "chapters", "reading and exercises", "compute", "total"]
    body, all_study, all_compute = [], 0.0, 0.0
    for day in TWO_WEEKS:
        study, compute = study_day_minutes(day, rows)
        all_study, all_compute = all_study + study, all_compute + compute
        what = ", ".join(day.chapters) + (f" ({day.note})" if day.chapters and day.note else day.note)
        counted = [hours(study), f"{compute / 60:.0f} min", hours(study + compute / 60)] if day.chapters else ["—"] * 3
        body.append([day.day, what, *counted])
    body.append(["total", "", hours(all_study), f"{all_compute / 60:.0f} min", hours(all_study + all_compute / 60)])
    return header, body


def track_totals(rows: Sequence[ChapterTimes]) -> dict[str, float]:
    """Hours of each track: the lecture, two weeks of self-study and the full course (every chapter, every
    exercise, compute as make book runs it)."""
    days = [study_day_minutes(day, rows) for day in TWO_WEEKS]
    t = totals(rows)
    return {
        "walkthrough_h": sum(s.minutes for s in WALKTHROUGH) / 60,
        "two_weeks_h": sum(study + compute / 60 for study, compute in days) / 60,
        "full_course_h": (t["study_min"] + t["book_s"] / 60) / 60,
    }


NO_NOTEBOOKS = (
    "The syllabus counts its times from the chapter notebooks, and this installed copy of the package carries none "
    "({notebooks}): read it in chapter 00 of a clone of the repository or on the built book's index page."
)


def _build_source(mode: str, folder: Path) -> str:
    path, build = latest_build(mode, folder)
    return f"{path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path} ({build['date'][:16]}, {read_provenance(build)['device_name']})"


def syllabus_blocks(folder: Path = BOOK_RESULTS) -> list[tuple[str, Any]]:
    """The syllabus as blocks, ``("p", text)``, ``("h", text)`` or ``("table", (header, rows))``, that
    :func:`syllabus_html` and :func:`syllabus_markdown` render."""
    if not chapter_notebooks():
        return [("p", NO_NOTEBOOKS.format(notebooks=NOTEBOOKS))]
    rows = chapter_times(folder=folder)
    t, tracks = totals(rows), track_totals(rows)
    core = [r.number for r in rows if r.plan.role == "core"]
    optional = [r.number for r in rows if r.plan.role == "optional"]
    walk_header, walk_body, prepare = walkthrough_table(rows)
    return [
        (
            "p",
            f"Core chapters: {', '.join(core)}; optional: {', '.join(optional) or 'none'}. The full course takes "
            f"{hours(60 * tracks['full_course_h'])}: reading {hours(t['reading_min'])}, exercises "
            f"({count_kinds([e for r in rows for e in r.exercises])}) {hours(t['exercise_min'])}, compute {t['book_s'] / 60:.0f} min as make book runs it "
            f"({t['fast_s'] / 60:.0f} min in fast mode).",
        ),
        ("table", chapter_table(rows)),
        ("p", _footnote(rows, folder)),
        ("p", f"Counted from the notebooks: {READING_RULE}; {EXERCISE_RULE}."),
        (
            "p",
            f"Measured: fast mode by {_build_source('fast', folder)}; make book (full mode) by "
            f"{_build_source('full', folder)}.",
        ),
        ("h", f"A {WALKTHROUGH_MINUTES}-minute classroom walkthrough"),
        ("p", prepare),
        ("table", (walk_header, walk_body)),
        ("h", f"Two weeks of self-study: {hours(60 * tracks['two_weeks_h'])}"),
        ("table", two_weeks_table(rows)),
        ("h", f"The full course with exercises: {hours(60 * tracks['full_course_h'])}"),
        (
            "p",
            "Every chapter in order (each after the chapters it needs), every exercise until its checks pass, each "
            "chapter run as make book runs it: the totals of the first table.",
        ),
    ]


def syllabus_html(folder: Path = BOOK_RESULTS) -> str:
    """The syllabus as HTML (chapter 00 displays it, the book's index includes it)."""
    parts = ['<div class="mlcourse-syllabus">']
    for kind, content in syllabus_blocks(folder):
        if kind == "h":
            parts.append(f"<h3>{html.escape(content)}</h3>")
        elif kind == "p" and content:
            parts.append(f"<p>{html.escape(content)}</p>")
        elif kind == "table":
            header, body = content
            head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
            cells = ["".join(f"<td>{html.escape(c)}</td>" for c in row) for row in body]
            rows = "\n".join(f"<tr>{c}</tr>" for c in cells)
            parts.append(
                f'<table class="mlcourse-toc"><thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody></table>'
            )
    parts.append("</div>")
    return "\n".join(parts)


def syllabus_markdown(folder: Path = BOOK_RESULTS) -> str:
    """The syllabus as Markdown (for a terminal: ``python -c "from mlcourse.course.syllabus import
    syllabus_markdown; print(syllabus_markdown())"``)."""
    parts = []
    for kind, content in syllabus_blocks(folder):
        if kind == "h":
            parts.append(f"### {content}")
        elif kind == "p" and content:
            parts.append(content)
        elif kind == "table":
            header, body = content
            lines = [header, ["---"] * len(header), *body]
            parts.append("\n".join("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in lines))
    return "\n\n".join(parts) + "\n"
