"""Issue 7, part 3: the course in a real browser.

End to end, as a learner sees it: JupyterLab is started the way the README's ``make course`` starts it
(``.venv/bin/jupyter lab --notebook-dir=notebooks``, plus ``--no-browser``, a free local port and a token
made up by the test), a chapter is opened in headless Chromium driven by Playwright, all its cells are
run from the menu (Run > Run All Cells) in fast mode, and then the α (inner learning rate) slider is moved
with the keyboard and the figure drawn by the widget must change.

The chapter is the first of ``notebooks/02_core_concepts.ipynb``, ``notebooks/04_bilevel_objective.ipynb``
that exists and has a slider described ``"α (inner lr)"`` (``MLCOURSE_BROWSER_NOTEBOOK=NN_name.ipynb``
picks another); before any chapter has one, a small stand-in notebook written under ``tmp_path`` with the
same kind of widget (an ipywidgets ``FloatSlider`` driving a matplotlib figure through
``widgets.interactive``) is used instead, so the browser path is always exercised.

Needs Debian's Chromium at ``/usr/bin/chromium`` (Playwright cannot download its own browser here) and
the ``playwright`` Python package: ``scripts/install_browser.sh`` installs both. The test never skips:
without them it fails and says so. Screenshots go to ``tmp_path/screenshots`` and, when
``MLCOURSE_TEST_ARTIFACTS`` names a folder, are copied to ``$MLCOURSE_TEST_ARTIFACTS/browser/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # JupyterLab in headless Chromium: `make test` only, not `make test-fast`

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CHROMIUM = Path(os.environ.get("MLCOURSE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ALPHA_LABEL = "α (inner lr)"
PREFERRED_CHAPTERS = ("02_core_concepts.ipynb", "04_bilevel_objective.ipynb")
INSTALL_HINT = "run `bash scripts/install_browser.sh` (installs Debian's chromium and the playwright package)"

SERVER_START_TIMEOUT = 90  # s, JupyterLab answering /api/status (2 shared CPU cores)
RUN_ALL_TIMEOUT = float(
    os.environ.get("MLCOURSE_BROWSER_RUN_TIMEOUT", 480)
)  # s, all cells in fast mode (< 2 min on idle cores; slack for a loaded machine)
FIGURE_TIMEOUT = 60  # s, the figure redrawn after the slider moved

# JupyterLab user settings for the test's own (temporary) settings folder: never autosave (the chapters
# are committed without outputs and the server serves the real notebooks/ folder), render every cell
# (no virtual scrolling that would drop off-screen outputs from the DOM), no news/update pop-ups.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "checkForUpdates": False,
        "fetchNews": "false",
    },
}


# --------------------------------------------------------------------------------------------------
# The notebook under test
# --------------------------------------------------------------------------------------------------
STANDIN_CELLS = [
    (
        "markdown",
        "# Stand-in chapter (browser test)\nAn α slider drives a matplotlib figure, as the chapters' widgets do.",
    ),
    (
        "code",
        "# Setup: run this cell first.\n"
        "%matplotlib inline\n"
        "import numpy as np\n"
        "import matplotlib.pyplot as plt\n"
        "import ipywidgets as widgets\n"
        "from mlcourse.config import fast_mode\n"
        "FAST = fast_mode()\n"
        "print(f'fast mode: {FAST}')",
    ),
    (
        "code",
        "def draw(alpha=0.4):\n"
        "    # One inner gradient step on f(θ) = θ²/2 from θ: θ' = (1 - α) θ; plot the meta-loss f(θ').\n"
        "    theta = np.linspace(-3, 3, 200)\n"
        "    fig, ax = plt.subplots(figsize=(4, 3))\n"
        "    ax.plot(theta, 0.5 * theta ** 2, label='f(θ)')\n"
        '    ax.plot(theta, 0.5 * ((1 - alpha) * theta) ** 2, label="f(θ\')")\n'
        "    ax.set_title(f'α = {alpha:.2f}')\n"
        "    ax.legend()\n"
        "    plt.show()\n"
        "\n"
        f"slider = widgets.FloatSlider(value=0.4, min=0.0, max=1.0, step=0.05, description={ALPHA_LABEL!r})\n"
        "widgets.interactive(draw, alpha=slider)",
    ),
]


def write_standin_notebook(folder: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
        for kind, src in STANDIN_CELLS
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "standin_alpha.ipynb"
    nbformat.write(nb, path)
    return path


def _has_alpha_slider(path: Path) -> bool:
    """The notebook builds a slider described ALPHA_LABEL itself or through an mlcourse module it uses."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return False
    sources = "\n".join("".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code")
    if ALPHA_LABEL in sources:
        return True
    for module in sorted((ROOT / "mlcourse").rglob("*.py")):
        uses = re.search(
            rf"mlcourse(\.course)?\.{module.stem}\b|from\s+mlcourse(\.course)?\s+import\s+[^\n]*\b{module.stem}\b",
            sources,
        )
        if uses and ALPHA_LABEL in module.read_text(encoding="utf-8"):
            return True
    return False


def chapter_under_test() -> str:
    """The chapter the test opens: $MLCOURSE_BROWSER_NOTEBOOK, else 02 then 04, else the stand-in."""
    chosen = os.environ.get("MLCOURSE_BROWSER_NOTEBOOK")
    if chosen:
        return chosen
    for name in PREFERRED_CHAPTERS:
        if (NOTEBOOKS / name).exists() and _has_alpha_slider(NOTEBOOKS / name):
            return name
    return "standin"


# --------------------------------------------------------------------------------------------------
# JupyterLab
# --------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (kernels run in their own session, so killpg misses them)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Terminate JupyterLab's process group and every kernel it started, even after a failure."""
    if proc.poll() is not None:
        return
    below = _descendants(proc.pid)
    groups = {proc.pid}
    for pid in below:
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            pass
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    for pgid in groups:  # whatever is left of the server's group and the kernels' sessions
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait(timeout=grace)


class JupyterLab:
    def __init__(self, notebook_dir: Path, work: Path):
        self.port = _free_port()
        self.token = secrets.token_hex(24)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = work / "jupyterlab.log"
        settings = work / "lab-settings"
        for rel, values in LAB_SETTINGS.items():
            (settings / rel).parent.mkdir(parents=True, exist_ok=True)
            (settings / rel).write_text(json.dumps(values))
        env = dict(os.environ)
        env.update(
            MLCOURSE_FAST="1",
            PYTHONUNBUFFERED="1",
            # Keep the learner's own Jupyter configuration, settings and workspaces out of the test.
            JUPYTER_CONFIG_DIR=str(work / "jupyter-config"),
            JUPYTER_RUNTIME_DIR=str(work / "jupyter-runtime"),
            JUPYTER_DATA_DIR=str(work / "jupyter-data"),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(work / "lab-workspaces"),
            IPYTHONDIR=str(work / "ipython"),
            PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        jupyter = ROOT / ".venv" / "bin" / "jupyter"
        if not jupyter.exists():  # a project set up elsewhere: the jupyter beside this interpreter
            jupyter = Path(sys.executable).with_name("jupyter")
        # The README's command (make course), run from the repository root, plus what a test needs.
        self.cmd = [
            str(jupyter), "lab", f"--notebook-dir={notebook_dir}",
            "--no-browser", f"--port={self.port}", "--ServerApp.port_retries=0",
            "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={self.token}",
        ]  # fmt: skip
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root; Jupyter refuses it
            self.cmd.append("--allow-root")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log_tail(self, chars: int = 4000) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_until_answering(self, timeout: float = SERVER_START_TIMEOUT) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=5) as r:
                    if r.status == 200:
                        return time.monotonic() - start
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"JupyterLab did not answer on {self.url} within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        try:
            _stop(self.proc)
        finally:
            self._log.close()


# --------------------------------------------------------------------------------------------------
# Page helpers (JupyterLab 4 DOM, ipywidgets 8 / noUiSlider DOM)
# --------------------------------------------------------------------------------------------------
JS_CELL_STATE = """() => {
  const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  if (!nb) return null;
  const prompts = [...nb.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent.trim());
  // JupyterLab renders a cell's error as stderr text (mime application/vnd.jupyter.stderr) with the traceback.
  const errors = [...nb.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
      .map(e => e.textContent).filter(t => t.includes('Traceback (most recent call last)'))
      .map(t => t.slice(-3000));
  return {prompts, errors};
}"""


def _image_sources(cell) -> list[str]:
    return cell.locator("img").evaluate_all("imgs => imgs.map(i => i.getAttribute('src') || '')")


def _saved_outputs(path: Path) -> int:
    """How many code cells of the notebook on disk carry an execution count. A save from JupyterLab after
    Run All gives every executed cell one; committed chapters have none (reference outputs kept for
    ``nbval-check-output`` cells come without counts), so this tells a browser save from the chapter's own."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return sum(1 for c in cells if c.get("cell_type") == "code" and c.get("execution_count") is not None)


def _kernel_idle(page) -> bool:
    return bool(
        page.evaluate(
            """() => {
              const s = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
              return !!s && s.getAttribute('data-status') === 'idle';
            }"""
        )
    )


def _digest(sources: list[str]) -> list[str]:
    return [hashlib.sha1(s.encode()).hexdigest()[:12] for s in sources]


@pytest.fixture
def artifacts(tmp_path):
    folder = tmp_path / "screenshots"
    folder.mkdir()
    yield folder
    stable = os.environ.get("MLCOURSE_TEST_ARTIFACTS")
    if stable:
        target = Path(stable) / "browser"
        target.mkdir(parents=True, exist_ok=True)
        for png in folder.glob("*.png"):
            shutil.copy2(png, target / png.name)


# --------------------------------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------------------------------
@pytest.mark.browser
@pytest.mark.parametrize("chapter", [chapter_under_test()])
def test_alpha_slider_redraws_figure_in_jupyterlab(chapter, tmp_path, artifacts):
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: {INSTALL_HINT}", pytrace=False)
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"the playwright Python package is missing: {INSTALL_HINT}", pytrace=False)

    if chapter == "standin":
        notebook = write_standin_notebook(tmp_path / "notebooks")
        notebook_dir = notebook.parent
    else:
        notebook = NOTEBOOKS / chapter
        notebook_dir = NOTEBOOKS
        assert notebook.exists(), f"{notebook} does not exist"
    saved_outputs_before = _saved_outputs(notebook)

    lab = JupyterLab(notebook_dir, tmp_path)
    try:
        timings["server_start"] = lab.wait_until_answering()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, timeout=60_000)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1600})
                console_errors: list[str] = []
                page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
                try:
                    _drive(page, lab, notebook.name, artifacts, timings, t0)
                except (AssertionError, PlaywrightError) as exc:
                    try:
                        page.screenshot(path=str(artifacts / "failure.png"), full_page=True)
                    except PlaywrightError:
                        pass
                    raise AssertionError(
                        f"{exc}\n--- browser console errors (last 10) ---\n"
                        + "\n".join(console_errors[-10:])
                        + f"\n--- JupyterLab log (tail) ---\n{lab.log_tail()}"
                    ) from exc
            finally:
                browser.close()
    finally:
        lab.stop()
        assert lab.proc.poll() is not None, "JupyterLab is still running after stop()"

    # Running the chapter in the browser must not save outputs into the committed notebook (no autosave).
    assert _saved_outputs(notebook) == saved_outputs_before, f"{notebook} was saved with outputs by the browser session"
    timings["total"] = time.monotonic() - t0
    print("browser test timings (s): " + ", ".join(f"{k}={v:.1f}" for k, v in timings.items()))


def _drive(page, lab: JupyterLab, name: str, shots: Path, timings: dict, t0: float) -> None:
    page.goto(f"{lab.url}/lab/tree/{name}?token={lab.token}", timeout=90_000)
    page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for(timeout=90_000)
    # A notebook without kernel metadata asks for a kernel: accept the default (Python 3).
    dialog_button = page.locator(".jp-Dialog .jp-mod-accept")
    if dialog_button.count():
        dialog_button.first.click()
    # Wait for the kernel to be ready: a kernel is named (not "No Kernel", whose indicator also says idle)
    # and the notebook toolbar's execution indicator went through initializing/connecting to idle.
    page.wait_for_function(
        """() => {
          const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
          const name = panel && panel.querySelector('.jp-KernelName');
          const status = panel && panel.querySelector('.jp-Notebook-ExecutionIndicator');
          return !!(name && status && name.textContent.trim() && name.textContent.trim() !== 'No Kernel'
                    && status.getAttribute('data-status') === 'idle');
        }""",
        timeout=90_000,
        polling=250,
    )
    timings["lab_loaded"] = time.monotonic() - t0
    page.screenshot(path=str(shots / "01_opened.png"))

    # Run > Run All Cells, through the menu bar as a learner does.
    page.locator(".jp-NotebookPanel .jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    run_started = time.monotonic()

    # Done when nothing is queued or running ("[*]") and the kernel is idle, twice 1 s apart. Run All
    # stops at a cell that raises (the rest stay "[ ]"): that is reported as the chapter's error.
    deadline, settled = run_started + RUN_ALL_TIMEOUT, 0
    while True:
        state = page.evaluate(JS_CELL_STATE)
        prompts = state["prompts"] if state else []
        started = bool(prompts) and re.fullmatch(r"\[\d+\]:?", prompts[0]) is not None
        busy = any("*" in p for p in prompts)
        settled = settled + 1 if started and not busy and _kernel_idle(page) else 0
        if settled >= 2:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"Run All Cells did not finish within {RUN_ALL_TIMEOUT:.0f}s; prompts: {prompts}")
        time.sleep(1.0)
    timings["run_all"] = time.monotonic() - run_started
    state = page.evaluate(JS_CELL_STATE)
    assert not state["errors"], "a cell raised an error:\n" + "\n----\n".join(state["errors"])
    not_run = [i for i, p in enumerate(state["prompts"]) if not re.fullmatch(r"\[\d+\]:?", p)]
    assert not not_run, f"code cells {not_run} did not run (prompts {state['prompts']})"

    # Widgets render (the jupyterlab_widgets extension is active), not "Loading widget..." / a text repr.
    notebook = page.locator(".jp-NotebookPanel .jp-Notebook").first
    slider = notebook.locator(".widget-slider", has=page.locator(".widget-label", has_text=ALPHA_LABEL)).first
    try:
        slider.wait_for(timeout=30_000)
    except Exception as exc:  # noqa: BLE001 - turn a timeout into a readable failure
        text = notebook.inner_text()
        hint = " (widget manager missing: 'Loading widget...' is shown)" if "Loading widget" in text else ""
        raise AssertionError(f"no slider described {ALPHA_LABEL!r} appeared{hint}") from exc
    body = notebook.inner_text()
    assert "Loading widget..." not in body, "a widget is still 'Loading widget...' after all cells ran"
    assert "Error displaying widget" not in body, "JupyterLab could not display a widget"

    cell = slider.locator("xpath=ancestor::div[contains(concat(' ', @class, ' '), ' jp-Cell ')][1]")
    cell.locator(".widget-output img, .jp-OutputArea-output img").first.wait_for(timeout=30_000)
    cell.scroll_into_view_if_needed()
    images_before = _image_sources(cell)
    assert any(s.startswith("data:image/png;base64,") for s in images_before), images_before[:1]
    handle = slider.locator(".noUi-handle").first
    readout = slider.locator(".widget-readout").first
    value_before = handle.get_attribute("aria-valuenow")
    readout_before = readout.inner_text()
    cell.screenshot(path=str(shots / "02_figure_before.png"))
    page.screenshot(path=str(shots / "02_page_before.png"))

    # Move α with the keyboard on the focused slider handle (up unless already at the maximum).
    key = (
        "ArrowLeft" if handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax") else "ArrowRight"
    )
    handle.focus()
    moved = time.monotonic()
    for _ in range(3):
        page.keyboard.press(key)
    page.wait_for_function(
        "el => el.getAttribute('aria-valuenow') !== " + json.dumps(value_before),
        arg=handle.element_handle(),
        timeout=10_000,
    )
    value_after = handle.get_attribute("aria-valuenow")

    # The figure (an <img> written by the widget's Output) must be redrawn with other pixels.
    # Wait until it changed and is settled (kernel idle, same images on two polls 0.5 s apart).
    deadline = time.monotonic() + FIGURE_TIMEOUT
    images_after, previous = images_before, None
    while time.monotonic() < deadline:
        images_after = _image_sources(cell)
        changed = bool(images_after) and images_after != images_before
        if changed and all(s.startswith("data:image/") for s in images_after):
            if images_after == previous and _kernel_idle(page):
                break
            previous = images_after
        time.sleep(0.5)
    timings["redraw"] = time.monotonic() - moved
    cell.screenshot(path=str(shots / "03_figure_after.png"))
    page.screenshot(path=str(shots / "03_page_after.png"))
    assert images_after != images_before, (
        f"the figure did not change within {FIGURE_TIMEOUT}s after moving {ALPHA_LABEL!r} "
        f"from {value_before} to {value_after}: images {_digest(images_before)} -> {_digest(images_after)}"
    )
    assert readout.inner_text() != readout_before, "the slider's readout did not change"
    state = page.evaluate(JS_CELL_STATE)
    assert not state["errors"], "moving the slider raised an error:\n" + "\n----\n".join(state["errors"])
