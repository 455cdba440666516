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
# Two workers each (pytest-xdist): the fast layer by test; the system layer by lab host,
# the modules on the shared host in one worker and those with hosts of their own in the
# other (tests/system/conftest.py), as most of a system test is waiting on a container.
.venv/bin/python -m pytest -q -n 2 -m "not system" "$@"
.venv/bin/python -m pytest -q -n 2 --dist loadgroup --durations=25 -m system "$@"
