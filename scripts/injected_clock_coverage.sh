#!/usr/bin/env bash
# What the behaviour suite covers of the core when only the tests that drive time by hand
# (the ManualClock `clock` fixture) run: the run path users take must be the one tested.
# Needs `pip install coverage`.  Prints coverage's table of mashroom_jobs/core.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f .coverage
.venv/bin/python -m coverage run --source mashroom_jobs/core --concurrency thread \
    -m pytest tests --injected-clock-only -m "not browser and not realtime and not binder" -q -p no:cacheprovider \
    --timeout 120 >/dev/null
.venv/bin/python -m coverage report --omit 'mashroom_jobs/core/cron/*' "$@"
