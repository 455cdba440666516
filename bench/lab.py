"""The benchmark's lab host: a fresh systemd + Docker host container, refused when a
previous run's is still there, and destroyed on any exit, SIGINT and SIGTERM included."""

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TypeVar

from tests.lab.host import TOP, Host, build_wheels, build_workspace_image, run

NAME = "wormhole-bench"
T = TypeVar("T")
HERE = Path(__file__).resolve().parent
REMOTE = "/var/lib/bench"
KEY = f"{REMOTE}/id_ed25519"
COPIED = ("probe.py", "seed.sh", "bench-attached@.service", "bench-attached.target")
SETTLE_LIMIT = 60
SETTLED_CORES = 0.05
BUSY_CORES = 0.5
FALLING = 0.9

# Between ways, after thawing what a killed runc left frozen: stop every workspace unit,
# unmount what is left of their disks, remove every container, volume, disk and unit file of
# any way, and restart the engine, so each way starts from the same empty host.
WIPE = """
systemctl stop 'wormhole*' 'bench-attached*'
findmnt --raw --noheadings --output TARGET | grep '^/var/lib/wormhole/disks/' \
    | xargs --no-run-if-empty umount
docker ps --all --quiet | xargs --no-run-if-empty docker rm --force >/dev/null
docker volume ls --quiet | xargs --no-run-if-empty docker volume rm >/dev/null
cd /etc/systemd/system && rm -rf wormhole* bench-attached* *.wants/wormhole* \
    *.wants/bench-attached*
rm -rf /etc/wormhole /var/log/wormhole /var/lib/wormhole /var/lib/bench/people
systemctl daemon-reload
systemctl reset-failed
systemctl restart containerd.service docker.service
"""


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived: unwind so that the host is destroyed."""


def volume(name: str) -> str:
    return f"{name}-docker"


def leftovers(name: str) -> list[str]:
    found = []
    if run("docker", "container", "inspect", name, check=False).returncode == 0:
        found.append(f"container {name}")
    if run("docker", "volume", "inspect", volume(name), check=False).returncode == 0:
        found.append(f"volume {volume(name)}")
    return found


def measured(run: Callable[[T], dict], args: T) -> dict:
    """run(args), or exit with a message when SIGINT or SIGTERM cut it short."""
    try:
        return run(args)
    except Interrupted as signal:
        sys.exit(f"bench: interrupted by {signal}; the lab host was removed")


def _interrupt(signum: int, _frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


@contextmanager
def lab_host(name: str = NAME) -> Iterator[Host]:
    """A booted host named `name` with the workspace image, unitgen, the probe and the
    bench key."""
    found = leftovers(name)
    if found:
        sys.exit(f"bench: a previous run left {' and '.join(found)}; refusing to run. "
                 f"Remove them with: docker rm -f {name}; docker volume rm {volume(name)}")
    handlers = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    host = Host(name)
    try:
        with tempfile.TemporaryDirectory(prefix="wormhole-bench-") as temp:
            step("building the workspace image and unitgen's wheels")
            build_workspace_image()
            wheels = build_wheels(Path(temp) / "wheels")
            step(f"booting the lab host {name}")
            host = Host.start(name)
            host.load_image()
            host.install_unitgen(wheels)
            provision(host, Path(temp))
            yield host
    finally:
        for s in handlers:
            signal.signal(s, signal.SIG_IGN)
        step(f"removing the lab host {name} and its volume")
        host.destroy()
        for s, handler in handlers.items():
            signal.signal(s, handler)


def provision(host: Host, temp: Path) -> None:
    """Copy the probe, the seed loop and the attached units in, and a fresh ed25519 key."""
    key = temp / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench",
                    "-f", str(key)], check=True)
    host.exec("mkdir", "-p", REMOTE)
    for name in (*COPIED, key.name, f"{key.name}.pub"):
        source = HERE / name if name in COPIED else temp / name
        run("docker", "cp", str(source), f"{host.name}:{REMOTE}/{name}")
    host.exec("chmod", "0600", KEY)


def machine(host: Host) -> dict:
    pages = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cores": os.cpu_count(), "memory_gib": pages / 2**30,
            "kernel": platform.release(),
            "engine": host.exec("docker", "version", "--format", "{{.Server.Version}}")
            .stdout.strip(),
            "systemd": host.exec("systemctl", "--version").stdout.splitlines()[0]}


def commit() -> dict:
    """The unitgen commit measured; dirty = uncommitted changes to unitgen itself."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(TOP), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--", "unitgen", "units", "image"))}


def public_key(host: Host) -> str:
    return host.exec("cat", f"{KEY}.pub").stdout.strip()


def probe(host: Host, *args: str, timeout: float = 600) -> object:
    """Run a probe subcommand on the host and return what it printed, parsed."""
    done = host.exec("python3", f"{REMOTE}/probe.py", *args, timeout=timeout)
    return json.loads(done.stdout)


@cache
def _cpuacct(name: str) -> str:
    return probe(Host(name), "cpuacct")


def cpu_seconds(host: Host) -> float:
    """The CPU time the host container has used so far, read with a plain `cat`."""
    return int(host.exec("cat", _cpuacct(host.name)).stdout) / 1e9


def wipe(host: Host) -> None:
    host.thaw()
    host.sh(WIPE, timeout=1800)
    host.wait_running()


def settle(host: Host) -> float:
    """Wait until the host is quiet: its CPU use over 2 s below SETTLED_CORES, or below
    BUSY_CORES and no longer falling (N idle workspaces have a floor of their own); at most
    SETTLE_LIMIT s. Return the seconds waited."""
    began, last = time.monotonic(), None
    while time.monotonic() - began < SETTLE_LIMIT:
        used = cpu_seconds(host)
        time.sleep(2)
        used = (cpu_seconds(host) - used) / 2
        if used < SETTLED_CORES or (last is not None and used < BUSY_CORES
                                    and used >= FALLING * last):
            break
        last = used
    return time.monotonic() - began


def step(text: str) -> None:
    print(f"bench: {text}", flush=True)
