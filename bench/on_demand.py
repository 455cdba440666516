"""python -m bench.on_demand [--registered R] [--connected C] [--logins K]: R people
registered on demand, C of them connected, on a fresh lab host of its own. Measures the
host's memory before registering, with R registered and with C connected; the first
connection's latency (cold start), first ever and again, against logins to running
workspaces; and `unitgen status --json` with R registered and C running."""

import argparse
import json
import os
import random
from datetime import UTC, datetime

from bench import report
from bench.lab import (
    KEY,
    commit,
    lab_host,
    machine,
    measured,
    probe,
    public_key,
    settle,
    step,
)
from bench.measure import MIB, Phases, login_times, memory, percentile
from bench.ways import FIRST_PORT, PUBLISH, Person, Unitgen, people, register
from tests.lab.host import TOP, Host

NAME = "wormhole-bench-on-demand"
INNER_OFFSET = 20000
IDLE_STOP = "3h"  # nobody stops by themselves during the run
ON_DEMAND = f'on_demand = true\nidle_stop = "{IDLE_STOP}"\n'
AGAIN = 50  # how many of the connected are stopped and started cold a second time
COLD_CONNECT_TIMEOUT = 20  # s: ssh's bound on the TCP connect and the wait for the banner
COLD_EACH = 30  # s: the probe's bound on one login
TARGET_P95_MS = 2000
TARGET_BANNER_P95_MS = 600  # issue 20: from the connect to sshd's greeting
IDLE_SHARE = 0.01  # memory target: an idle registration costs under 1 % of a connection
BYTES_PER_MIB = 2**20


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.on_demand", description="R people "
                                     "on demand, C of them connected, on a fresh lab host: "
                                     "memory, cold starts, logins, unitgen status.")
    parser.add_argument("--registered", type=int, default=2000, metavar="R")
    parser.add_argument("--connected", type=int, default=200, metavar="C")
    parser.add_argument("--logins", type=int, default=200, metavar="K",
                        help="timed logins to running workspaces")
    args = parser.parse_args()
    most = 65535 - INNER_OFFSET - FIRST_PORT + 1
    if not 1 <= args.registered <= most:
        parser.error(f"--registered: give 1 to {most}")
    if not 1 <= args.connected <= args.registered:
        parser.error("--connected: give 1 to R")
    if args.logins < 1:
        parser.error("--logins: give at least 1")
    return args


def config(registered: int) -> str:
    """The admin's config: ports for everyone, sshd published at PORT + INNER_OFFSET."""
    return (f"{PUBLISH}port_max = {FIRST_PORT + registered - 1}\n"
            f"inner_offset = {INNER_OFFSET}\n")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def running(host: Host) -> set[str]:
    """The names of the running containers."""
    return set(host.exec("docker", "ps", "--format", "{{.Names}}").stdout.split())


def stage(host: Host, everyone: list[Person]) -> dict:
    """Once the host is quiet: its memory cgroup, every process with its PSS, how many
    containers run and how many of the people's ports are listened on."""
    settle(host)
    ports = set(probe(host, "listening"))
    return {"cgroup": probe(host, "memory"), "procs": probe(host, "procs"),
            "containers": len(running(host)),
            "listening": sum(port in ports for _, port in everyone)}


def shown(stage_: dict) -> dict:
    """A stage as the result keeps it: in MiB, the processes summed."""
    return {"cgroup_mib": {name: value / BYTES_PER_MIB
                           for name, value in stage_["cgroup"].items()},
            "pss_mib": sum(p["pss_kb"] for p in stage_["procs"]) / MIB,
            "processes": len(stage_["procs"]), "containers": stage_["containers"],
            "listening": stage_["listening"]}


def growth(before: dict, after: dict, n: int) -> dict:
    """MiB per person from one stage to the next: the cgroup's usage, working set and
    anonymous memory, and the sum of PSS of the host's processes."""
    cgroup = {name: (after["cgroup"][name] - before["cgroup"][name]) / n / BYTES_PER_MIB
              for name in ("usage", "working_set", "rss")}
    pss = sum(p["pss_kb"] for p in after["procs"]) - sum(p["pss_kb"] for p in before["procs"])
    return {f"cgroup_{name}": value for name, value in cgroup.items()} | {"pss": pss / n / MIB}


