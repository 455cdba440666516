"""The benchmark's side inside the lab host: copied there and run with the host's python3
(standard library only). Every subcommand prints one JSON document.

  bringup  run a start command and time until every port accepts a real ssh login
  logins     time sequential ssh logins to random ports, or to each port once in order
  time       time a command's wall clock, several runs
  procs      every process with its parent, name, systemd unit and PSS
  cpuacct    the file that counts the host container's CPU time
  memory     the host container's memory cgroup: usage and the parts of it
  listening  the TCP ports something on the host listens on
  startcpu   run start steps one person at a time and split the CPU each step used by
             process: systemd, the commands it ran, the engine, the shims, the containers
  cputable   every process's own CPU and that of the children it reaped

Connections go to 127.0.0.1 only, and every loop is bounded in count and time.
"""

import argparse
import asyncio
import json
import os
import random
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

ADDRESS = "127.0.0.1"
LOGINS_AT_ONCE = 4
LOGIN_TIMEOUT = 30
CONNECT_TIMEOUT = 5
POLL = 1.0
LISTEN = "0A"  # the state of a listening socket in /proc/net/tcp
MEMORY_STAT = ("total_rss", "total_cache", "total_inactive_file", "total_active_file",
               "total_shmem")


def ssh_command(port: int, key: str, connect_timeout: float = CONNECT_TIMEOUT) -> list[str]:
    """ssh ... true; ConnectTimeout bounds the TCP connect and the wait for sshd's banner."""
    return ["ssh", "-F", "/dev/null", "-p", str(port), "-i", key, "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout:g}",
            "-o", "LogLevel=ERROR", f"user@{ADDRESS}", "true"]


async def banner(port: int) -> bool:
    """Whether sshd on the port greets with its banner."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(ADDRESS, port), 3)
    except (OSError, TimeoutError):
        return False
    try:
        return (await asyncio.wait_for(reader.readline(), 5)).startswith(b"SSH-2.0-")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


async def login(port: int, key: str) -> bool:
    proc = await asyncio.create_subprocess_exec(*ssh_command(port, key),
                                                stdin=subprocess.DEVNULL,
                                                stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
    try:
        return await asyncio.wait_for(proc.wait(), LOGIN_TIMEOUT) == 0
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return False


def held() -> set[int]:
    """The ports systemd itself listens on (PID 1's sockets, such as unitgen's hold sockets):
    a connection there would be held, and would start the workspace ahead of its turn."""
    mine = set()
    for fd in Path("/proc/1/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == LISTEN and fields[9] in mine:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


class Held:
    """held(), read at most once a second for all the watchers."""

    def __init__(self) -> None:
        self.when, self.ports = 0.0, set()

    def __contains__(self, port: int) -> bool:
        if time.monotonic() - self.when >= POLL:
            self.when, self.ports = time.monotonic(), held()
        return port in self.ports


async def watch(port: int, key: str, start: float, limit: float,
                logins: asyncio.Semaphore, holding: Held) -> float | None:
    """Seconds from `start` until a login to the port succeeds; None past the limit. A port
    that systemd holds is not tried: the workspace is not up yet."""
    while time.monotonic() - start < limit:
        if port not in holding and await banner(port):
            async with logins:
                if await login(port, key):
                    return time.monotonic() - start
        await asyncio.sleep(POLL)
    return None


async def run_command(command: list[str], start: float, limit: float) -> dict:
    proc = await asyncio.create_subprocess_exec(*command, stdin=subprocess.DEVNULL,
                                                stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        output, _ = await proc.communicate()
        return {"seconds": None, "status": None, "output": output.decode(errors="replace")}
    return {"seconds": time.monotonic() - start, "status": proc.returncode,
            "output": output.decode(errors="replace")}


async def attempt(port: int, key: str, at: float, start: float) -> dict:
    """One login at `at` seconds after `start`, as a person would try: its outcome (ok,
    refused, or failed) and how long it took."""
    await asyncio.sleep(max(0.0, start + at - time.monotonic()))
    began = time.monotonic()
    proc = await asyncio.create_subprocess_exec(*ssh_command(port, key, LOGIN_TIMEOUT),
                                                stdin=subprocess.DEVNULL,
                                                stdout=subprocess.DEVNULL,
                                                stderr=subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), LOGIN_TIMEOUT + 5)
        outcome = "ok" if proc.returncode == 0 else \
            "refused" if b"Connection refused" in err else "failed"
    except TimeoutError:
        proc.kill()
        await proc.wait()
        outcome = "failed"
    return {"port": port, "at_s": at, "outcome": outcome, "seconds": time.monotonic() - began}


async def bring_up(command: list[str], ports: list[int], key: str, limit: float,
                   tries: int = 0, window: float = 120) -> dict:
    """The start command, the watchers, and `tries` logins to random ports at random
    moments of the first `window` seconds (the same ones for every way)."""
    logins, holding = asyncio.Semaphore(LOGINS_AT_ONCE), Held()
    pick = random.Random(len(ports))
    chosen = sorted((pick.uniform(0, window), pick.choice(ports)) for _ in range(tries))
    start = time.monotonic()
    done, *found = await asyncio.gather(
        run_command(command, start, limit),
        *(watch(port, key, start, limit, logins, holding) for port in ports),
        *(attempt(port, key, at, start) for at, port in chosen))
    ready = found[:len(ports)]
    return {"command": done, "ready": dict(zip(map(str, ports), ready, strict=True)),
            "tries": found[len(ports):]}


def greeted(port: int, timeout: float) -> float | None:
    """Seconds from connecting to the port until sshd's greeting line; None without one."""
    began = time.monotonic()
    try:
        with socket.create_connection((ADDRESS, port), timeout=timeout) as conn:
            conn.settimeout(max(0.1, timeout - (time.monotonic() - began)))
            line = b""
            while not line.endswith(b"\n"):
                chunk = conn.recv(256)
                if not chunk:
                    return None
                line += chunk
    except OSError:
        return None
    return time.monotonic() - began if line.startswith(b"SSH-2.0-") else None


