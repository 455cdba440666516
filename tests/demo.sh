#!/usr/bin/env bash
# The main job as a demo: prepares this machine (tests/setup.sh), then builds the
# image, boots a systemd + Docker host container, adds a person, starts their
# workspace and logs in over ssh. The host keeps running afterwards to look around.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/tests/setup.sh"
cd "$top"
exec .venv/bin/python -m tests.demo "$@"