def cold(host: Host, chosen: list[Person]) -> dict:
    """Each chosen person in turn: their first connection since their workspace stopped,
    timed from the connect to sshd's greeting (the cold start: `banner_*`), then an ssh
    login, timed from the client's start to its exit. p50 and p95 are of the two together:
    a cold start and the login that follows it."""
    limit = 60 + COLD_EACH * len(chosen)
    load = list(os.getloadavg())
    done = probe(host, "logins", "--in-order", "--banner-first", "--key", KEY,
                 "--ports", ",".join(str(port) for _, port in chosen),
                 "--count", str(len(chosen)), "--limit", str(limit),
                 "--connect-timeout", str(COLD_CONNECT_TIMEOUT), timeout=limit + 120)
    banner = [seconds * 1000 for seconds in done["banners"] if seconds is not None]
    login = [seconds * 1000 for seconds in done["seconds"]]
    ms = [b + s for b, s in zip(banner, login, strict=False)]
    names = {port: name for name, port in chosen}
    return {"p50": percentile(ms, 50), "p95": percentile(ms, 95), "max": max(ms, default=None),
            "banner_p50": percentile(banner, 50), "banner_p95": percentile(banner, 95),
            "banner_max": max(banner, default=None),
            "logins": len(login), "failed": done["failed"] + len(done["banners"]) - len(banner),
            "failed_people": [names[port] for port in done["failed_ports"]],
            "untried": done["untried"], "load_before": load, "all_ms": ms,
            "banner_ms": banner, "login_ms": login}


def stop(host: Host, chosen: list[Person]) -> dict:
    """Stop the chosen people's entry and workspace, as idle stop would; their sockets
    stay. Returns how many of them still run a container or no longer listen."""
    host.exec("systemctl", "stop", *(unit for name, _ in chosen for unit in
                                     (f"wormhole-proxy@{name}.service",
                                      f"wormhole@{name}.service")), timeout=1200)
    settle(host)
    ports, names = set(probe(host, "listening")), running(host)
    return {"stopped": len(chosen),
            "still_running": sum(f"wormhole-{name}" in names for name, _ in chosen),
            "not_listening": sum(port not in ports for _, port in chosen)}


def inner(chosen: list[Person]) -> list[Person]:
    """The same people at the port their sshd is published on, behind the proxy."""
    return [(name, port + INNER_OFFSET) for name, port in chosen]


def status(host: Host, everyone: list[Person]) -> dict:
    """The median of 5 timed runs of `unitgen status --json`, and its summary line."""
    figures = Unitgen().figures(host, everyone)["status"]
    summary = json.loads(host.unitgen("status", "--json").stdout)["summary"]
    return {**figures, "summary": summary}


def targets(cold_ms: dict, per_person: dict) -> dict:
    """Cold start p95 under 2 s with no failure, first ever and again; and memory that
    grows with the connected only: an idle registration under IDLE_SHARE of a connection,
    by the cgroup's usage and by PSS."""
    p95 = {when: figures["p95"] for when, figures in cold_ms.items()}
    clean = all(figures["failed"] == 0 and figures["untried"] == 0
                for figures in cold_ms.values())
    ratio = {way: per_person["registered"][way] / per_person["connected"][way]
             if per_person["connected"][way] > 0 else None for way in ("cgroup_usage", "pss")}
    banner = {when: figures.get("banner_p95") for when, figures in cold_ms.items()}
    return {"cold_start_p95_ms": p95,
            "cold_start_p95_under_2s": clean and all(v is not None and v < TARGET_P95_MS
                                                     for v in p95.values()),
            "cold_start_banner_p95_ms": banner,
            "cold_start_banner_p95_at_most_600_ms": clean and all(
                v is not None and v <= TARGET_BANNER_P95_MS for v in banner.values()),
            "idle_to_connected": ratio,
            "memory_proportional_to_connected": all(v is not None and v < IDLE_SHARE
                                                    for v in ratio.values())}


def memory_figures(stages: dict, registered: int, connected: int) -> dict:
    base, added, joined = stages["base"], stages["registered"], stages["connected"]
    return {
        "stages": {name: shown(figures) for name, figures in stages.items()},
        "memory_mib": {"registered": growth(base, added, registered),
                       "connected": growth(added, joined, connected)},
        "memory_parts_mib": {
            "registered": memory(base["procs"], added["procs"], "wormhole", registered),
            "connected": memory(added["procs"], joined["procs"], "wormhole", connected)},
    }


