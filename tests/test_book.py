"""Issue 15: the course as a built book (``make book``) and as slides (RISE).

The unit tests check the pieces without a kernel or a browser. The browser tests build the book in fast mode
(``MLCOURSE_BOOK_DIR`` may name an already built one), serve it on localhost and open every page in headless
Chromium with every request that leaves localhost aborted and recorded; then they open chapter 01 in RISE
(jupyterlab-rise's ``/rise/`` page) and step through two slides.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import nbformat
import pytest

from mlcourse.course import book

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from test_browser import CHROMIUM, CHROMIUM_FLAGS, INSTALL_HINT, JupyterLab  # noqa: E402

pytestmark = pytest.mark.slow  # builds the book and opens it in a browser: `make test` only, not `make test-fast`

TALK = "01_background.ipynb"  # the chapter laid out by hand as a talk


# --------------------------------------------------------------------------------------------------
# slides: metadata in every chapter


@pytest.mark.parametrize("path", book.chapters(), ids=lambda p: p.stem)
def test_every_cell_of_every_chapter_has_a_slide_type(path):
    nb = nbformat.read(path, as_version=4)
    kinds = [cell.metadata.get("slideshow", {}).get("slide_type") for cell in nb.cells]
    missing = [i for i, kind in enumerate(kinds) if kind not in book.SLIDE_TYPES]
    assert not missing, f"{path.name}: cells {missing} have no RISE slide type (run book.add_slide_metadata)"
    assert kinds[0] == "slide", f"{path.name}: the title cell must open the first slide"
    for cell, kind in zip(nb.cells, kinds):
        if book._heading_level(cell) in (1, 2) and kind != "notes":
            assert kind == "slide", f"{path.name}: heading {cell.source.splitlines()[0]!r} must open a slide"
        if book._is_graded_test(cell):
            assert kind == "skip", f"{path.name}: graded test cell {cell.metadata['nbgrader']['grade_id']} is shown"
    assert nb.metadata.get("rise", {}).get("scroll") is True, f"{path.name}: RISE settings missing"


def test_chapter_01_is_laid_out_as_a_talk():
    nb = nbformat.read(ROOT / "notebooks" / TALK, as_version=4)
    kinds = [c.metadata["slideshow"]["slide_type"] for c in nb.cells]
    assert kinds.count("fragment") >= 3 and kinds.count("notes") >= 2, kinds
    # one idea per slide: no shown Markdown cell longer than a slide holds; long prose goes to speaker notes
    shown = [c for c, k in zip(nb.cells, kinds) if c.cell_type == "markdown" and k not in ("notes", "skip")]
    too_long = [c.source.splitlines()[0] for c in shown if len(c.source) > 900]
    assert not too_long, f"slides with more than one idea: {too_long}"
    # each code cell with a figure has a (sub)slide of its own
    for cell, kind in zip(nb.cells, kinds):
        if cell.cell_type == "code" and "plots." in cell.source:
            assert kind in ("slide", "subslide"), cell.source.splitlines()[0]


def test_slide_rule_on_a_made_up_chapter():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title\ntext"),
        nbformat.v4.new_code_cell("# Setup: run this cell first.\nimport torch"),
        nbformat.v4.new_markdown_cell("prose"),
        nbformat.v4.new_markdown_cell("### a sub-topic"),
        nbformat.v4.new_code_cell("plot()"),
        nbformat.v4.new_markdown_cell("after the figure"),
        nbformat.v4.new_markdown_cell("## Section 2"),
        nbformat.v4.new_code_cell("assert answer() == 1", metadata={"nbgrader": {"grade": True, "solution": False}}),
        nbformat.v4.new_markdown_cell("#hashtag, not a heading"),
    ]
    assert book.slide_types(nb) == ["slide", "skip", "-", "subslide", "subslide", "subslide", "slide", "skip", "-"]
    nb.cells[2].metadata["slideshow"] = {"slide_type": "notes"}  # laid out by hand: kept
    assert book.slide_types(nb)[2] == "notes"


# --------------------------------------------------------------------------------------------------
# the static page, without a kernel


def _executed_made_up_chapter() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    widget = nbformat.v4.new_output(
        "display_data",
        data={"text/plain": "interactive(children=(FloatSlider(...),))", book.WIDGET_VIEW: {"model_id": "abc"}},
    )
    figure = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    solution = nbformat.v4.new_code_cell(
        "def answer(x):\n    ### BEGIN SOLUTION\n    return 42 * x\n    ### END SOLUTION",
        metadata={"nbgrader": {"grade": False, "grade_id": "ex1", "solution": True, "locked": False}},
    )
    solution.outputs = [nbformat.v4.new_output("stream", name="stdout", text="42\n")]
    test = nbformat.v4.new_code_cell(
        "assert answer(1) == 42\n### BEGIN HIDDEN TESTS\nassert answer(2) == 84\n### END HIDDEN TESTS",
        metadata={"nbgrader": {"grade": True, "grade_id": "ex1-tests", "solution": False, "points": 1}},
    )
    shown = nbformat.v4.new_code_cell("draw()")
    shown.outputs = [figure, widget]
    nb.cells = [nbformat.v4.new_markdown_cell("# 09 · Made up"), shown, solution, test]
    return nb


def test_static_page_keeps_the_figure_and_explains_the_widget():
    page = book.static_page_cells(_executed_made_up_chapter(), "09_made_up.ipynb")
    outputs = page.cells[1].outputs
    assert outputs[0]["data"]["image/png"] == "iVBORw0KGgo="  # the default figure stays
    assert book.WIDGET_VIEW not in json.dumps(outputs)
    assert "make course" in outputs[1]["data"]["text/html"] and "09_made_up.ipynb" in outputs[1]["data"]["text/html"]


def test_static_page_shows_exercises_without_their_solutions():
    page = book.static_page_cells(_executed_made_up_chapter(), "09_made_up.ipynb")
    solution, test = page.cells[2], page.cells[3]
    assert "42 * x" not in solution.source and "raise NotImplementedError()" in solution.source
    assert "42" not in json.dumps(solution.outputs)  # the solution's own output is not shown either
    assert "HIDDEN" not in test.source and "answer(2)" not in test.source and "answer(1) == 42" in test.source


def test_page_template_fetches_nothing_from_the_network(tmp_path):
    nb = book.static_page_cells(_executed_made_up_chapter(), "09_made_up.ipynb")
    nav = {"title": "09 · Made up", "section": "—", "notebook": "notebooks/09_made_up.ipynb",
           "notebook_name": "09_made_up.ipynb", "prev": "08_x.html", "prev_title": "08", "next": None,
           "next_title": None, "fast": True, "fast_note": book.FAST_PAGE_NOTE,
           **book.launch_links("09_made_up.ipynb")}  # fmt: skip
    page = book.render(nb, f"_static/mathjax/MathJax.js?config={book.MATHJAX_CONFIG}", nav)
    # what a page loads (src=, <link href=); the "Open in Colab"/Binder anchors are links a reader may follow
    remote = re.findall(r"""(?:src=|<link[^>]*href=)["'](https?:)?//[^"']+""", page)
    assert not remote, remote
    anchors = re.findall(r"""<a [^>]*href=["'](https?://[^"']+)""", page)
    assert sorted(set(anchors)) == sorted(book.launch_links("09_made_up.ipynb").values()), anchors
    assert '<script src="_static/mathjax/MathJax.js' in page
    assert 'href="08_x.html"' in page and 'href="index.html"' in page and "make course" in page
    assert "<title>09 · Made up · mlcourse</title>" in page
    assert book.FAST_PAGE_NOTE in page  # a page built in fast mode says so


def _launch_anchors(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<a [^>]*href="(https://[^"]+)"[^>]*>(Open in Colab|Binder)</a>', page)


