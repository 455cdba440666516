"""unitgen status: every workspace at a glance, from one call to each source (the engine's
container list, one systemctl list, one journalctl) plus small file reads."""

import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from unitgen import (
    access,
    cgroups,
    credentials,
    disk,
    disktool,
    engine,
    hostpath,
    journal,
    names,
    repository,
    restic,
    systemctl,
)
from unitgen.errors import UnitgenError
from unitgen.files import Root
from unitgen.model import Host, Person, Workspace, size_bytes
from unitgen.names import backup_unit, proxy, proxy_socket, unit

REPOSITORY_TIMEOUT = 30  # seconds status and doctor wait for the repository to answer
HOST_UNITS = (names.REPOSITORY_UNIT, names.FORGET_UNIT, names.CHECK_UNIT)
PERIODS = {"minutely": 60, "hourly": 3600, "daily": 86400, "weekly": 604800,
           "monthly": 31 * 86400, "quarterly": 92 * 86400, "semiannually": 184 * 86400,
           "yearly": 366 * 86400, "annually": 366 * 86400}


def _state(loaded: systemctl.States, name: str) -> str:
    return "{} ({})".format(*loaded[unit(name)])


def unit_states(names: list[str], live: bool) -> dict[str, str]:
    """Each workspace's unit state from one systemctl call; 'unknown' off the live host."""
    if not live:
        return dict.fromkeys(names, "unknown")
    loaded = systemctl.states(unit("*"))
    return {n: _state(loaded, n) for n in names}


def disk_usage(root: Root, w: Workspace) -> disk.Usage | None:
    """How full the person's disk is; None when their home is still on volumes, or their
    disk is not made yet."""
    return None if w.on_volumes else disktool.usage(root, w.disk_image, w.disk_mount)


def describe(host: Host, person: Person, state: str, root: Root | None = None) -> dict:
    """What list and show tell of a workspace; with the root, how full its disk is too."""
    w = host.workspace(person)
    usage = disk_usage(root, w) if root is not None else None
    return {
        "user": w.name,
        "port": w.port,
        "state": state,
        "memory": w.memory,
        "disk": w.disk,
        "home": "volumes" if w.on_volumes else "disk",
        **({"disk_used": usage and usage.used, "disk_size": usage and usage.size}
           if root is not None else {}),
        "pids": w.pids,
        "image": w.image,
        "keys": [k.summary for k in w.keys],
        "ssh": f"ssh -p {w.port} user@{host.settings.host or socket.gethostname()}",
    }


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _idle_since(loaded: systemctl.States, names: list[str]) -> dict[str, float]:
    """When each loaded proxy last stopped (seconds since the epoch): one show call over
    those systemd still holds, never over every person."""
    proxies = [proxy(n) for n in names if proxy(n) in loaded]
    shown = systemctl.show(proxies, ["InactiveEnterTimestampMonotonic"])
    now, wall = time.monotonic(), time.time()
    found = {}
    for name in names:
        stopped = _number(shown.get(proxy(name), {}).get("InactiveEnterTimestampMonotonic"))
        if stopped:
            found[name] = wall - (now - stopped / 1e6)
    return found


def key_line(key: dict[str, str]) -> str:
    return f"{key['fingerprint']} {key['type']} {key['comment']}".rstrip()


def _cap(row: dict) -> str:
    return "volumes" if row["home"] == "volumes" else row["disk"]


def list_lines(rows: list[dict]) -> list[str]:
    """`unitgen list`: one line per workspace."""
    return [f"{'USER':<16} {'PORT':>5}  {'STATE':<20} {'MEMORY':>6} {'DISK':>7}  IMAGE"] + [
        f"{r['user']:<16} {r['port']:>5}  {r['state']:<20} {r['memory']:>6} {_cap(r):>7}  "
        f"{r['image']}" for r in rows]


def disk_line(info: dict) -> str:
    """The disk of `show`: used and cap, or where the home is instead."""
    if info["home"] == "volumes":
        return (f"none: the home is still on Docker volumes, with no cap of {info['disk']} "
                "(unitgen upgrade moves it onto a disk)")
    if info["disk_used"] is None:
        return f"{info['disk']} (made at the first start)"
    return (f"{disk.shown(info['disk_used'])} used of {info['disk']} "
            f"({100 * info['disk_used'] / info['disk_size']:.0f} %)")


