"""One way at one N: bring-up, idle CPU, memory per workspace and login latency, all
measured on the lab host."""

import os
import statistics
import time
from collections import defaultdict

from bench.lab import KEY, cpu_seconds, probe, settle, step
from bench.ways import Person, Way
from tests.lab.host import Host

MIB = 1024  # smaps_rollup counts in kB
SHIM = "containerd-shim"


def bringup_limit(n: int) -> float:
    """How long the workspaces may take to come up before they count as failed."""
    return 120 + 2 * n


def login_limit(count: int) -> float:
    return 60 + 5 * count


class Phases(dict):
    """Seconds spent in each named step, summed over its repeats: phase(name, work, *args)
    runs work(*args), adds its wall time to the step's and returns its result."""

    def __call__(self, name: str, work, *args):
        began = time.monotonic()
        result = work(*args)
        self[name] = self.get(name, 0) + time.monotonic() - began
        return result


def measure(host: Host, way: Way, everyone: list[Person], key: str, idle: float,
            logins: int, tries: tuple[int, float] = (0, 0)) -> dict:
    """`tries`: how many logins to try at random moments of the start, and within how many
    seconds of it."""
    n, phase = len(everyone), Phases()
    figures = {"load_before": list(os.getloadavg()),
               **phase("prepare", way.prepare, host, everyone, key)}
    phase("settle", settle, host)
    before, cgroup = probe(host, "procs"), probe(host, "memory")
    step(f"{way.name} N={n}: starting")
    figures["bringup"] = phase("bringup", bring_up, host, way, everyone, tries)
    step(f"{way.name} N={n}: {figures['bringup']['up']} up; idle for {idle:g} s")
    phase("settle", settle, host)
    figures["idle_cpu"] = phase("idle", idle_cpu, host, idle)
    figures["memory_mib"] = memory(before, phase("memory", probe, host, "procs"),
                                   way.supervisor, n)
    # Kernel memory charged to the host's cgroup (slab, page tables, ...), which no PSS
    # counts: beside the total, not in it. A mounted disk's inodes and journal live there.
    figures["memory_mib"]["kmem"] = (probe(host, "memory")["kmem"] - cgroup["kmem"]) / n / 2**20
    step(f"{way.name} N={n}: {logins} logins with {n} running")
    figures["login_ms"] = {"all": phase("logins_all", login_times, host, everyone, logins)}
    figures.update(phase("way_figures", way.figures, host, everyone))
    if n > 1:
        phase("keep_one", way.keep_one, host, everyone)
        phase("settle", settle, host)
    step(f"{way.name} N={n}: {logins} logins with 1 running")
    figures["login_ms"]["one"] = phase("logins_one", login_times, host, everyone[:1], logins)
    return {**figures, "phases_s": dict(phase)}


def bring_up(host: Host, way: Way, everyone: list[Person],
             tries: tuple[int, float] = (0, 0)) -> dict:
    """Start the way and time it until every workspace takes a login; cpu_s is the CPU
    time the whole lab host used meanwhile, the probe's own logins included. Meanwhile,
    tries[0] people each try one login at a random moment of the first tries[1] s."""
    limit = bringup_limit(len(everyone))
    ports = ",".join(str(port) for _, port in everyone)
    used = cpu_seconds(host)
    done = probe(host, "bringup", "--limit", str(limit), "--key", KEY, "--ports", ports,
                 "--tries", str(tries[0]), "--window", str(tries[1]),
                 "--", *way.start, timeout=limit + 300)
    used = cpu_seconds(host) - used
    ready = [done["ready"][str(port)] for _, port in everyone]
    not_up = [name for (name, _), seconds in zip(everyone, ready, strict=True)
              if seconds is None]
    start_failures = way.failures(host, everyone, done["command"]["output"])
    up = [seconds for seconds in ready if seconds is not None]
    return {
        "seconds": None if not_up else max(up),
        "last_up_s": max(up, default=None),
        "limit_s": limit,
        "cpu_s": used,
        "command_s": done["command"]["seconds"],
        "command_status": done["command"]["status"],
        "up": len(up),
        "failed": len(set(not_up) | set(start_failures)),
        "not_up": not_up,
        "start_failures": start_failures,
        "lockout": lockout(done["tries"]),
    }