def _assert_links_of(page: str, notebook: str) -> None:
    """A page links "Open in Colab" and "Binder" for ``notebook``, built from the one repository setting."""
    links = book.launch_links(notebook)
    assert set(_launch_anchors(page)) == {(links["colab"], "Open in Colab"), (links["binder"], "Binder")}, notebook
    assert (book.NOTEBOOKS / notebook).is_file()


def test_index_page_links_every_chapter_to_colab_and_binder(monkeypatch):
    monkeypatch.setattr(book, "syllabus_html", lambda *a, **k: "", raising=False)  # its own tests: test_syllabus.py
    pages = [book.ChapterPage(p.stem, p.stem, "—", 1.0, True) for p in book.chapters()]
    index = book.index_page(pages, {"date": "d", "device_name": "CPU", "seconds": 1.0, "builder": "b"})
    anchors = _launch_anchors(index)
    assert len(anchors) == 2 * len(pages)
    for p in book.chapters():
        links = book.launch_links(p.name)
        assert (links["colab"], "Open in Colab") in anchors and (links["binder"], "Binder") in anchors


def test_built_book_pages_link_colab_and_binder(built_book):
    """Each chapter page of the built book (the same build as the browser test) links its notebook's launch pages."""
    for path in book.chapters():
        _assert_links_of((built_book / f"{path.stem}.html").read_text(encoding="utf-8"), path.name)
    assert len(_launch_anchors((built_book / "index.html").read_text(encoding="utf-8"))) == 2 * len(book.chapters())