def show_lines(info: dict) -> list[str]:
    """`unitgen show`: one workspace, a line per fact."""
    return [*(f"{key:<8} {info[key]}" for key in ("user", "port", "state", "memory")),
            f"{'disk':<8} {disk_line(info)}",
            *(f"{key:<8} {info[key]}" for key in ("pids", "image")),
            *(f"{'key':<8} {key_line(key)}" for key in info["keys"]),
            f"{'ssh':<8} {info['ssh']}"]


def holdouts(host: Host, names: set[str] | None = None) -> list[str]:
    """People whose key policy is "hardware" but who still hold other keys, which keep
    logging in until removed: never a silent lock-out."""
    found = access.holdouts((w.name, w.key_policy, w.keys) for w in host.workspaces()
                            if names is None or w.name in names)
    return [f"{name} still has {len(keys)} key(s) that are not hardware keys ("
            f"{', '.join(keys)}), which keep logging in; remove them with unitgen key remove "
            f"{name} FINGERPRINT" for name, keys in found.items()]


def _disk_fields(root: Root, w: Workspace) -> dict:
    """Where the home is, and the disk's use, size and cap in bytes (None: no disk yet)."""
    usage = disk_usage(root, w)
    return {"home": "volumes" if w.on_volumes else "disk",
            "disk": usage and usage.used, "disk_size": usage and usage.size,
            "disk_cap": None if w.on_volumes else size_bytes(w.disk)}


def backup_period(schedule: str) -> float:
    """Seconds between two runs of a backup schedule: from the shorthand, else from
    systemd's own reading of the event (its next two elapses); a day when it cannot say."""
    if schedule in PERIODS:
        return PERIODS[schedule]
    done = subprocess.run(hostpath.command(["systemd-analyze", "calendar", "--iterations=2",
                                            schedule]), capture_output=True, text=True)
    found = []
    for line in done.stdout.splitlines():
        label, _, value = line.strip().partition(": ")
        if label in ("Next elapse", "Iter. #2"):
            try:
                found.append(datetime.strptime(value.rsplit(" ", 1)[0],
                                               "%a %Y-%m-%d %H:%M:%S"))
            except ValueError:
                continue
    return (found[1] - found[0]).total_seconds() if len(found) == 2 else 86400


def repository_view(root: Root, host: Host, b: restic.Backups) -> dict:
    """Each person's newest snapshot on this host, or why the repository did not say."""
    try:
        found = repository.snapshots(b, f"host={b.host}", timeout=REPOSITORY_TIMEOUT)
    except UnitgenError as problem:
        return {"location": b.location, "error": str(problem), "newest": {},
                "held": credentials.held(root)}
    return {"location": b.location, "error": None, "newest": restic.latest(found, b.host),
            "held": credentials.held(root)}


def gather(root: Root, host: Host, names_: list[str], b: restic.Backups
           ) -> tuple[list[dict], dict]:
    """The rows of the workspaces, and the state of their backups (the repository is asked
    while the rest is gathered)."""
    with ThreadPoolExecutor(1) as pool:
        asked = pool.submit(repository_view, root, host, b)
        rows, loaded = _rows(root, host, names_)
        view = asked.result()
    for row in rows:
        newest = view["newest"].get(row["user"])
        row["last_backup"] = {"snapshot": newest.short_id, "time": newest.time.timestamp()} \
            if newest else None
        row["backup_unit"] = loaded[backup_unit(row["user"])][0]
    return rows, {"repository": view["location"], "error": view["error"], "held": view["held"],
                  "units": {u: loaded[u][0] for u in HOST_UNITS},
                  "failed": sorted(u for u, (state, _) in loaded.items() if state == "failed"
                                   and (u in HOST_UNITS or backup_unit.of(u)))}