def logins(ports: list[int], key: str, count: int, limit: float, in_order: bool = False,
           connect_timeout: float = CONNECT_TIMEOUT, banner_first: bool = False) -> dict:
    """`count` sequential logins to random ports (or to the first `count` ports in order),
    each timed; stops at the time limit. `untried` counts those the limit cut off. With
    `banner_first`, each login comes right after a connection timed until sshd's greeting
    (`banners`): for an on-demand workspace, that first connection is the cold start."""
    pick = random.Random(len(ports))
    chosen = ports[:count] if in_order else [pick.choice(ports) for _ in range(count)]
    seconds, failed, banners = [], [], []
    deadline = time.monotonic() + limit
    for port in chosen:
        if time.monotonic() > deadline:
            break
        if banner_first:
            banners.append(greeted(port, connect_timeout))
        began = time.monotonic()
        try:
            ok = subprocess.run(ssh_command(port, key, connect_timeout),
                                stdin=subprocess.DEVNULL, capture_output=True,
                                timeout=LOGIN_TIMEOUT).returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
        if ok:
            seconds.append(time.monotonic() - began)
        else:
            failed.append(port)
    return {"seconds": seconds, "failed": len(failed), "failed_ports": failed,
            "untried": len(chosen) - len(seconds) - len(failed), "banners": banners}


def timed(command: list[str], repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        began = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True)
        runs.append({"seconds": time.monotonic() - began, "status": done.returncode,
                     "stdout": done.stdout, "stderr": done.stderr})
    return {"runs": runs}


