"""Run a chapter's exercise cells (instructor version) outside Jupyter, with the answers replaced at will.

The tests use it to check every exercise's visible and hidden tests directly, without executing the whole chapter:
the exercise section (from "## Exercises" to the next "## " heading) is self-contained, so its code cells run in one
fresh namespace whose ``__name__`` is ``"__main__"`` (as in a notebook kernel).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from mlcourse.config import NOTEBOOKS

SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION\n?", re.S)
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS\n?", re.S)


def notebook(chapter: str) -> Path:
    (path,) = sorted(NOTEBOOKS.glob(f"{chapter}_*.ipynb"))
    return path


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _nbgrader(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def exercise_section(chapter: str) -> list[dict]:
    """The cells from the "## Exercises" heading to the next level-2 heading."""
    cells = json.loads(notebook(chapter).read_text(encoding="utf-8"))["cells"]
    start = next(i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and "## Exercises" in _source(c))
    end = next(
        (
            i
            for i, c in enumerate(cells[start + 1 :], start + 1)
            if c["cell_type"] == "markdown" and _source(c).startswith("## ")
        ),
        len(cells),
    )
    return cells[start:end]


def answer_ids(chapter: str) -> list[str]:
    """The grade ids of the code solution cells (``chNN-exK-answer``), in order."""
    return [
        _nbgrader(c)["grade_id"]
        for c in exercise_section(chapter)
        if c["cell_type"] == "code" and _nbgrader(c).get("solution")
    ]


def test_id(answer_id: str) -> str:
    return answer_id.replace("-answer", "-tests")


def solution(chapter: str, answer_id: str) -> str:
    """The instructor's solution cell, delimiters removed (a correct submission)."""
    cell = next(c for c in exercise_section(chapter) if _nbgrader(c).get("grade_id") == answer_id)
    return "\n".join(line for line in _source(cell).splitlines() if "### " not in line)


def with_body(chapter: str, answer_id: str, body: str) -> str:
    """The solution cell with its solution block replaced by ``body`` (indented like the block)."""
    cell = next(c for c in exercise_section(chapter) if _nbgrader(c).get("grade_id") == answer_id)
    out, inside = [], False
    for line in _source(cell).splitlines():
        if "### BEGIN SOLUTION" in line:
            indent, inside = line[: line.index("#")], True
            out += [indent + b for b in body.strip("\n").splitlines()]
        elif "### END SOLUTION" in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


@dataclass
class Outcome:
    passed: dict[str, bool] = field(default_factory=dict)
    output: dict[str, str] = field(default_factory=dict)
    namespace: dict = field(default_factory=dict)


