# The two commands of the README. Both set everything up first (scripts/setup.sh is idempotent).
PY := .venv/bin/python
PORT ?= 8888
SHARED_OMNIGLOT ?= ../shared/data/omniglot

.PHONY: setup course test test-fast lint student data-omniglot browser book clean
# Jupyter refuses to start as root without --allow-root (containers, CI machines).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

setup:
	bash scripts/setup.sh

# Main job: the course in JupyterLab (fast mode off; set MLCOURSE_FAST=1 for quick runs).
course: setup
	.venv/bin/jupyter lab --notebook-dir=notebooks --port=$(PORT) $(ALLOW_ROOT)

# Omniglot: import a local copy when one sits beside the project (CI, this workplace), else the
# notebooks download the official archives on first use.
data-omniglot: setup
	@if [ -d "$(SHARED_OMNIGLOT)" ]; then $(PY) -m mlcourse.cli data import omniglot "$(SHARED_OMNIGLOT)"; fi

# Debian's Chromium + Playwright for the end-to-end browser test (tests/test_browser.py).
browser: setup
	bash scripts/install_browser.sh

# The architecture and the style: import-linter's layer contracts (pyproject.toml) and ruff (lint + format).
lint: setup
	.venv/bin/lint-imports
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

# Whole test suite: lint, unit tests, the course in a real browser, then every notebook executed by nbval in fast mode;
# two pytest workers (pytest-xdist), one file each at a time: a notebook's cells stay in order in one kernel. Each
# process (and each notebook kernel it starts) uses one torch thread: two workers with two threads each on two cores
# made the tiny sinusoid steps 8x slower (39 s against 4.8 s for 300 MAML iterations, measured 2026-12-03).
test: setup lint data-omniglot browser
	MLCOURSE_FAST=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile tests notebooks --nbval-lax -p no:cacheprovider --durations=25

# The edit loop's tier: the unit tests of the library and the course, without those marked slow (a pip install, the
# book, the browser, grading whole chapters, torchrun, re-evaluating every shipped run) and without the notebooks.
test-fast:
	MLCOURSE_FAST=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile tests -m "not slow and not browser" -p no:cacheprovider --durations=10

# The course as a static HTML site in build/book, every chapter executed: 00-06 in full mode (they load the committed
# results and weights), 07 and 08 in fast mode (their full mode measures this machine; mlcourse/course/book.py,
# READS_COMMITTED); MLCOURSE_FAST=1 builds every chapter in fast mode, as CI does. Open build/book/index.html.
book: setup data-omniglot
	.venv/bin/mlcourse book --out build/book

# The student version of the chapters with graded exercises (nbgrader): solutions and hidden tests removed.
student: setup
	.venv/bin/mlcourse student-notebooks --out build/student

clean:
	rm -rf .venv .cache
