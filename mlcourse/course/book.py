"""The course as a static site and as slides (``make book``, ``mlcourse book``; the README's "Read it" section).

Built with **nbconvert** (Jupyter's own converter) and a local template (``book_template/``): each chapter is
executed with ``nbclient`` (fast mode in CI; otherwise full mode for the chapters whose full mode loads the
committed full-scale results and weights, fast mode for the two that measure the machine they run on, see
:data:`READS_COMMITTED`), its exercises are shown as the student sees them (solutions and hidden tests removed
after execution), every widget keeps the figure it drew with its default
values plus a note on how to make it live, and the page is written with MathJax served from the site itself
(the copy bundled with ``jupyter-server-mathjax``; no CDN). The index lists the chapters in the order of the
article's sections and each page links to its notebook.

Slides: every chapter carries RISE slide metadata (:func:`slide_types`, checked by ``tests/test_book.py``);
chapter 01 is laid out by hand as a talk.
"""

from __future__ import annotations

import contextlib
import copy
import html
import json
import os
import platform
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import nbformat

from mlcourse.config import NOTEBOOKS, REPOSITORY_URL, chapter_notebooks, resolve_device
from mlcourse.course.syllabus import syllabus_html
from mlcourse.provenance import provenance

TEMPLATE_NAME = "mlcourse_book"
TEMPLATE_DIR = Path(__file__).with_name("book_template") / TEMPLATE_NAME  # nbconvert template + style sheet
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"  # the configuration the bundled copy ships

# The article's sections, in its order (元学习算法的扩展性分析); chapter NN teaches section NN.
ARTICLE_SECTIONS = {
    "00": "—",
    "01": "§1 背景介绍 · background",
    "02": "§2 核心概念与联系 · core concepts",
    "03": "§3 核心算法原理和具体操作步骤 · algorithms",
    "04": "§4 数学模型和公式详细讲解 · the bilevel objective",
    "05": "§5 项目实践 · the CIFAR-100 project",
    "06": "§6 实际应用场景 · applications",
    "07": "§7 工具和资源推荐 · tools",
    "08": "§8 总结：未来发展趋势与挑战 · trends",
}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
LIVE_NOTE = (
    '<div class="mlcourse-live-note"><b>Interactive in the notebook.</b> The controls of this widget need a '
    "running Python kernel; the figure shows its default values. To make it live: <code>make course</code>, "
    "open <code>notebooks/{notebook}</code> and run the cells.</div>"
)
EXERCISE_NOTE = (
    '<div class="mlcourse-exercise-note"><b>Exercise.</b> Write this cell in the notebook '
    "(<code>notebooks/{notebook}</code>); the graded tests below it check your answer "
    "(<code>mlcourse grade</code>). The book shows the student version: no solution.</div>"
)
SLIDE_TYPES = ("slide", "subslide", "fragment", "skip", "notes", "-")
# Chapters whose full mode reads the committed results, weights and sweeps (results/omniglot, results/chapters,
# benchmarks/results): minutes on a CPU. Chapter 07 is the exception: its full mode *measures this machine* (the
# learn2learn comparison and `mlcourse bench`), so the book builds it in fast mode, says so on its page, and shows
# the committed benchmark files in the chapter's own tables; ``--all-full`` builds it in full mode too.
READS_COMMITTED = ("00", "01", "02", "03", "04", "05", "06", "08")
FAST_PAGE_NOTE = "built in fast mode: tiny runs that rank nothing; the tables read the committed full-scale results"
COLAB = "https://colab.research.google.com/github/{repo}/blob/main/notebooks/{notebook}"
BINDER = "https://mybinder.org/v2/gh/{repo}/HEAD?labpath=notebooks/{notebook}"


def launch_links(notebook: str, repository: str = REPOSITORY_URL) -> dict[str, str]:
    """The "Open in Colab" and Binder addresses of ``notebook`` (a file in ``notebooks/``), built from the one
    repository setting (``mlcourse.config.REPOSITORY_URL``): the README and every book page link them."""
    prefix = "https://github.com/"
    repo = repository.removeprefix(prefix).removesuffix(".git").strip("/")
    if not repository.startswith(prefix) or repo.count("/") != 1 or "" in repo.split("/"):
        raise ValueError(f"repository {repository!r} is not allowed; allowed: https://github.com/<owner>/<name>")
    if not notebook.endswith(".ipynb") or "/" in notebook:
        raise ValueError(f"notebook {notebook!r} is not allowed; allowed: a file name NN_name.ipynb in notebooks/")
    return {"colab": COLAB.format(repo=repo, notebook=notebook), "binder": BINDER.format(repo=repo, notebook=notebook)}