def _rows(root: Root, host: Host, names_: list[str]) -> tuple[list[dict], systemctl.States]:
    containers = engine.workspaces()
    people = {p.name: p for p in host.people}
    workspaces = {n: host.workspace(people[n]) for n in names_}
    on_demand = {n for n, w in workspaces.items() if w.on_demand}
    loaded = systemctl.states(unit("*"), proxy("*"), proxy_socket("*"), backup_unit("*"),
                              *HOST_UNITS)
    idle_since = _idle_since(loaded, sorted(on_demand))
    logins = journal.last_logins()
    wall = time.time()
    rows = []
    for name in names_:
        active = loaded[unit(name)][0]
        container = containers.get(name, {})
        running = container.get("State") == "running"
        scope = cgroups.Scope(container["Id"]) if running else None
        rows.append({
            "user": name,
            "port": workspaces[name].port,
            "mode": "on-demand" if name in on_demand else "always-on",
            "entry": loaded[proxy_socket(name)][0] if name in on_demand else None,
            "unit": _state(loaded, name),
            "container": container.get("State", "none"),
            # Each start creates the container afresh, so its age is the uptime.
            "uptime": round(wall - container["Created"]) if running and active == "active"
            else None,
            "memory": scope and scope.memory(),
            "memory_cap": size_bytes(workspaces[name].memory),
            **_disk_fields(root, workspaces[name]),
            "oom_kills": scope and scope.oom_kills(),
            "pids": scope and scope.pids(),
            "last_login": logins.get(name),
            "last_activity": max(filter(None, [logins.get(name), idle_since.get(name)]),
                                 default=None),
        })
    return rows, loaded


def summary(rows: list[dict]) -> dict:
    """Running, idle (on demand, waiting for a connection), failed, stopped."""
    running = sum(r["unit"].startswith("active") and r["container"] == "running" for r in rows)
    failed = sum(r["unit"].startswith("failed") for r in rows)
    idle = sum(r["entry"] == "active" and r["container"] != "running" and
               not r["unit"].startswith("failed") for r in rows)
    return {"running": running, "idle": idle, "failed": failed,
            "stopped": len(rows) - running - idle - failed,
            "memory": sum(r["memory"] or 0 for r in rows),
            "disk": sum(r["disk"] or 0 for r in rows)}


def span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit_seconds, letter in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= unit_seconds:
            return f"{int(seconds // unit_seconds)}{letter}"
    return f"{int(seconds)}s"


def _mib(size: int | None) -> str:
    return "-" if size is None else f"{size / (1 << 20):.0f}M"


def _disk(row: dict) -> str:
    """Used and cap, '-' for a disk not made yet, 'volumes' for a home not on a disk."""
    if row["home"] == "volumes":
        return "volumes"
    used = "-" if row["disk"] is None else disk.shown(row["disk"])
    return f"{used}/{disk.shown(row['disk_cap'])}"


def _backup_cell(r: dict, now: float, error: bool) -> str:
    age = "?" if error else span(now - r["last_backup"]["time"]) if r["last_backup"] else "none"
    return f"FAILED {age}" if r["backup_unit"] == "failed" else age


def table(rows: list[dict], backups: dict) -> list[str]:
    now = time.time()
    lines = [f"{'USER':<14} {'PORT':>5} {'UNIT':<20} {'CONTAINER':<9} {'UP':>4} "
             f"{'MEMORY':>11} {'DISK':>11} {'OOM':>3} {'PIDS':>4} {'BACKUP':>10} {'LOGIN':>5}"]
    for r in rows:
        state = "idle (on demand)" if r["entry"] == "active" and r["container"] != "running" \
            else r["unit"]
        lines.append(
            f"{r['user']:<14} {r['port']:>5} {state:<20} {r['container']:<9} "
            f"{span(r['uptime']):>4} {_mib(r['memory']) + '/' + _mib(r['memory_cap']):>11} "
            f"{_disk(r):>11} "
            f"{'-' if r['oom_kills'] is None else r['oom_kills']:>3} "
            f"{'-' if r['pids'] is None else r['pids']:>4} "
            f"{_backup_cell(r, now, bool(backups['error'])):>10} "
            f"{span(now - r['last_login']) if r['last_login'] else '-':>5}")
    total = summary(rows)
    lines.append(f"{total['running']} running, {total['idle']} idle, {total['failed']} failed, "
                 f"{total['stopped']} stopped; memory in use {_mib(total['memory'])}, disks "
                 f"hold {disk.shown(total['disk'])}")
    return lines + backup_lines(backups)


def backup_lines(backups: dict) -> list[str]:
    """The repository and the host's backup units, as status ends with them."""
    said = f"backups: repository {backups['repository']}"
    if backups["error"]:
        said += f" did not answer: {backups['error'].split('; ')[0]}"
    lines = [said]
    if backups["held"]:
        lines.append("backups: held, this host took over a repository with its own name's "
                     "snapshots; run unitgen restore --all")
    if backups["failed"]:
        lines.append(f"backups: failed units: {', '.join(backups['failed'][:6])} (see "
                     f"journalctl -u {backups['failed'][0]})")
    return lines