def run(
    chapter: str,
    preamble: str = "import torch",
    answers: Optional[dict[str, str]] = None,
    hidden: bool = True,
    only: Optional[str] = None,
) -> Outcome:
    """Execute the exercise section; ``answers`` maps an answer cell's grade id to replacement source. Returns, per
    graded test cell, whether it passed and what it printed (``hidden=False``: the visible assertions only; ``only``:
    the answer id of the one exercise to run)."""
    answers = answers or {}
    namespace: dict = {"__name__": "__main__"}
    exec(compile(preamble, "<preamble>", "exec"), namespace)  # noqa: S102 - the repository's own notebook code
    outcome = Outcome(namespace=namespace)
    for cell in exercise_section(chapter):
        if cell["cell_type"] != "code":
            continue
        meta = _nbgrader(cell)
        if only and meta.get("grade_id") and meta["grade_id"] not in (only, test_id(only)):
            continue  # another exercise's answer or test: ``only`` runs one exercise
        src = answers.get(meta.get("grade_id"), _source(cell))
        if meta.get("grade") and not hidden:
            src = HIDDEN.sub("", src)
        buffer, errors = io.StringIO(), io.StringIO()
        with (
            contextlib.redirect_stdout(buffer),
            contextlib.redirect_stderr(errors),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("always")  # nbgrader scores a test cell that writes to stderr 0: show every warning
            try:
                exec(compile(src, f"<cell {meta.get('grade_id', cell.get('id'))}>", "exec"), namespace)  # noqa: S102
                ok = True
            except Exception as exc:  # noqa: BLE001 - a failed test cell is an outcome
                print(f"{type(exc).__name__}: {exc}")
                ok = False
        for w in caught:
            errors.write(f"{w.category.__name__}: {w.message}\n")
        if errors.getvalue():
            buffer.write(f"stderr: {errors.getvalue()}")
        if meta.get("grade"):
            outcome.passed[meta["grade_id"]] = ok and not errors.getvalue()
            outcome.output[meta["grade_id"]] = buffer.getvalue()
        elif not ok:
            raise RuntimeError(f"chapter {chapter}: cell {cell.get('id')} failed: {buffer.getvalue()[-500:]}")
    return outcome


# --- the checks every chapter's test file runs ----------------------------------------------------------------------


def assert_solutions_pass(chapter: str, preamble: str) -> None:
    """The instructor's solutions pass every visible and hidden test."""
    outcome = run(chapter, preamble)
    assert outcome.passed and all(outcome.passed.values()), outcome.output


def assert_unanswered_fail(chapter: str, preamble: str) -> None:
    """The student version's ``raise NotImplementedError()`` fails each exercise's visible test."""
    for answer_id in answer_ids(chapter):
        body = "raise NotImplementedError()"
        outcome = run(chapter, preamble, {answer_id: with_body(chapter, answer_id, body)}, hidden=False, only=answer_id)
        assert outcome.passed == {test_id(answer_id): False}, outcome.output


def assert_wrong_fails_with_hint(chapter: str, preamble: str, answer_id: str, body: str, expected: str) -> None:
    """A plausible wrong answer fails the visible test with a hint (a "FAIL (...)" line) that contains no printed form
    of the expected value (``expected``: an expression evaluated after the right solution ran)."""
    right = run(chapter, preamble, only=answer_id)
    value = eval(expected, right.namespace)  # noqa: S307 - the repository's own test expression
    outcome = run(chapter, preamble, {answer_id: with_body(chapter, answer_id, body)}, hidden=False, only=answer_id)
    text = outcome.output[test_id(answer_id)]
    assert outcome.passed[test_id(answer_id)] is False, text
    assert "FAIL (" in text, text
    for form in printed_forms(value):
        assert form not in text, (form, text)
    hidden = run(chapter, preamble, {answer_id: with_body(chapter, answer_id, body)}, only=answer_id)
    assert hidden.passed[test_id(answer_id)] is False


def printed_forms(value) -> set[str]:
    """The ways a number (or the numbers of a tensor / tuple) would appear in printed text, 3 significant digits and
    more; integers of 3 digits and more as they are."""
    import torch

    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return set().union(*(printed_forms(v) for v in value)) if value else set()
    if isinstance(value, torch.Tensor):
        return set().union(*(printed_forms(v) for v in value.detach().reshape(-1).tolist()[:50]))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return set()
    if isinstance(value, int) or float(value).is_integer():
        return {f"{int(value)}", f"{int(value):,}"} if abs(value) >= 100 else set()
    return {f"{value:.{d}f}" for d in (3, 4, 6)} | {f"{value:.4g}", f"{value:.6g}", f"{value:.3e}"}


def assert_imports_fail(chapter: str, preamble: str) -> None:
    """No function of the installed package passes an exercise: each exercise's answer replaced by an import of each
    public callable of ``mlcourse.course.exercises.chNN`` fails its test cell."""
    import importlib
    import inspect

    module = importlib.import_module(f"mlcourse.course.exercises.ch{chapter}")
    names = [
        n
        for n in getattr(module, "__all__", dir(module))
        if callable(getattr(module, n)) and not inspect.isclass(getattr(module, n))
    ]
    assert names
    for answer_id in answer_ids(chapter):
        for name in names:
            cell = f"from mlcourse.course.exercises.ch{chapter} import {name} as answer"
            prefix = solution(chapter, answer_id).split("def answer")[0]  # the cell's imports before the function
            outcome = run(chapter, preamble, {answer_id: prefix + cell}, only=answer_id)
            assert outcome.passed == {test_id(answer_id): False}, (answer_id, name)
