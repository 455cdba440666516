"""python -m bench.hold_memory [--workspaces N]: what the hold sockets cost. On a fresh lab
host, N people are registered always on (nothing started); the host's memory is read, then
sockets.target starts their N hold sockets, as at boot, and it is read again. The growth
per person, by the host's memory cgroup (page cache and kernel memory included) and by the
PSS of PID 1, is what a held port costs until the workspace takes it over."""

import argparse
import json
from datetime import UTC, datetime

from bench.lab import commit, lab_host, machine, measured, probe, public_key, settle, step
from bench.ways import PUBLISH, people, register
from tests.lab.host import TOP

RESULTS = TOP / "bench/results"
KIB = 1024


def pid1_kb(procs: list[dict]) -> int:
    return next(p["pss_kb"] for p in procs if p["pid"] == 1)


def run(n: int) -> dict:
    document = {"started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "unitgen": commit(), "workspaces": n}
    with lab_host("wormhole-bench-hold") as host:
        document["machine"] = machine(host)
        register(host, people(n), public_key(host), PUBLISH)
        settle(host)
        before, procs = probe(host, "memory"), probe(host, "procs")
        step(f"starting the {n} hold sockets")
        host.exec("systemctl", "start", "sockets.target")
        settle(host)
        after, procs_after = probe(host, "memory"), probe(host, "procs")
        listening = host.sh("systemctl list-units --no-legend --state=listening "
                            "'wormhole-hold@*' | wc -l").stdout.strip()
    document["listening"] = int(listening)
    document["per_person_kib"] = {
        "cgroup_usage": (after["usage"] - before["usage"]) / n / KIB,
        "kmem": (after["kmem"] - before["kmem"]) / n / KIB,
        "pid1_pss": (pid1_kb(procs_after) - pid1_kb(procs)) / n,
    }
    return document


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hold_memory",
                                     description="What the hold sockets cost.")
    parser.add_argument("--workspaces", type=int, default=500, metavar="N")
    args = parser.parse_args()
    document = measured(run, args.workspaces)
    path = RESULTS / f"{document['started'][:10]}-hold-memory-{args.workspaces}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document["per_person_kib"], indent=2))
    print(f"{document['listening']} hold sockets listening\nresults: {path.relative_to(TOP)}")


if __name__ == "__main__":
    main()
