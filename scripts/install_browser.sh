#!/usr/bin/env bash
# Install what the browser test (tests/test_browser.py, marker `browser`) needs:
#   * Debian's Chromium at /usr/bin/chromium (Playwright cannot download its own browser here) and a CJK font;
#   * the `playwright` Python package in the course's virtual environment (no `playwright install`).
# Idempotent: a second run only checks. Needs root (or sudo) for apt-get when Chromium is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MLCOURSE_VENV:-.venv}
VPY="$PWD/$VENV/bin/python"
CHROMIUM=${MLCOURSE_CHROMIUM:-/usr/bin/chromium}

# A CJK font too: the chapters quote the article's Chinese terms, and the book's pages are screenshotted.
if [ -x "$CHROMIUM" ] && { [ -n "${MLCOURSE_CHROMIUM:-}" ] || fc-list 2>/dev/null | grep -qi "wenquanyi"; }; then
  echo "[browser] chromium present: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
else
  if ! command -v apt-get >/dev/null; then
    echo "[browser] no apt-get here: install Chromium yourself and point MLCOURSE_CHROMIUM at its binary" >&2
    exit 1
  fi
  echo "[browser] installing Debian's chromium and a CJK font (apt-get)"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "[browser] need root or sudo to apt-get install chromium" >&2; exit 1; }
    SUDO="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Another apt process (a colleague, unattended upgrades) may hold the lock: wait up to 10 minutes.
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium fonts-dejavu-core fonts-wqy-zenhei >/dev/null
  "$CHROMIUM" --version
fi

if [ ! -x "$VPY" ]; then
  echo "[browser] $VENV is missing: run scripts/setup.sh (or make setup) first" >&2
  exit 1
fi
if "$VPY" -c "import playwright.sync_api" 2>/dev/null; then
  echo "[browser] playwright present: $("$VPY" -c 'from importlib.metadata import version; print(version("playwright"))')"
else
  echo "[browser] installing playwright into $VENV (Python package only; the browser is Debian's)"
  "$VPY" -m pip install -q "playwright>=1.40" 2>&1 | grep -v "^WARNING: Location" || true
  "$VPY" -c "import playwright.sync_api"
fi
echo "[browser] ready"