def launch_table(paths: Optional[Sequence[Path]] = None) -> str:
    """The README's chapter list: one Markdown row per chapter with its launch links (tests/test_launch.py checks
    that the README holds exactly this table)."""
    rows = ["| # | chapter | run it in the browser |", "| --- | --- | --- |"]
    for path in paths if paths is not None else chapter_notebooks():
        title = title_of(nbformat.read(path, as_version=4), path.stem).split(" · ", 1)[-1]
        links = launch_links(path.name)
        rows.append(
            f"| {path.stem[:2]} | [{title}](notebooks/{path.name}) | "
            f"[Open in Colab]({links['colab']}) · [Binder]({links['binder']}) |"
        )
    return "\n".join(rows)


@dataclass
class ChapterPage:
    """One built chapter: its notebook, page, title, mode and execution time (seconds)."""

    stem: str
    title: str
    section: str
    seconds: float
    fast: bool = False
    page: str = field(init=False)
    notebook: str = field(init=False)

    def __post_init__(self) -> None:
        self.page = f"{self.stem}.html"
        self.notebook = f"notebooks/{self.stem}.ipynb"


def chapters(selected: Optional[Sequence[str]] = None) -> list[Path]:
    """The chapter notebooks in article order, or those whose number or name is in ``selected`` (e.g. "04")."""
    every = chapter_notebooks()
    if not selected:
        return every
    picked = []
    for want in selected:
        match = [p for p in every if p.stem == want or p.stem.split("_")[0] == want or p.name == want]
        if not match:
            raise ValueError(f"chapter {want!r} is not known; allowed: {', '.join(p.stem for p in every)}")
        picked += match
    return picked


def title_of(nb: nbformat.NotebookNode, fallback: str) -> str:
    """The first Markdown H1 of a chapter ("04 · The bilevel objective: ...")."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def short_title(title: str) -> str:
    """ "03 · Algorithms" from "03 · Algorithms: MAML, Reptile, ..." (the navigation bar's links)."""
    return title.split(":")[0].strip()


# --------------------------------------------------------------------------------------------------
# slides


def _heading_level(cell: nbformat.NotebookNode) -> int:
    if cell.cell_type != "markdown":
        return 0
    first = cell.source.lstrip().split("\n", 1)[0]
    hashes = len(first) - len(first.lstrip("#"))
    return hashes if 0 < hashes <= 6 and first[hashes : hashes + 1] == " " else 0


def _is_graded_test(cell: nbformat.NotebookNode) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def _is_setup(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().lower().startswith("# setup")


def slide_types(nb: nbformat.NotebookNode) -> list[str]:
    """The RISE slide type of each cell, by the course's rule: a level-1 or level-2 heading opens a slide, a
    level-3 heading a sub-slide; a code cell opens a sub-slide of its own (its figure large); Markdown after a
    code cell opens a sub-slide; the setup cell and graded test cells are skipped (a teacher runs all cells
    before presenting; the exercise is on screen, its checks are not).
    A cell that already has a slide type keeps it (chapters laid out by hand)."""
    types, previous = [], None
    for cell in nb.cells:
        given = cell.metadata.get("slideshow", {}).get("slide_type")
        if given:
            kind = given
        elif _is_graded_test(cell) or _is_setup(cell):
            kind = "skip"
        elif _heading_level(cell) in (1, 2):
            kind = "slide"
        elif _heading_level(cell) == 3 or cell.cell_type == "code" or previous == "code":
            kind = "subslide"
        else:
            kind = "-"
        types.append(kind)
        if kind not in ("skip", "notes"):  # what follows a hidden cell continues the slide on screen
            previous = cell.cell_type
    return types


RISE_SETTINGS = {"scroll": True, "width": "95%", "height": "95%", "start_slideshow_at": "beginning"}


def add_slide_metadata(path: Path) -> bool:
    """Write RISE slide metadata into a chapter (cells without a type get :func:`slide_types`'); True if changed."""
    nb = nbformat.read(path, as_version=4)
    before = json.dumps(nb, sort_keys=True)
    for cell, kind in zip(nb.cells, slide_types(nb)):
        cell.metadata.setdefault("slideshow", {})["slide_type"] = kind
    rise = nb.metadata.setdefault("rise", {})
    for key, value in RISE_SETTINGS.items():
        rise.setdefault(key, value)
    if json.dumps(nb, sort_keys=True) == before:
        return False
    nbformat.write(nb, path)
    return True


# --------------------------------------------------------------------------------------------------
# building


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute(nb: nbformat.NotebookNode, fast: bool, timeout: int = 1800, kernel_log: Optional[Path] = None) -> float:
    """Run a chapter in place in a fresh kernel started in ``notebooks/`` (as ``make course`` does); seconds taken.

    Fast mode sets ``MLCOURSE_FAST=1``; progress bars are off (``TQDM_DISABLE``): a page shows results, not bars.
    A cell that raises stops the build with nbclient's error (chapter, cell and traceback). The kernel's own
    messages (not the cells' outputs) go to ``kernel_log`` when given."""
    from nbclient import NotebookClient

    env = {
        "MLCOURSE_FAST": "1" if fast else "0",
        "TQDM_DISABLE": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    start = time.perf_counter()
    with _environment(env):
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOKS)}},
            store_widget_state=False,
        )
        if kernel_log is None:
            client.execute()
        else:
            with open(kernel_log, "ab") as log:
                client.execute(stdout=log, stderr=log)
    return time.perf_counter() - start