def test_book_builds_long_training_chapters_in_fast_mode_unless_asked():
    assert [book.chapter_is_fast(p.stem, fast=False) for p in book.chapters()] == [
        p.stem[:2] not in book.READS_COMMITTED for p in book.chapters()
    ]
    # every chapter but 07 (which measures the machine it runs on) loads committed results, weights and sweeps
    assert "07" not in book.READS_COMMITTED and {"01", "02", "03", "05", "06", "08"} <= set(book.READS_COMMITTED)
    assert all(book.chapter_is_fast(p.stem, fast=True) for p in book.chapters())
    assert not any(book.chapter_is_fast(p.stem, fast=False, all_full=True) for p in book.chapters())


def test_book_command_rejects_a_bad_timeout():
    run = subprocess.run(
        [sys.executable, "-m", "mlcourse", "book", "--timeout", "0", "--out", "/nonexistent"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "--timeout=0 is not allowed" in run.stderr, run.stderr
    run = subprocess.run([sys.executable, "-m", "mlcourse", "book", "99"], capture_output=True, text=True)
    assert run.returncode == 2 and "chapter '99' is not known" in run.stderr, run.stderr


# --------------------------------------------------------------------------------------------------
# the built book in a browser, network off


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    given = os.environ.get("MLCOURSE_BOOK_DIR")
    if given and (Path(given) / "index.html").exists():
        return Path(given)
    out = tmp_path_factory.mktemp("book")
    book.build_book(out, fast=True)
    return out


@pytest.fixture(scope="module")
def book_url(built_book):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(built_book)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _browser(pw):
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: {INSTALL_HINT}", pytrace=False)
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, timeout=60_000)


def _offline_page(browser, allowed: str, blocked: list[str]):
    """A page whose requests outside ``allowed`` (this test's server) are aborted and recorded."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    def route(r):
        url = r.request.url
        if url.startswith(allowed) or url.startswith("data:"):
            r.continue_()
        else:
            blocked.append(url)
            r.abort()

    page.route("**/*", route)
    return page


JS_PAGE_STATE = """() => {
  const imgs = [...document.images];
  const errors = [...document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')]
      .map(e => e.textContent).filter(t => /Traceback|Error:|Exception/.test(t));
  const md = [...document.querySelectorAll('.jp-RenderedMarkdown')].map(e => e.innerText).join('\\n');
  return {
    h1: (document.querySelector('h1') || {}).textContent || '',
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => (i.src || '').slice(0, 80)),
    errors: errors.map(t => t.slice(0, 500)),
    traceback: document.body.innerText.includes('Traceback (most recent call last)'),
    rawMath: (md.match(/\\$[^$\\s][^$\\n]{0,80}\\$/g) || []).slice(0, 5),
    math: document.querySelectorAll('.MathJax, .MathJax_CHTML, mjx-container').length,
  };
}"""


@pytest.mark.browser
def test_built_book_in_a_browser_with_the_network_off(built_book, book_url, tmp_path):
    from playwright.sync_api import sync_playwright

    pages = sorted(p.name for p in built_book.glob("[0-9][0-9]_*.html"))
    assert [p[:2] for p in pages] == [p.stem[:2] for p in book.chapters()], pages
    blocked: list[str] = []
    images: dict[str, int] = {}
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = _offline_page(browser, book_url, blocked)
            page.goto(f"{book_url}/index.html")
            assert "mlcourse" in page.title()
            links = page.locator("table.mlcourse-toc a[href$='.html']").evaluate_all(
                "a => a.map(x => x.getAttribute('href'))"
            )
            assert links == pages, links
            for name in pages:
                page.goto(f"{book_url}/{name}", wait_until="load")
                if name.startswith("04"):  # MathJax typesets after load
                    page.wait_for_function(
                        "() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 && "
                        "document.querySelectorAll('.MathJax, .MathJax_CHTML').length > 20",
                        timeout=60_000,
                    )
                state = page.evaluate(JS_PAGE_STATE)
                title = book.title_of(nbformat.read(ROOT / "notebooks" / name.replace(".html", ".ipynb"), 4), name)
                assert state["h1"].strip().rstrip("¶").strip() == title, (name, state["h1"])
                assert title in page.title(), (name, page.title())
                assert not state["errors"] and not state["traceback"], (name, state["errors"])
                assert not state["broken"], (name, state)  # every image loads
                images[name] = state["images"]
                if name.startswith("04"):
                    assert state["math"] > 20 and not state["rawMath"], (name, state)
                    page.screenshot(path=str(tmp_path / "book_04.png"))
            page.goto(f"{book_url}/{pages[1]}")  # a page links to its notebook, which is in the site
            href = page.locator("nav.mlcourse-nav-top .mlcourse-run a[download]").get_attribute("href")
            assert (built_book / href).exists(), href
            launch = page.locator("nav.mlcourse-nav-top .mlcourse-run a.mlcourse-launch")  # shown, not fetched
            assert launch.count() == 2 and "colab.research.google.com" in launch.first.get_attribute("href")
        finally:
            browser.close()
    assert not blocked, f"the book asked the network for: {sorted(set(blocked))[:10]}"
    # the chapters with experiments show their figures (chapter 07 is tables and code only)
    assert all(images[p] > 0 for p in pages if p[:2] in ("01", "02", "03", "04", "05", "06", "08")), images
    stable = os.environ.get("MLCOURSE_TEST_ARTIFACTS")
    if stable:
        (Path(stable) / "book").mkdir(parents=True, exist_ok=True)
        (tmp_path / "book_04.png").replace(Path(stable) / "book" / "book_04.png")


# --------------------------------------------------------------------------------------------------
# RISE: chapter 01 presented as slides

JS_CURRENT_SLIDE = """() => {
  const top = document.querySelector('.reveal .slides > section.present');
  if (!top) return null;
  const inner = top.querySelector(':scope > section.present') || top;
  const all = [...document.querySelectorAll('.reveal .slides > section')];
  return {h: all.indexOf(top), text: inner.innerText.trim().slice(0, 200)};
}"""


@pytest.mark.browser
def test_chapter_01_steps_through_two_slides_in_rise(tmp_path):
    from playwright.sync_api import sync_playwright

    lab = JupyterLab(ROOT / "notebooks", tmp_path)
    blocked: list[str] = []
    try:
        lab.wait_until_answering()
        with sync_playwright() as pw:
            browser = _browser(pw)
            try:
                page = _offline_page(browser, lab.url, blocked)
                page.goto(f"{lab.url}/rise/{TALK}?token={lab.token}", timeout=120_000)
                page.wait_for_function(f"({JS_CURRENT_SLIDE})() !== null", timeout=120_000, polling=500)
                first = page.evaluate(JS_CURRENT_SLIDE)
                assert first["h"] == 0 and "Background: the few-shot problem" in first["text"], first
                seen = [first]
                for _ in range(2):
                    # reveal.js: Space is the next slide, vertical ones included. On a loaded machine the first press
                    # can arrive before reveal.js listens for keys: unchanged after 8 s, the press was lost; press again
                    for wait_s in (8, 20):
                        page.keyboard.press("Space")
                        deadline = time.monotonic() + wait_s
                        while page.evaluate(JS_CURRENT_SLIDE) == seen[-1] and time.monotonic() < deadline:
                            time.sleep(0.2)
                        if page.evaluate(JS_CURRENT_SLIDE) != seen[-1]:
                            break
                    seen.append(page.evaluate(JS_CURRENT_SLIDE))
                page.wait_for_timeout(1000)  # the slide transition
                page.screenshot(path=str(tmp_path / "rise.png"))
                assert seen[1] != seen[0] and seen[2] != seen[1], seen
                assert seen[1]["h"] == 0 and "Learning objectives" in seen[1]["text"], seen  # a sub-slide
                assert seen[2]["h"] == 1 and "Few-shot classification, made concrete" in seen[2]["text"], seen
            finally:
                browser.close()
    finally:
        lab.stop()


def test_publishing_workflow_builds_the_same_make_book_and_deploys_its_folder():
    """.github/workflows/book.yml cannot run here; it must run README's `make book` and publish build/book."""
    text = (ROOT / ".github" / "workflows" / "book.yml").read_text()
    run_lines = [line.split("run:", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("run:")]
    assert run_lines == ["make book"], run_lines
    assert re.search(r"upload-pages-artifact@v\d+\s+with:\s+path: build/book\b", text), "build/book is not uploaded"
    assert "actions/deploy-pages@" in text and "branches: [main]" in text
    assert "make book" in (ROOT / "README.md").read_text()
