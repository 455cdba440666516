"""Smoke tests of the benchmarks: the real entry points at tiny numbers, each on its own
lab host."""

import json
import math
import re
import subprocess
import sys

import pytest

from tests.lab.host import TOP, Host

RESULTS = TOP / "bench/results"
# Freezes a sleeping process in a PID namespace and a cgroup of its own, as a runc killed
# mid-update leaves a container: cgroup v1's freezer hierarchy where there is one, else v2's.
FREEZE = """
if [ -d /sys/fs/cgroup/freezer ]; then
    group=/sys/fs/cgroup/freezer/$1 tasks=tasks file=freezer.state frozen=FROZEN
else
    group=/sys/fs/cgroup/$1 tasks=cgroup.procs file=cgroup.freeze frozen=1
fi
mkdir "$group" && unshare --pid --fork sleep 1000 </dev/null >/dev/null 2>&1 &
sleep 0.2
echo $(pgrep --newest --exact sleep) > "$group/$tasks" && echo $frozen > "$group/$file"
sleep 0.5; cat "$group/$file"
"""
WAYS = ("unitgen", "seed", "parallel", "attached")
FIGURES = {
    "bringup": ("seconds", "last_up_s", "command_s", "cpu_s", "up", "failed"),
    "memory_mib": ("shim", "container", "supervisor", "dockerd", "containerd", "total",
                   "systemd_growth", "kmem"),
    "idle_cpu": ("seconds", "cpu_seconds", "percent_of_one_core"),
}
STAGE = ("usage", "working_set", "kmem", "rss", "cache", "inactive_file", "active_file",
         "shmem")
GROWTH = ("cgroup_usage", "cgroup_working_set", "cgroup_rss", "pss")
PARTS = ("shim", "container", "supervisor", "dockerd", "containerd", "total",
         "systemd_growth")
LATENCY = ("p50", "p95")
VERDICTS = ("no_failures", "memory_at_most_6_mib", "login_p95_at_most_twice_one",
            "status_at_most_1_s", "bringup_at_most_half_of_seed")
SECOND_ROUND = ("nobody_locked_out", "cpu_per_start_at_most_seed", "idle_cpu_at_most_seed",
                "bringup_at_most_parallel")


def run_bench(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=TOP, capture_output=True,
                          text=True, timeout=1200)


