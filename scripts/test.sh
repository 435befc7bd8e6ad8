#!/usr/bin/env bash
# Install everything into .venv and run every test:
#   ruff, mypy --strict, unit tests, the notebooks under nbval, the documentation's build,
#   the real-browser tests, the benchmark smoke run.
# Needs python3 (>= 3.10) and Debian's chromium for the browser test (installed here with
# apt-get when missing and running as root). MASHROOM_JOBS_SKIP_BROWSER=1 skips the browser
# test on a developer machine; CI never sets it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ "${MASHROOM_JOBS_SKIP_BROWSER:-}" != 1 ] && ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing Debian's chromium for the browser test"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "chromium is missing: install it (apt-get install chromium) or set MASHROOM_JOBS_SKIP_BROWSER=1" >&2
        exit 1
    fi
fi

echo "== installing into .venv"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test,e2e,bench,metrics,dask,docs,notebook]' ./plugins_examples/mashroom-jobs-example

echo "== ruff, import-linter, mypy --strict on the whole package"
.venv/bin/ruff check .
.venv/bin/lint-imports --no-cache
.venv/bin/mypy --strict mashroom_jobs

echo "== unit tests"
.venv/bin/python -m pytest tests -m "not browser" -q --timeout 120

echo "== notebooks (nbval)"
timeout -k 10 900 .venv/bin/python -m pytest notebooks --nbval --nbval-current-env \
    --nbval-sanitize-with notebooks/sanitize.cfg --nbval-cell-timeout 120 -p no:cacheprovider \
    -q --timeout 300

echo "== documentation (sphinx-build, offline, warnings as errors)"
# -E reads every page again, so a warning is never hidden by an earlier build's environment
.venv/bin/sphinx-build -W --keep-going -E -q -b html docs docs/_build/html

if [ "${MASHROOM_JOBS_SKIP_BROWSER:-}" != 1 ]; then
    echo "== browser tests (JupyterLab, Notebook 7, Voila + Chromium)"
    timeout -k 15 900 .venv/bin/python -m pytest tests/e2e -m browser -q --timeout 300
fi

echo "== benchmark smoke run"
timeout -k 10 600 .venv/bin/python -m benchmarks --quick --json /tmp/mashroom-jobs-bench-quick.json
