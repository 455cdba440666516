"""Smoke test of the benchmark: the real entry point at a tiny N, on its own lab host."""

import json
import math
import re
import subprocess
import sys

from tests.lab.host import TOP

RESULTS = TOP / "bench/results"
WAYS = ("unitgen", "seed", "attached")
FIGURES = {
    "bringup": ("seconds", "last_up_s", "command_s", "up", "failed"),
    "memory_mib": ("shim", "container", "supervisor", "dockerd", "containerd", "total",
                   "systemd_growth"),
    "idle_cpu": ("seconds", "cpu_seconds", "percent_of_one_core"),
}


def run_bench() -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", "--workspaces", "3", "--idle", "3",
                           "--logins", "5"], cwd=TOP, capture_output=True, text=True,
                          timeout=1200)


def number(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def test_bench_measures_every_figure_for_every_way():
    kept = set(RESULTS.glob("*"))
    try:
        done = run_bench()
        assert done.returncode == 0, done.stdout + done.stderr
        written = [TOP / path for path in re.findall(r"^(?:results|plot): (\S+)$", done.stdout,
                                                     re.MULTILINE)]
        assert [path.suffix for path in written] == [".json", ".png"]
        assert written[1].stat().st_size > 0
        document = json.loads(written[0].read_text())
        assert document["complete"] and document["machine"]["cores"] >= 1
        assert re.fullmatch(r"[0-9a-f]{40}", document["unitgen"]["commit"])
        (run,) = document["runs"]
        assert run["workspaces"] == 3 and tuple(run["ways"]) == WAYS
        for way, figures in run["ways"].items():
            for group, names in FIGURES.items():
                assert all(number(figures[group][name]) for name in names), (way, group)
            assert all(number(figures[name]) for name in ("clear_s", "wall_s")), way
            assert all(map(number, figures["phases_s"].values())), way
            assert figures["bringup"]["failed"] == 0 and figures["bringup"]["up"] == 3, way
            assert figures["memory_mib"]["shims"] == 3, way
            for running in ("all", "one"):
                logins = figures["login_ms"][running]
                assert logins["logins"] == 5 and logins["failed"] == 0, (way, running)
                assert number(logins["p50"]) and number(logins["p95"]), (way, running)
        supervised = {way: run["ways"][way]["memory_mib"]["supervisors"] for way in WAYS}
        assert supervised == {"unitgen": 3, "seed": 0, "attached": 3}
        status = run["ways"]["unitgen"]["status"]
        assert status["command"] in ("unitgen status --json", "unitgen list --json")
        assert number(status["median_s"]) and number(run["ways"]["unitgen"]["add_seconds"])
    finally:
        for path in set(RESULTS.glob("*")) - kept:
            path.unlink()
    assert subprocess.run(["docker", "container", "inspect", "wormhole-bench"],
                          capture_output=True).returncode != 0