def measure(host: Host, everyone: list[Person], connected: list[Person], logins: int) -> dict:
    r, c, phase = len(everyone), len(connected), Phases()
    again = connected[:min(c, AGAIN)]
    stages = {"base": phase("base", stage, host, everyone)}
    step(f"registering {r} people on demand")
    added = phase("add", register, host, everyone, public_key(host), config(r), ON_DEMAND)
    stages["registered"] = phase("registered", stage, host, everyone)
    step(f"add took {added['add_seconds']:.1f} s; {c} first connections, one after another")
    cold_ms = {"first": phase("cold_first", cold, host, connected)}
    stages["connected"] = phase("connected", stage, host, everyone)
    step(f"stopping {len(again)} of them, then connecting to each again")
    stopped = phase("stop", stop, host, again)
    cold_ms["again"] = phase("cold_again", cold, host, again)
    step(f"{logins} logins to running workspaces, through the socket and to the inner port")
    login_ms = {"running": phase("logins", login_times, host, connected, logins),
                "inner": phase("logins_inner", login_times, host, inner(connected), logins)}
    step("timing unitgen status --json")
    figures = memory_figures(stages, r, c)
    return {**added, **figures, "cold_start_ms": cold_ms, "stop_for_again": stopped,
            "login_ms": login_ms, "status": phase("status", status, host, everyone),
            "targets": targets(cold_ms, figures["memory_mib"]), "phases_s": dict(phase)}


def run(args: argparse.Namespace) -> dict:
    everyone = people(args.registered)
    connected = random.Random(args.registered).sample(everyone, args.connected)
    document = {"started": now(), "complete": False, "unitgen": commit(),
                "load_before": list(os.getloadavg()),
                "settings": {"registered": args.registered, "connected": args.connected,
                             "logins": args.logins, "again": min(args.connected, AGAIN),
                             "idle_stop": IDLE_STOP, "inner_offset": INNER_OFFSET,
                             "connected_people": [name for name, _ in connected]}}
    with lab_host(NAME) as host:
        document["machine"] = machine(host)
        document.update(measure(host, everyone, connected, args.logins))
    document["finished"] = now()
    document["complete"] = True
    return document


def row(label: str, values: list, width: int = 9) -> str:
    return f"{label:<44}" + "".join(report.cell(value, width) for value in values)


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def table(d: dict) -> str:
    per, cold_ms, login_ms = d["memory_mib"], d["cold_start_ms"], d["login_ms"]
    memory_columns = ("cgroup_usage", "cgroup_working_set", "pss")
    lines = [f"on demand: R={d['settings']['registered']} registered, "
             f"C={d['settings']['connected']} connected; unitgen "
             f"{d['unitgen']['commit'][:10]}, {d['machine']['cores']} cores",
             row("memory growth per person", ["cgroup", "w. set", "PSS"]),
             row("  registered, idle (KiB)", [per["registered"][k] * 1024
                                              for k in memory_columns]),
             row("  connected, running (MiB)", [per["connected"][k] for k in memory_columns]),
             row("latency (ms)", ["p50", "p95", "max", "logins", "failed"])]
    for label, figures in (("  cold start to the greeting, first ever",
                            {k.removeprefix("banner_"): v for k, v in cold_ms["first"].items()}),
                           ("  cold start to the greeting, again",
                            {k.removeprefix("banner_"): v for k, v in cold_ms["again"].items()}),
                           ("  cold start and a login, first ever", cold_ms["first"]),
                           ("  cold start and a login, again", cold_ms["again"]),
                           ("  login to a running one, through the socket", login_ms["running"]),
                           ("  login to a running one, at the inner port", login_ms["inner"])):
        lines.append(row(label, [figures["p50"], figures["p95"], figures.get("max"),
                                 figures["logins"], figures["failed"]]))
    met = d["targets"]
    lines += [row("unitgen add --from, R people (s)", [d["add_seconds"]]),
              row("unitgen status --json, median of 5 (s)", [d["status"]["median_s"]]),
              f"target cold start p95 < 2 s: {verdict(met['cold_start_p95_under_2s'])}",
              "target cold start to the greeting p95 <= 0.6 s: "
              f"{verdict(met['cold_start_banner_p95_at_most_600_ms'])}",
              "target memory proportional to the connected (idle registration < 1 % of a "
              f"connection): {verdict(met['memory_proportional_to_connected'])}"]
    return "\n".join(lines)


def main() -> None:
    args = parse()
    document = measured(run, args)
    day = document["started"][:10]
    result = report.save(report.RESULTS / f"{day}-on-demand-{args.registered}-"
                         f"{args.connected}.json", document)
    print(table(document))
    print(f"results: {result.relative_to(TOP)}")


if __name__ == "__main__":
    main()
