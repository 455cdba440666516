"""unitgen doctor: check what the workspaces rely on, and say how to fix each failure."""

import ctypes
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from unitgen import (
    credentials,
    disk,
    engine,
    hostpath,
    repository,
    restic,
    sockets,
    status,
    systemctl,
    validate,
)
from unitgen.errors import UnitgenError
from unitgen.files import Root
from unitgen.model import Host
from unitgen.names import FIREWALL_UNIT, REPOSITORY_UNIT, backup_unit, proxy_socket, unit
from unitgen.render import render

MIN_FREE = 1 << 30  # bytes a local repository's disk needs free at least


@dataclass(frozen=True)
class Check:
    level: str  # ok, warn or fail
    what: str
    detail: str
    fix: str = ""


def _systemd(root: Root, host: Host) -> Iterator[Check]:
    systemctl.check()
    yield Check("ok", "systemd", "reachable")
    if root.recovered:
        yield Check("warn", "files", "an interrupted unitgen run was finished just now")
    loaded = systemctl.states(unit("*"))
    failed = [unit(p.name) for p in host.people if loaded[unit(p.name)][0] == "failed"]
    if failed:
        yield Check("fail", "workspaces", f"{len(failed)} failed: {', '.join(failed[:5])}",
                    f"see journalctl -u {failed[0]}, then systemctl reset-failed and start it")
    if host.firewall and not systemctl.active(FIREWALL_UNIT):
        yield Check("fail", "firewall", f"{FIREWALL_UNIT} is not active",
                    "run: unitgen firewall (journalctl -u wormhole-firewall says why it stopped)")


def _engine(root: Root, host: Host) -> Iterator[Check]:
    driver = engine.client().info().get("CgroupDriver")
    if driver == "systemd":
        yield Check("ok", "engine", "reachable, systemd cgroup driver")
    else:
        yield Check("warn", "engine", f"cgroup driver is {driver}: the workspaces' memory, "
                    "processes and OOM kills are not accounted under wormhole.slice",
                    "start dockerd with --exec-opt native.cgroupdriver=systemd, as Fedora "
                    "CoreOS does (the default with cgroup v2); in daemon.json only if no flag "
                    "sets it")
    images = sorted({w.image for w in host.workspaces()} |
                    ({host.settings.backup_image} if host.people else set()))
    missing = [image for image in images if not engine.has_image(image)]
    if missing:
        how = "unitgen image build --backup" if missing == [host.settings.backup_image] \
            else "unitgen image build (--backup for the backup image)"
        yield Check("fail", "images", f"not on this host: {', '.join(missing)}",
                    f"run: {how}, or docker pull the image")
    elif images:
        yield Check("ok", "images", ", ".join(images))


def _files(root: Root, host: Host) -> Iterator[Check]:
    foreign = root.foreign()
    if foreign:
        yield Check("warn", "files", f"the manifest lists {len(foreign)} path(s) outside "
                    f"unitgen's own, which it never writes or deletes (e.g. {foreign[0]})",
                    "check who edited /etc/wormhole/generated.json; the next change drops them")
    drift = root.drift(render(host, checked=False))
    if not drift:
        yield Check("ok", "files", "every generated file is current")
        return
    reasons = Counter(drift.values())
    example = next(iter(sorted(drift)))
    yield Check("fail", "files", ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
                + f" (e.g. {example}: {drift[example]})", "run: unitgen upgrade")


def _ports(root: Root, host: Host) -> Iterator[Check]:
    s = host.settings
    outside = [p.name for p in host.people if not s.port_min <= p.port <= s.port_max]
    for problem in validate.conflicts(host):
        yield Check("fail", "ports", problem.partition("; ")[0], problem.partition("; ")[2])
    ours = {c["Ports"][0].get("PublicPort") for c in engine.workspaces().values()
            if c["Ports"]} | _socket_ports(host)
    taken = [p.name for p in host.people
             if p.port in sockets.listening_ports() - ours]
    problems = [(outside, f"outside {s.port_min}-{s.port_max}", "widen the range in the config"),
                (taken, "taken by another program", "stop that program or move the person")]
    for names, what, fix in problems:
        if names:
            yield Check("fail", "ports", f"{what}: {', '.join(map(str, names))}", fix)
    if not any(names for names, _, _ in problems) and not validate.conflicts(host):
        yield Check("ok", "ports", f"{len(host.people)} in the range, each free")


def _socket_ports(host: Host) -> set[int]:
    """The ports that systemd itself listens on for on-demand people."""
    loaded = systemctl.states(proxy_socket("*"))
    return {p.port for p in host.people if host.workspace(p).on_demand
            and loaded[proxy_socket(p.name)][0] == "active"}


def _split(level: str, problem: str) -> Check:
    return Check(level, "backups", problem.partition("; ")[0], problem.partition("; ")[2])