def lockout(tries: list[dict]) -> dict:
    """The logins tried during the start: how many were refused or failed, and the p50 and
    p95 of those that got in, in seconds."""
    ok = [t["seconds"] for t in tries if t["outcome"] == "ok"]
    return {"tries": len(tries), "ok": len(ok),
            "refused": sum(t["outcome"] == "refused" for t in tries),
            "failed": sum(t["outcome"] == "failed" for t in tries),
            "p50_s": percentile(ok, 50), "p95_s": percentile(ok, 95), "each": tries}


def idle_cpu(host: Host, idle: float) -> dict:
    """The host's CPU over `idle` seconds, and by process name (`by_process`, in % of one
    core, the ten largest): where the idle CPU goes."""
    before = probe(host, "cputable")
    began, used = time.monotonic(), cpu_seconds(host)
    time.sleep(idle)
    used, seconds = cpu_seconds(host) - used, time.monotonic() - began
    return {"seconds": seconds, "cpu_seconds": used, "percent_of_one_core": 100 * used / seconds,
            "by_process": by_process(before, probe(host, "cputable"), seconds)}


def by_process(before: list, after: list, seconds: float) -> dict[str, float]:
    """CPU between two process tables by process name, in % of one core: each process's own
    and what it reaped (a name's exited children count under the name of their reaper)."""
    old = {(pid, start): p for pid, start, p in before}
    found: dict[str, float] = defaultdict(float)
    for pid, start, p in after:
        was = old.get((pid, start), {"own": 0.0, "reaped": 0.0})
        found[p["name"]] += p["own"] + p["reaped"] - was["own"] - was["reaped"]
    top = sorted(found.items(), key=lambda kv: -kv[1])[:10]
    return {name: round(100 * used / seconds, 3) for name, used in top}


def memory(before: list[dict], after: list[dict], supervisor: str, n: int) -> dict:
    """PSS per workspace, by part: the containerd shims, everything inside the containers,
    the supervising processes (in units named SUPERVISOR...), and the growth of dockerd and
    containerd; each divided by N. The growth of systemd (PID 1) is given beside it."""
    shims = [p for p in after if p["name"].startswith(SHIM)]
    inside = descendants(after, {p["pid"] for p in shims})
    supervisors = [p for p in after if supervisor and p["unit"].startswith(supervisor)
                   and p["pid"] not in inside]
    parts = {
        "shim": total(shims),
        "container": total(p for p in after if p["pid"] in inside),
        "supervisor": total(supervisors),
        "dockerd": growth(before, after, lambda p: p["name"] == "dockerd"),
        "containerd": growth(before, after, lambda p: p["name"] == "containerd"),
    }
    per = {part: kb / n / MIB for part, kb in parts.items()}
    return {**per, "total": sum(per.values()),
            "systemd_growth": growth(before, after, lambda p: p["pid"] == 1) / n / MIB,
            "shims": len(shims), "supervisors": len(supervisors)}


def descendants(procs: list[dict], roots: set[int]) -> set[int]:
    children = defaultdict(list)
    for p in procs:
        children[p["ppid"]].append(p["pid"])
    found, todo = set(), list(roots)
    while todo:
        for child in children[todo.pop()]:
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def total(procs) -> int:
    return sum(p["pss_kb"] for p in procs)


def growth(before: list[dict], after: list[dict], chosen) -> int:
    return total(filter(chosen, after)) - total(filter(chosen, before))


def login_times(host: Host, everyone: list[Person], count: int) -> dict:
    ports = ",".join(str(port) for _, port in everyone)
    done = probe(host, "logins", "--key", KEY, "--ports", ports, "--count", str(count),
                 "--limit", str(login_limit(count)), timeout=login_limit(count) + 120)
    ms = [seconds * 1000 for seconds in done["seconds"]]
    return {"p50": percentile(ms, 50), "p95": percentile(ms, 95), "logins": len(ms),
            "failed": done["failed"]}


def percentile(values: list[float], q: int) -> float | None:
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]
