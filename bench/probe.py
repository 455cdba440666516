"""The benchmark's side inside the lab host: copied there and run with the host's python3
(standard library only). Every subcommand prints one JSON document.

  bringup  run a start command and time until every port accepts a real ssh login
  logins     time sequential ssh logins to random ports, or to each port once in order
  time       time a command's wall clock, several runs
  procs      every process with its parent, name, systemd unit and PSS
  cpuacct    the file that counts the host container's CPU time
  memory     the host container's memory cgroup: usage and the parts of it
  listening  the TCP ports something on the host listens on

Connections go to 127.0.0.1 only, and every loop is bounded in count and time.
"""

import argparse
import asyncio
import json
import random
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


async def watch(port: int, key: str, start: float, limit: float,
                logins: asyncio.Semaphore) -> float | None:
    """Seconds from `start` until a login to the port succeeds; None past the limit."""
    while time.monotonic() - start < limit:
        if await banner(port):
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


async def bring_up(command: list[str], ports: list[int], key: str, limit: float) -> dict:
    logins = asyncio.Semaphore(LOGINS_AT_ONCE)
    start = time.monotonic()
    done, *ready = await asyncio.gather(
        run_command(command, start, limit),
        *(watch(port, key, start, limit, logins) for port in ports))
    return {"command": done, "ready": dict(zip(map(str, ports), ready, strict=True))}


def logins(ports: list[int], key: str, count: int, limit: float, in_order: bool = False,
           connect_timeout: float = CONNECT_TIMEOUT) -> dict:
    """`count` sequential logins to random ports (or to the first `count` ports in order),
    each timed; stops at the time limit. `untried` counts those the limit cut off."""
    pick = random.Random(len(ports))
    chosen = ports[:count] if in_order else [pick.choice(ports) for _ in range(count)]
    seconds, failed = [], []
    deadline = time.monotonic() + limit
    for port in chosen:
        if time.monotonic() > deadline:
            break
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
            "untried": len(chosen) - len(seconds) - len(failed)}


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


def port_list(text: str) -> list[int]:
    return [int(port) for port in text.split(",")]


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="probe")
    sub = parser.add_subparsers(dest="what", required=True)
    up = sub.add_parser("bringup")
    up.add_argument("--limit", type=float, required=True)
    up.add_argument("--key", required=True)
    up.add_argument("--ports", type=port_list, required=True)
    up.add_argument("command", nargs="+")
    timed_logins = sub.add_parser("logins")
    timed_logins.add_argument("--key", required=True)
    timed_logins.add_argument("--ports", type=port_list, required=True)
    timed_logins.add_argument("--count", type=int, required=True)
    timed_logins.add_argument("--limit", type=float, required=True)
    timed_logins.add_argument("--in-order", action="store_true",
                              help="the first COUNT ports once each, in order")
    timed_logins.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT)
    timer = sub.add_parser("time")
    timer.add_argument("--repeat", type=int, default=1)
    timer.add_argument("command", nargs="+")
    for name in ("procs", "cpuacct", "memory", "listening"):
        sub.add_parser(name)
    return parser.parse_args()


def main() -> None:
    args = parse()
    work = {
        "bringup": lambda: asyncio.run(bring_up(args.command, args.ports, args.key, args.limit)),
        "logins": lambda: logins(args.ports, args.key, args.count, args.limit, args.in_order,
                                 args.connect_timeout),
        "time": lambda: timed(args.command, args.repeat),
        "procs": procs,
        "cpuacct": cpuacct,
        "memory": memory,
        "listening": listening,
    }
    json.dump(work[args.what](), sys.stdout)


if __name__ == "__main__":
    main()