def _backups(root: Root, host: Host) -> Iterator[Check]:
    b = restic.backups(host.settings, host.settings.host or repository.host_name())
    problems = credentials.problems(root, host.settings)
    yield from (_split("fail", p) for p in problems)
    if credentials.held(root):
        yield _split("warn", "held: this host took over a repository that holds snapshots of "
                     f"{b.host}, so its backups wait; run: unitgen restore --all")
    loaded = systemctl.states(backup_unit("*"), *status.HOST_UNITS)
    failed = sorted(u for u, (state, _) in loaded.items() if state == "failed")
    if failed:
        yield Check("fail", "backups", f"{len(failed)} unit(s) failed: {', '.join(failed[:5])}",
                    f"see: journalctl -u {failed[0]}; the next run tries again")
    if problems:
        return
    try:
        found = repository.snapshots(b, f"host={b.host}", timeout=status.REPOSITORY_TIMEOUT)
    except UnitgenError as problem:
        if "no repository" in str(problem) and not credentials.initialized(root):
            yield Check("warn", "backups", f"repository {b.location} not created yet",
                        f"the first backup creates it; or now: systemctl start {REPOSITORY_UNIT}")
        else:
            yield _split("fail", f"repository {b.location}: {problem}")
        return
    period = status.backup_period(host.settings.backup_schedule)
    late = restic.overdue(restic.latest(found, b.host), [p.name for p in host.people],
                          datetime.now(UTC), period)
    if late:
        yield Check("warn", "backups", f"{len(late)} without a snapshot in the last two backup "
                    f"periods ({status.span(2 * period)}): {', '.join(late[:5])}",
                    f"see: unitgen status, and journalctl -u {backup_unit(late[0])}")
    else:
        yield Check("ok", "backups", f"repository {b.location}: everyone has a snapshot of the "
                    f"last two backup periods ({status.span(2 * period)})")
    if b.local:
        yield from _local_space(root, b.location)


def _local_space(root: Root, location: str) -> Iterator[Check]:
    folder = root(location)
    while not folder.exists():
        folder = folder.parent
    free, writable = shutil.disk_usage(folder).free, os.access(folder, os.W_OK)
    folder = hostpath.outside(folder)  # named as the admin knows it
    if not writable:
        yield Check("fail", "backups", f"{folder} is not writable", "fix its owner and mode")
    elif free < MIN_FREE:
        yield Check("fail", "backups", f"only {free >> 20} MiB free under {folder}",
                    "free space, or set backup_repository to a larger disk or a remote")


def _disks(root: Root, host: Host) -> Iterator[Check]:
    """Loop devices for the disks, disks at least 90 % full, homes still on volumes."""
    workspaces = host.workspaces()
    on_disk = [w for w in workspaces if not w.on_volumes]
    if on_disk and not hostpath.inside("/dev/loop-control").exists():
        yield Check("fail", "disks", "no /dev/loop-control: the disks cannot be mounted, so no "
                    "workspace starts", "load the kernel's loop module: modprobe loop")
    used = {w.name: u for w in on_disk if (u := status.disk_usage(root, w)) is not None}
    full = sorted((u.ratio, name) for name, u in used.items() if u.ratio >= disk.FULL)
    for ratio, name in reversed(full):
        w = host.workspace(host.need(name))
        yield Check("warn", "disks", f"{name}'s disk is {100 * ratio:.0f} % full "
                    f"({disk.shown(used[name].used)} of {w.disk})",
                    f"ask them to free space, or grow it: unitgen set {name} --disk SIZE")
    volumes = [w.name for w in workspaces if w.on_volumes]
    if volumes:
        yield Check("warn", "disks", f"{len(volumes)} home(s) still on Docker volumes, with no "
                    f"disk cap: {', '.join(volumes[:5])}", "move them onto disks: unitgen "
                    "upgrade (it says why a move failed)")
    if not full and used:
        ratio, name = max((u.ratio, n) for n, u in used.items())
        yield Check("ok", "disks", f"{len(used)} made, the fullest {100 * ratio:.0f} % "
                    f"({name})")


TIME_ERROR = 5  # adjtimex's answer while the kernel's clock is not synchronized


def _synchronized() -> bool:
    """Whether the kernel's clock is synchronized, read as timedated reads it (adjtimex with
    no change; struct timex is 208 bytes). Not asked of timedated: its start would make a
    sandboxed mount namespace that holds every disk mounted then open for half a minute,
    which keeps a stopped disk from being checked or resized meanwhile."""
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.adjtimex(ctypes.create_string_buffer(512)) not in (-1, TIME_ERROR)


def _clock(root: Root, host: Host) -> Iterator[Check]:
    if _synchronized():
        yield Check("ok", "clock", "synchronized")
    else:
        yield Check("warn", "clock", "not synchronized: backup names and logs carry times",
                    "enable systemd-timesyncd or chrony")


def _keys(root: Root, host: Host) -> Iterator[Check]:
    for shared in validate.shared_keys(host):
        yield Check("warn", "keys", shared, "give each person their own key, unless that is "
                    "meant")
    for line in status.holdouts(host):
        problem, _, fix = line.partition("; ")
        yield Check("warn", "keys", f"key_policy is hardware but {problem}", fix)


CHECKS: list[Callable[[Root, Host], Iterator[Check]]] = [
    _systemd, _engine, _files, _ports, _keys, _disks, _backups, _clock]


def lines(found: list[Check]) -> list[str]:
    return [f"{c.level.upper():<4} {c.what}: {c.detail}" + (f" -> {c.fix}" if c.fix else "")
            for c in found]


def run(root: Root, host: Host) -> list[Check]:
    """Every check; one whose service is down fails with its own fix and the rest go on."""
    found = []
    for check in CHECKS:
        try:
            found += list(check(root, host))
        except (UnitgenError, OSError) as problem:
            name = check.__name__.strip("_")
            found.append(Check("fail", name, str(problem).split("; ")[0],
                               str(problem).partition("; ")[2]))
    return found