def pss_kb(pid: Path) -> int | None:
    try:
        for line in (pid / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        return None
    return 0


def unit_of(pid: Path) -> str:
    """The last part of the process's systemd cgroup path: a unit or a scope."""
    for line in (pid / "cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers in ("name=systemd", ""):
            return path.rsplit("/", 1)[-1]
    return ""


def procs() -> list[dict]:
    found = []
    for pid in Path("/proc").iterdir():
        if not pid.name.isdigit():
            continue
        try:
            stat = (pid / "stat").read_text()
            unit = unit_of(pid)
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        pss = pss_kb(pid)
        if pss is not None:
            found.append({"pid": int(pid.name), "ppid": ppid, "name": name, "unit": unit,
                          "pss_kb": pss})
    return found


def host_cgroup(controller: str, mounts: tuple[str, ...], counter: str) -> Path:
    """A counter of the host container's cgroup of `controller`: PID 1's (cgroup v1), which
    holds every process and container on the host."""
    for line in Path("/proc/1/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            folder = path.removesuffix("/init.scope")
            for mount in mounts:
                found = Path(mount + folder) / counter
                if found.exists():
                    return found
    sys.exit(f"probe: no {controller} cgroup found for this host (cgroup v1 is needed)")


def cpuacct() -> str:
    """The file that counts the host container's CPU time in nanoseconds."""
    return str(host_cgroup("cpuacct", ("/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpu,cpuacct"),
                           "cpuacct.usage"))


def memory() -> dict:
    """The host container's memory cgroup in bytes: `usage` (memory.usage_in_bytes, page
    cache and kernel memory included), `working_set` (usage less the inactive file cache,
    as `docker stats` and the kubelet count it), `kmem`, and parts of memory.stat."""
    usage = host_cgroup("memory", ("/sys/fs/cgroup/memory",), "memory.usage_in_bytes")
    stat = dict(line.split() for line in (usage.parent / "memory.stat").read_text()
                .splitlines())
    used = int(usage.read_text())
    return {"usage": used, "working_set": used - int(stat["total_inactive_file"]),
            "kmem": int((usage.parent / "memory.kmem.usage_in_bytes").read_text()),
            **{name.removeprefix("total_"): int(stat[name]) for name in MEMORY_STAT}}


def listening() -> list[int]:
    """The TCP ports something on the host listens on, from /proc/net/tcp and tcp6."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == LISTEN:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


HZ = os.sysconf("SC_CLK_TCK")
ENGINE = ("dockerd", "containerd", "systemd-journal")


def cpu_table() -> dict[tuple[int, int], dict]:
    """Every process, keyed by PID and start time: its name, parent, own CPU and the CPU of
    the children it reaped, in seconds."""
    table = {}
    for pid in Path("/proc").iterdir():
        if not pid.name.isdigit():
            continue
        try:
            stat = (pid / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(pid.name), int(fields[19])] = {
            "name": stat[stat.index("(") + 1:stat.rindex(")")], "ppid": int(fields[1]),
            "own": (int(fields[11]) + int(fields[12])) / HZ,
            "reaped": (int(fields[13]) + int(fields[14])) / HZ}
    return table


def split_cpu(before: dict, after: dict) -> dict[str, float]:
    """The CPU used between two tables, by part. Exited processes count in the part of the
    process that reaped them: systemd's commands are what PID 1 reaped."""
    parts: dict[str, float] = {}

    def add(part: str, seconds: float) -> None:
        parts[part] = parts.get(part, 0.0) + seconds

    new = {key: p for key, p in after.items() if key not in before}
    shims = {key[0] for key, p in new.items() if p["name"].startswith("containerd-shim")}
    inside = set(shims)
    for _ in range(8):  # the containers' processes: what descends from a new shim
        inside |= {key[0] for key, p in new.items() if p["ppid"] in inside}
    for key, p in after.items():
        old = before.get(key, {"own": 0.0, "reaped": 0.0})
        own, reaped = p["own"] - old["own"], p["reaped"] - old["reaped"]
        if key[0] == 1:
            add("systemd (PID 1)", own)
            add("commands systemd ran (exited)", reaped)
        elif p["name"] in ENGINE:
            add(p["name"], own)
            add(f"commands {p['name']} ran (exited)", reaped)
        elif key[0] in shims:
            add("containerd-shim and runc", own + reaped)
        elif key[0] in inside:
            add("inside the container", own + reaped)
        elif key in new:
            add(f"new: {p['name']}", own + reaped)
    return parts


def start_cpu(steps: list[str], names: list[str], ports: list[int]) -> dict:
    """For each person in turn, each step (a shell command with $1 = NAME and $2 = PORT)
    run to its end, then sshd's banner awaited on the port; the CPU of each step by part,
    summed over the people, with the host's total from its cpuacct counter."""
    counter = Path(cpuacct())
    steps_cpu = [{} for _ in steps]
    totals = [0.0 for _ in steps]
    for name, port in zip(names, ports, strict=True):
        for i, step in enumerate(steps):
            before, total = cpu_table(), int(counter.read_text())
            mine = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(["sh", "-c", step, "sh", name, str(port)], check=True,
                           stdout=subprocess.DEVNULL)
            ran = resource.getrusage(resource.RUSAGE_CHILDREN)
            if i == len(steps) - 1:
                deadline = time.monotonic() + 30
                while not asyncio.run(banner(port)) and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(0.5)  # the banner is sent before sshd is idle again
            parts = split_cpu(before, cpu_table())
            parts["the start command"] = (ran.ru_utime + ran.ru_stime
                                          - mine.ru_utime - mine.ru_stime)
            totals[i] += (int(counter.read_text()) - total) / 1e9
            for part, seconds in parts.items():
                steps_cpu[i][part] = steps_cpu[i].get(part, 0.0) + seconds
    return {"steps": [{"step": step, "total_s": total, "parts_s": parts}
                      for step, total, parts in zip(steps, totals, steps_cpu, strict=True)]}


def port_list(text: str) -> list[int]:
    return [int(port) for port in text.split(",")]


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="probe")
    sub = parser.add_subparsers(dest="what", required=True)
    up = sub.add_parser("bringup")
    up.add_argument("--limit", type=float, required=True)
    up.add_argument("--key", required=True)
    up.add_argument("--ports", type=port_list, required=True)
    up.add_argument("--tries", type=int, default=0,
                    help="logins to random ports at random moments during the start")
    up.add_argument("--window", type=float, default=120, help="...of the first SECONDS")
    up.add_argument("command", nargs="+")
    timed_logins = sub.add_parser("logins")
    timed_logins.add_argument("--key", required=True)
    timed_logins.add_argument("--ports", type=port_list, required=True)
    timed_logins.add_argument("--count", type=int, required=True)
    timed_logins.add_argument("--limit", type=float, required=True)
    timed_logins.add_argument("--in-order", action="store_true",
                              help="the first COUNT ports once each, in order")
    timed_logins.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT)
    timed_logins.add_argument("--banner-first", action="store_true",
                              help="time a connection until sshd's greeting before each login")
    timer = sub.add_parser("time")
    timer.add_argument("--repeat", type=int, default=1)
    timer.add_argument("command", nargs="+")
    profile = sub.add_parser("startcpu")
    profile.add_argument("--names", type=lambda text: text.split(","), required=True)
    profile.add_argument("--ports", type=port_list, required=True)
    profile.add_argument("steps", nargs="+")
    for name in ("procs", "cpuacct", "memory", "listening", "cputable"):
        sub.add_parser(name)
    return parser.parse_args()


def main() -> None:
    args = parse()
    work = {
        "bringup": lambda: asyncio.run(bring_up(args.command, args.ports, args.key, args.limit,
                                                args.tries, args.window)),
        "logins": lambda: logins(args.ports, args.key, args.count, args.limit, args.in_order,
                                 args.connect_timeout, args.banner_first),
        "time": lambda: timed(args.command, args.repeat),
        "procs": procs,
        "cpuacct": cpuacct,
        "memory": memory,
        "listening": listening,
        "startcpu": lambda: start_cpu(args.steps, args.names, args.ports),
        "cputable": lambda: [[pid, start, p] for (pid, start), p in cpu_table().items()],
    }
    json.dump(work[args.what](), sys.stdout)


if __name__ == "__main__":
    main()