def number(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def numbers(figures: dict, names: tuple[str, ...]) -> bool:
    return all(number(figures[name]) for name in names)


def gone(container: str) -> bool:
    return subprocess.run(["docker", "container", "inspect", container],
                          capture_output=True).returncode != 0


@pytest.fixture
def new_results():
    """Deletes what the test's run wrote into bench/results."""
    kept = set(RESULTS.glob("*"))
    yield
    for path in set(RESULTS.glob("*")) - kept:
        path.unlink()


def test_bench_measures_every_figure_for_every_way(new_results):
    done = run_bench("bench", "--workspaces", "3", "--idle", "3", "--logins", "5",
                     "--tries", "2", "--window", "3")
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
        assert figures["idle_cpu"]["by_process"] and all(
            map(number, figures["idle_cpu"]["by_process"].values())), way
        tried = figures["bringup"]["lockout"]
        assert tried["tries"] == 2 == len(tried["each"]), way
        assert tried["ok"] + tried["refused"] + tried["failed"] == 2, way
        for running in ("all", "one"):
            logins = figures["login_ms"][running]
            assert logins["logins"] == 5 and logins["failed"] == 0, (way, running)
            assert number(logins["p50"]) and number(logins["p95"]), (way, running)
    supervised = {way: run["ways"][way]["memory_mib"]["supervisors"] for way in WAYS}
    assert supervised == {"unitgen": 3, "seed": 0, "parallel": 0, "attached": 3}
    status = run["ways"]["unitgen"]["status"]
    assert status["command"] in ("unitgen status --json", "unitgen list --json")
    assert number(status["median_s"]) and number(run["ways"]["unitgen"]["add_seconds"])
    targets = run["targets"]
    assert targets["no_failures"] is True
    assert all(isinstance(targets[name], bool) for name in VERDICTS)
    assert numbers(targets["bringup"], ("unitgen_s", "half_of_seed_s", "floor_s"))
    assert targets["bringup"]["half_of_seed_s"] == run["ways"]["seed"]["bringup"]["seconds"] / 2
    # issue 20's, judged for unitgen (a try may still be refused: one that comes in the
    # moment between the hold letting the port go and the engine binding it)
    assert set(targets["cpu_per_start_s"]) == set(WAYS)
    for name in (*VERDICTS, *SECOND_ROUND):
        assert re.search(rf"^N=3 {name}: (met|NOT met)$", done.stdout, re.MULTILINE), name
    assert gone("wormhole-bench")


def test_on_demand_bench_measures_every_figure(new_results):
    done = run_bench("bench.on_demand", "--registered", "6", "--connected", "2",
                     "--logins", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    (written,) = re.findall(r"^results: (\S+)$", done.stdout, re.MULTILINE)
    assert written.endswith("-on-demand-6-2.json")
    d = json.loads((TOP / written).read_text())
    assert d["complete"] and d["machine"]["cores"] >= 1
    assert re.fullmatch(r"[0-9a-f]{40}", d["unitgen"]["commit"])
    stages = d["stages"]
    for stage in ("base", "registered", "connected"):
        assert numbers(stages[stage]["cgroup_mib"], STAGE) and number(stages[stage]["pss_mib"])
    assert stages["registered"]["listening"] == 6 and stages["registered"]["containers"] == 0
    assert stages["connected"]["containers"] == 2
    for group in ("registered", "connected"):
        assert numbers(d["memory_mib"][group], GROWTH), group
        assert numbers(d["memory_parts_mib"][group], PARTS), group
    for when in ("first", "again"):
        cold = d["cold_start_ms"][when]
        assert (cold["logins"], cold["failed"], cold["untried"]) == (2, 0, 0), when
        assert numbers(cold, (*LATENCY, "max")) and len(cold["all_ms"]) == 2, when
        assert numbers(cold, ("banner_p50", "banner_p95", "banner_max")), when
        assert len(cold["banner_ms"]) == 2 and all(b < c for b, c in zip(
            cold["banner_ms"], cold["all_ms"], strict=True)), when
    assert isinstance(d["targets"]["cold_start_banner_p95_at_most_600_ms"], bool)
    assert d["stop_for_again"] == {"stopped": 2, "still_running": 0, "not_listening": 0}
    for way in ("running", "inner"):
        logins = d["login_ms"][way]
        assert logins["logins"] == 5 and logins["failed"] == 0 and numbers(logins, LATENCY)
    assert number(d["status"]["median_s"]) and len(d["status"]["runs_s"]) == 5
    assert d["status"]["summary"]["running"] == 2 and d["status"]["summary"]["idle"] == 4
    assert number(d["add_seconds"]) and all(map(number, d["phases_s"].values()))
    targets = d["targets"]
    assert isinstance(targets["cold_start_p95_under_2s"], bool)
    assert isinstance(targets["memory_proportional_to_connected"], bool)
    assert numbers(targets["idle_to_connected"], ("cgroup_usage", "pss"))
    assert numbers(targets["cold_start_p95_ms"], ("first", "again"))
    assert "cold start p95 < 2 s" in done.stdout
    assert gone("wormhole-bench-on-demand")


def test_a_lab_host_with_a_frozen_process_is_removed():
    name = "wormhole-bench-frozen"
    host = Host.start(name)
    try:
        frozen = host.sh(f"set -- {name}; {FREEZE}").stdout.split()
        assert frozen in (["FROZEN"], ["1"])
        host.destroy()
        assert gone(name)
        assert subprocess.run(["docker", "volume", "inspect", f"{name}-docker"],
                              capture_output=True).returncode != 0
    finally:
        host.destroy()
        for root in ("/sys/fs/cgroup/freezer", "/sys/fs/cgroup"):
            subprocess.run(["rmdir", f"{root}/{name}"], capture_output=True)