def static_page_cells(nb: nbformat.NotebookNode, notebook_name: str) -> nbformat.NotebookNode:
    """What a reader without a kernel sees: the executed chapter with its widgets' controls replaced by a note
    (their default figure stays), and each exercise in its student version (nbgrader's ClearSolutions and
    ClearHiddenTests; the solution's own output is dropped)."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    nb = copy.deepcopy(nb)
    note = nbformat.v4.new_output(
        "display_data", data={"text/html": LIVE_NOTE.format(notebook=html.escape(notebook_name))}
    )
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs, noted = [], False
        for out in cell.get("outputs", []):
            if WIDGET_VIEW in out.get("data", {}):
                if not noted:
                    outputs.append(copy.deepcopy(note))
                    noted = True
                continue
            outputs.append(out)
        cell.outputs = outputs
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.outputs = [
                nbformat.v4.new_output(
                    "display_data", data={"text/html": EXERCISE_NOTE.format(notebook=html.escape(notebook_name))}
                )
            ]
    resources = {"language": "python"}
    nb, resources = ClearSolutions().preprocess(nb, resources)
    nb, resources = ClearHiddenTests().preprocess(nb, resources)
    return nb


def _copy_mathjax(static: Path) -> str:
    """Copy MathJax 2 (bundled by jupyter-server-mathjax) into the site; return its URL relative to a page."""
    import jupyter_server_mathjax

    source = Path(jupyter_server_mathjax.__file__).with_name("static")
    target = static / "mathjax"
    if not (target / "MathJax.js").exists():
        shutil.copytree(source, target, dirs_exist_ok=True)
    return f"_static/mathjax/MathJax.js?config={MATHJAX_CONFIG}"


def render(nb: nbformat.NotebookNode, mathjax_url: str, nav: dict[str, Any]) -> str:
    """One chapter page: nbconvert's HTML exporter with the course's template (navigation, local MathJax)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATE_DIR.parent)],
        mathjax_url=mathjax_url,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    nb = copy.copy(nb)
    nb.metadata = copy.deepcopy(nb.metadata)
    nb.metadata["title"] = f"{nav['title']} · mlcourse"
    body, _ = exporter.from_notebook_node(nb, resources={"mlcourse": nav})
    return body


def _launch_html(notebook: str) -> str:
    links = launch_links(notebook)
    return f'<a href="{links["colab"]}">Open in Colab</a> · <a href="{links["binder"]}">Binder</a>'


