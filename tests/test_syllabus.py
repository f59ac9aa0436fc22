"""Issue 24, item 5: the syllabus (mlcourse/course/syllabus.py), shown by chapter 00, the book's index and the README.

Its times are counted from the notebooks and read from the committed book builds (results/book/), never typed:
these tests recount them independently and check the tracks against the chapters' real headings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from mlcourse.config import chapter_notebooks
from mlcourse.course import book, syllabus

ROOT = Path(__file__).resolve().parents[1]
BUILDS = ROOT / "results" / "book"
TYPED_READING_TIME = (
    r"(?i)(reading and exercises|reading time)[^.]*?\b\d+\s*(-\s*\d+\s*)?(min|minutes?|h|hours?)\b"
    r"|\b\d+\s*(-\s*\d+\s*)?(min|minutes?|h|hours?)\s+(of reading|to read)"
)


@pytest.fixture(scope="module")
def rows():
    return syllabus.chapter_times()


def _newest(mode: str) -> dict:
    files = sorted(BUILDS.glob(f"build-{mode}-*.json"))
    assert files, f"no committed build-{mode}-*.json in {BUILDS}"
    return json.loads(files[-1].read_text(encoding="utf-8"))


def test_every_chapter_appears_once_with_its_times(rows):
    stems = [p.stem for p in chapter_notebooks()]
    assert [r.stem for r in rows] == stems
    assert sorted(syllabus.CHAPTERS) == sorted(s[:2] for s in stems), "a chapter without a plan, or a plan without one"
    for r in rows:
        assert r.reading_min > 0 and r.fast_s > 0 and r.book_s > 0, r
        assert r.plan.role in syllabus.ROLES, r
    text = syllabus.syllabus_markdown()
    for r in rows:
        assert len(re.findall(rf"^\| {r.number} \| {re.escape(r.title)} ", text, re.M)) == 1, r.stem
        assert f"| {r.reading_min:.0f} min | {syllabus.count_kinds(r.exercises)} · {r.exercise_min:.0f} min |" in text


def test_times_match_the_committed_build_files(rows):
    fast, full = _newest("fast"), _newest("full")
    assert fast["fast"] is True and full["fast"] is False
    assert sorted(fast["fast_chapters"]) == sorted(fast["chapters"]), "the fast build ran a chapter in full mode"
    for r in rows:
        assert r.fast_s == fast["chapters"][r.stem]
        assert r.book_s == full["chapters"][r.stem]
        assert r.book_fast == (r.stem in full["fast_chapters"])
    text = syllabus.syllabus_markdown()
    for stem in full["fast_chapters"]:
        assert f"| {full['chapters'][stem]:.0f} s (fast)* |" in text, stem
        assert f"{stem[:2]}'s full mode" in text, "the footnote must say where the chapter's full mode was measured"


def test_totals_equal_the_sums(rows):
    t = syllabus.totals(rows)
    assert t["reading_min"] == pytest.approx(sum(r.reading_min for r in rows))
    assert t["exercise_min"] == pytest.approx(sum(m for r in rows for _, m in r.exercises))
    for kind in syllabus.EXERCISE_KINDS:
        assert t[kind] == sum(k == kind for r in rows for k, _ in r.exercises)
    assert t["fast_s"] == pytest.approx(sum(_newest("fast")["chapters"].values()))
    assert t["book_s"] == pytest.approx(sum(_newest("full")["chapters"].values()))
    header, body = syllabus.chapter_table(rows)
    assert body[-1][4:] == [
        syllabus.hours(t["reading_min"]),
        f"{t['code']} code + {t['written']} written · {syllabus.hours(t['exercise_min'])}",
        f"{t['fast_s'] / 60:.0f} min",
        f"{t['book_s'] / 60:.0f} min",
    ]
    tracks = syllabus.track_totals(rows)
    assert tracks["full_course_h"] == pytest.approx((t["study_min"] + t["book_s"] / 60) / 60)
    days = [syllabus.study_day_minutes(d, rows) for d in syllabus.TWO_WEEKS]
    assert tracks["two_weeks_h"] == pytest.approx(sum(s + c / 60 for s, c in days) / 60)
    assert tracks["two_weeks_h"] < tracks["full_course_h"]
    text = syllabus.syllabus_markdown()
    assert f"The full course with exercises: {syllabus.hours(60 * tracks['full_course_h'])}" in text
    assert f"Two weeks of self-study: {syllabus.hours(60 * tracks['two_weeks_h'])}" in text


def test_tracks_reference_existing_chapters_and_sections():
    notebooks = {p.stem[:2]: nbformat.read(p, as_version=4) for p in chapter_notebooks()}
    for step in syllabus.WALKTHROUGH:
        assert step.chapter in notebooks, step
        assert step.section in syllabus.headings(notebooks[step.chapter]), f"no heading {step.section!r} in {step}"
        assert step.action in (syllabus.LIVE, syllabus.BOOK) and step.minutes > 0, step
    assert sum(s.minutes for s in syllabus.WALKTHROUGH) == syllabus.WALKTHROUGH_MINUTES
    assert {s.action for s in syllabus.WALKTHROUGH} == {syllabus.LIVE, syllabus.BOOK}
    planned = [c for day in syllabus.TWO_WEEKS for c in day.chapters]
    assert len(syllabus.TWO_WEEKS) == 10 and len(planned) == len(set(planned)), planned
    assert set(planned) <= set(notebooks)
    core = {n for n, plan in syllabus.CHAPTERS.items() if plan.role == "core"}
    with_exercises = {c for day in syllabus.TWO_WEEKS if day.exercises for c in day.chapters}
    assert core <= with_exercises, f"core chapters without their exercises in two weeks: {core - with_exercises}"
    seen: set[str] = set()
    for day in syllabus.TWO_WEEKS:
        for chapter in day.chapters:
            missing = set(syllabus.CHAPTERS[chapter].prerequisites) - seen
            assert not missing, f"{day.day}: chapter {chapter} comes before its prerequisites {missing}"
            seen.add(chapter)


def test_prerequisites_are_earlier_chapters():
    for number, plan in syllabus.CHAPTERS.items():
        assert all(p in syllabus.CHAPTERS and p < number for p in plan.prerequisites), (number, plan)


def _notebook(*cells):
    return nbformat.v4.new_notebook(cells=list(cells))


def test_reading_rule_counts_words_equations_and_code():
    prose = " ".join(["word"] * 400)  # 2 min at 200 words/min
    nb = _notebook(
        nbformat.v4.new_markdown_cell(f"{prose}\n\n$$a =\nb$$"),  # a displayed equation, not prose
        nbformat.v4.new_code_cell("\n".join(f"x{i} = {i}" for i in range(20)) + "\n# a comment\n\n"),  # 20 lines
    )
    expected = 400 / syllabus.WORDS_PER_MINUTE + syllabus.MINUTES_PER_DISPLAYED_EQUATION
    expected += 20 / syllabus.CODE_LINES_PER_MINUTE
    assert syllabus.reading_minutes(nb) == pytest.approx(expected)


def _solution(kind: str, text: str):
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    return make(text, metadata={"nbgrader": {"solution": True, "grade": kind == "written"}})


def _graded_tests():
    """A graded test cell of a made-up notebook: the syllabus counts cells and never executes them."""
    source = "assert answer(1) == 2"
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": {"solution": False, "grade": True}})


def test_exercise_rule_counts_solution_lines_words_and_mathematics():
    code = "def answer(x):\n    ### BEGIN SOLUTION\n    y = x + 1\n    # why\n    return y\n    ### END SOLUTION\n"
    written = "### BEGIN SOLUTION\n" + " ".join(["because"] * 40) + "\n### END SOLUTION"
    nb = _notebook(
        nbformat.v4.new_markdown_cell("## Exercises\n\n**Exercise 1.** Add one to $x$."),
        _solution("code", code),
        _graded_tests(),
        nbformat.v4.new_markdown_cell("**Exercise 2.** Add one."),
        _solution("code", code),
        _graded_tests(),
        nbformat.v4.new_markdown_cell("**Think.** Why?"),
        _solution("written", written),
    )
    code_min = syllabus.EXERCISE_BASE_MINUTES + 2 * syllabus.EXERCISE_MINUTES_PER_SOLUTION_LINE
    written_min = syllabus.WRITTEN_BASE_MINUTES + 40 / syllabus.WRITTEN_WORDS_PER_MINUTE
    assert syllabus.exercise_minutes(nb) == [
        ("code", code_min + syllabus.EXERCISE_MATH_MINUTES),
        ("code", code_min),
        ("written", written_min),
    ]
    assert syllabus.count_kinds(syllabus.exercise_minutes(nb)) == "2 code + 1 written"
    # exercise cells are exercise time, not reading time, and their markers are no section headings
    assert (
        syllabus.reading_minutes(_notebook(_solution("code", code), _graded_tests(), _solution("written", written)))
        == 0
    )
    assert syllabus.headings(_notebook(_solution("written", written))) == []


def test_bad_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="'extra'.*core, optional"):
        syllabus.ChapterPlan("extra", (), "no such role")
    with pytest.raises(ValueError, match="'slow'.*full, fast"):
        syllabus.build_files("slow")
    with pytest.raises(FileNotFoundError, match="build-fast"):
        syllabus.latest_build("fast", tmp_path)
    stray = tmp_path / "42_unknown.ipynb"
    nbformat.write(_notebook(), stray)
    with pytest.raises(ValueError, match="'42_unknown' has no syllabus entry"):
        syllabus.chapter_times([stray])


def test_html_has_one_row_per_chapter_and_the_tracks(rows):
    page = syllabus.syllabus_html()
    main_table = page.split("</table>")[0]
    assert main_table.count("<tr>") == 1 + len(rows) + 1  # header, chapters, total
    assert page.count("<table ") == 3 and syllabus.html.escape(syllabus.READING_RULE) in page


def test_an_installed_copy_without_notebooks_says_so(monkeypatch):
    """A pip install (Colab, Binder) carries the results but not the notebooks: no empty table, a sentence."""
    monkeypatch.setattr(syllabus, "chapter_notebooks", lambda: [])
    page = syllabus.syllabus_html()
    assert "<table" not in page and "carries none" in page


def test_chapter_00_contains_the_syllabus():
    nb = nbformat.read(ROOT / "notebooks" / "00_welcome.ipynb", as_version=4)
    assert "8 · Syllabus" in syllabus.headings(nb), "the chapters point at chapter 00's section 8 for their times"
    code = [c.source for c in nb.cells if c.cell_type == "code" and "syllabus_html()" in c.source]
    assert len(code) == 1, "chapter 00 must display the generated syllabus once"


def test_book_index_contains_the_syllabus():
    pages = [book.ChapterPage("00_welcome", "00 · Welcome", "—", 1.0)]
    info = {"date": "today", "device_name": "CPU", "seconds": 1.0, "builder": "nbconvert"}
    assert syllabus.syllabus_html() in book.index_page(pages, info)


def test_readme_points_at_the_syllabus():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Syllabus", 1)[1].split("\n## ", 1)[0]
    assert "00_welcome" in section and "index.html" in section and "syllabus_markdown()" in section


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.stem)
def test_no_chapter_types_its_own_reading_time(path):
    """Reading and exercise times live in the syllabus, counted; a chapter points at it instead of typing one."""
    nb = nbformat.read(path, as_version=4)
    typed = [
        m.group(0)
        for cell in nb.cells
        if cell.cell_type == "markdown"
        for m in re.finditer(TYPED_READING_TIME, cell.source)
    ]
    assert not typed, f"{path.name}: {typed}"


def test_the_typed_time_pattern_finds_typed_times():
    for typed in ("Reading and exercises: 1-2 hours.", "10 minutes to read", "reading and exercises: about\n1 hour"):
        assert re.search(TYPED_READING_TIME, typed), typed
    assert not re.search(TYPED_READING_TIME, "Reading and exercises: see the syllabus (chapter 00, section 8).")
