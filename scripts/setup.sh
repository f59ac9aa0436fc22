#!/usr/bin/env bash
# Create .venv (if needed) and install everything the course and its tests need.
# Idempotent: a second run only checks. Used by `make course` and `make test` (README).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON_FOR_VENV:-python3}
VENV=${MLCOURSE_VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
VPY="$PWD/$VENV/bin/python"
stamp="$VENV/.mlcourse-setup-$(cat pyproject.toml scripts/setup.sh scripts/install_learn2learn.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && "$VPY" -c "import mlcourse, learn2learn, higher, torchopt, torch, torchvision" 2>/dev/null; then
  echo "[setup] environment is up to date ($VENV)"
  exit 0
fi

# PyTorch first: a pinned pair whose torchvision operators match the torch build.
if ! "$VPY" -c "import torch, torchvision; torchvision.ops.nms" 2>/dev/null; then
  echo "[setup] installing torch and torchvision"
  "$VPY" -m pip install -q "torch==2.14.1" "torchvision==0.29.1" 2>&1 | grep -v "^WARNING: Location" \
    || "$VPY" -m pip install -q torch torchvision
fi
# learn2learn 0.2.0 (optional for `pip install`, always here) cannot be pip-installed on Python >= 3.11: build it
# from its sdist (see the script).
PYTHON="$VPY" bash scripts/install_learn2learn.sh 2>&1 | grep -Ev "^WARNING: Location|warning:|Deprecat|^ *\*|^!!|^$|Gym|gym|Please|Users of|fetch_build_eggs|initialize_options|Requirements should|If you are using|This deprecation|calls to avoid|Instead, use|See https|^ +[0-9]+ \||^ +\||In function" || true
"$VPY" -c "import learn2learn" || { echo "[setup] learn2learn failed to install"; exit 1; }
echo "[setup] installing mlcourse and its dependencies"
# learn2learn is the `compare` extra: already built above, so pip finds it installed and builds nothing.
"$VPY" -m pip install -q -e ".[dev,compare]" 2>&1 | grep -v "^WARNING: Location" || true
"$VPY" -c "import mlcourse, learn2learn, higher, torchopt, torch, jupyterlab, ipywidgets, nbval" 
rm -f "$VENV"/.mlcourse-setup-*
touch "$stamp"
echo "[setup] done: $("$VPY" -c 'import torch, learn2learn; print("torch", torch.__version__, "| learn2learn", learn2learn.__version__)')"