def index_page(pages: Sequence[ChapterPage], info: dict[str, Any]) -> str:
    """The table of contents, in the article's section order."""
    rows = "\n".join(
        f'<tr><td class="num">{html.escape(p.stem[:2])}</td><td>{html.escape(p.section)}</td>'
        f'<td><a href="{p.page}">{html.escape(p.title)}</a></td><td>{"fast" if p.fast else "full"}</td>'
        f'<td><a href="{p.notebook}" download>notebook</a> · {_launch_html(p.stem + ".ipynb")}</td></tr>'
        for p in pages
    )
    modes = {p.fast for p in pages}
    mode = (
        "fast mode (tiny runs)"
        if modes == {True}
        else "full mode (committed full-scale results and weights)"
        if modes == {False}
        else "full mode where a chapter reads committed results, fast mode where it would train for long (see the table)"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>mlcourse · learning to learn</title><link rel="stylesheet" href="_static/book.css"></head>
<body class="mlcourse-index"><main>
<h1>mlcourse · learning to learn</h1>
<p>A meta-learning course that runs: one chapter per section of the article
“元学习算法的扩展性分析” (<i>Scalability analysis of meta-learning algorithms</i>), corrected where it is wrong,
with this course's own experiments. This site is the course executed once; to run it yourself, open a chapter in
Colab or Binder (a hosted notebook: its first cell installs the package), or clone the repository and type
<code>make course</code> (each page links to its notebook).</p>
<h2>Contents</h2>
<table class="mlcourse-toc"><thead><tr><th>#</th><th>Article section</th><th>Chapter</th><th>Built in</th><th>Run it</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<h2>Syllabus</h2>
{syllabus_html()}
<p class="mlcourse-built">Built {html.escape(info["date"])} in {mode} on {html.escape(info["device_name"])},
in {info["seconds"]:.0f} s ({html.escape(info["builder"])}).</p>
</main></body></html>
"""


def chapter_is_fast(stem: str, fast: bool, all_full: bool = False) -> bool:
    """The mode a chapter is built in: fast everywhere with ``fast``; else full where the chapter's full mode reads
    committed results (:data:`READS_COMMITTED`) or ``all_full`` is given, fast elsewhere."""
    if fast:
        return True
    return not (all_full or stem[:2] in READS_COMMITTED)


def _navigation(pages: Sequence[ChapterPage], i: int, notebook_name: str) -> dict[str, Any]:
    """The template's values for page ``i``: its title and section, its notebook, the previous and next pages and
    the launch buttons."""
    page = pages[i]
    return {
        "title": page.title,
        "section": page.section,
        "notebook": page.notebook,
        "notebook_name": notebook_name,
        "prev": pages[i - 1].page if i > 0 else None,
        "prev_title": short_title(pages[i - 1].title) if i > 0 else None,
        "next": pages[i + 1].page if i + 1 < len(pages) else None,
        "next_title": short_title(pages[i + 1].title) if i + 1 < len(pages) else None,
        "fast": page.fast,
        "fast_note": FAST_PAGE_NOTE,
        **launch_links(notebook_name),
    }


def build_book(
    out: str | os.PathLike = "build/book",
    *,
    fast: bool = False,
    all_full: bool = False,
    selected: Optional[Sequence[str]] = None,
    timeout: int = 1800,
    progress: bool = True,
) -> Path:
    """Execute the chapters and write the site into ``out`` (``index.html``, one page per chapter, the notebooks
    to download, ``_static/`` with MathJax and the style sheet, ``build.json`` with the timings); returns the
    index. ``make book`` (full mode where a chapter reads committed results, see :func:`chapter_is_fast`) and
    ``MLCOURSE_FAST=1 make book`` (fast mode, as CI builds it)."""
    import nbconvert

    out = Path(out)
    static = out / "_static"
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    static.mkdir(parents=True, exist_ok=True)
    shutil.copy(TEMPLATE_DIR / "book.css", static / "book.css")
    mathjax_url = _copy_mathjax(static)
    paths = chapters(selected)
    start = time.perf_counter()
    executed: list[tuple[Path, nbformat.NotebookNode, ChapterPage]] = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        chapter_fast = chapter_is_fast(path.stem, fast, all_full)
        if progress:
            print(f"[book] executing {path.name} ({'fast' if chapter_fast else 'full'} mode)", flush=True)
        seconds = execute(nb, chapter_fast, timeout, kernel_log=out / "kernel.log")
        section = ARTICLE_SECTIONS.get(path.stem[:2], "")
        page = ChapterPage(path.stem, title_of(nb, path.stem), section, seconds, chapter_fast)
        executed.append((path, nb, page))
        shutil.copy(path, out / page.notebook)
    pages = [page for _, _, page in executed]
    for i, (path, nb, page) in enumerate(executed):
        nav = _navigation(pages, i, path.name)
        (out / page.page).write_text(render(static_page_cells(nb, path.name), mathjax_url, nav), encoding="utf-8")
    info = {
        "fast": fast,
        **provenance(resolve_device("auto"), wall_time_s=time.perf_counter() - start),
        "platform": platform.platform(),
        "builder": f"nbconvert {nbconvert.__version__}",
        "seconds": time.perf_counter() - start,
        "chapters": {p.stem: round(p.seconds, 1) for p in pages},
        "fast_chapters": [p.stem for p in pages if p.fast],
    }
    index = out / "index.html"
    index.write_text(index_page(pages, info), encoding="utf-8")
    (out / "build.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    if progress:
        print(
            f"[book] wrote {index} ({len(pages)} chapter{'s' if len(pages) != 1 else ''}, {info['seconds']:.0f} s)",
            flush=True,
        )
    return index
