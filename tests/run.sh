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
# The fast layer in two workers (pytest-xdist).
.venv/bin/python -m pytest -q -n 2 -m "not system" "$@"
if (($#)); then  # a chosen part: one run, as asked
  exec .venv/bin/python -m pytest -q --durations=15 -m system "$@"
fi
# The whole system layer as two runs at once, as most of a system test waits on a container:
# the modules with lab hosts of their own, and the others on the one host they share (in
# the order they always ran in, as later modules find what earlier ones left).
own=(tests/system/test_bench.py tests/system/test_coreos.py tests/system/test_fleet.py
     tests/system/test_recovery.py)
log=$(mktemp)
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 -m system "${own[@]}" \
  >"$log" 2>&1 &
others=$!
shared=0
.venv/bin/python -m pytest -q --durations=15 -m system tests/system \
  "${own[@]/#/--ignore=}" || shared=$?
wait "$others" && own_hosts=0 || own_hosts=$?
echo "--- the modules with lab hosts of their own (${own[*]##*/}):"
cat "$log" && rm -f "$log"
((shared == 0 && own_hosts == 0))
