#!/usr/bin/env bash
# Runs every test on this machine: prepares it (tests/setup.sh: packages, engine,
# base images, virtualenv), checks the code with ruff, then runs the fast layer and
# the system layer (a real systemd host container with a real Docker engine).
# Extra arguments go to pytest, e.g. tests/run.sh -k workspace.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/tests/setup.sh"
cd "$top"
.venv/bin/ruff check .
.venv/bin/python -m pytest -q -m "not system" "$@"
.venv/bin/python -m pytest -q --durations=15 -m system "$@"
