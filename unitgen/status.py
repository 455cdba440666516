"""unitgen status: every workspace at a glance, from one call to each source (the engine's
container list, one systemctl show, one journalctl) plus small file reads."""

import time

from unitgen import archive, cgroups, engine, journal, systemctl
from unitgen.files import Root
from unitgen.model import Host, size_bytes
from unitgen.ops import backup_folder, proxy, socket, unit

UNIT = ["ActiveState", "SubState", "ActiveEnterTimestampMonotonic"]
SCOPE = ["ControlGroup", "MemoryCurrent", "TasksCurrent"]


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def gather(root: Root, host: Host, names: list[str]) -> list[dict]:
    containers = engine.workspaces()
    scopes = {n: f"docker-{containers[n]['Id']}.scope" for n in names
              if containers.get(n, {}).get("State") == "running"}
    on_demand = [n for n in names if host.workspace(host.person(n)).on_demand]
    entries = [u for n in on_demand for u in (socket(n), proxy(n))]
    shown = systemctl.show([unit(n) for n in names] + entries + list(scopes.values()),
                           UNIT + SCOPE + ["InactiveEnterTimestampMonotonic"])
    logins = journal.last_logins()
    now, wall = time.monotonic(), time.time()
    rows = []
    for name in names:
        person, state, scope = host.person(name), shown[unit(name)], shown.get(scopes.get(name))
        since = _number(state.get("ActiveEnterTimestampMonotonic"))
        backups = archive.complete(backup_folder(root, host, name))
        idle_since = _number(shown.get(proxy(name), {}).get("InactiveEnterTimestampMonotonic"))
        rows.append({
            "user": name,
            "port": person.port,
            "mode": "on-demand" if name in on_demand else "always-on",
            "entry": shown[socket(name)]["ActiveState"] if name in on_demand else None,
            "unit": f"{state['ActiveState']} ({state['SubState']})",
            "container": containers.get(name, {}).get("State", "none"),
            "uptime": round(now - since / 1e6) if state["ActiveState"] == "active" and since
            else None,
            "memory": _number(scope and scope.get("MemoryCurrent")),
            "memory_cap": size_bytes(host.workspace(person).memory),
            "oom_kills": cgroups.oom_kills(scope["ControlGroup"]) if scope else None,
            "pids": _number(scope and scope.get("TasksCurrent")),
            "last_backup": {"path": str(backups[-1]), "time": backups[-1].stat().st_mtime,
                            "size": backups[-1].stat().st_size} if backups else None,
            "last_login": logins.get(name),
            "last_activity": max(filter(None, [logins.get(name), wall - (now - idle_since / 1e6)
                                               if idle_since else None]), default=None),
        })
    return rows


def summary(rows: list[dict]) -> dict:
    """Running, idle (on demand, waiting for a connection), failed, stopped."""
    running = sum(r["unit"].startswith("active") and r["container"] == "running" for r in rows)
    failed = sum(r["unit"].startswith("failed") for r in rows)
    idle = sum(r["entry"] == "active" and r["container"] != "running" and
               not r["unit"].startswith("failed") for r in rows)
    return {"running": running, "idle": idle, "failed": failed,
            "stopped": len(rows) - running - idle - failed,
            "memory": sum(r["memory"] or 0 for r in rows)}


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit_seconds, letter in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= unit_seconds:
            return f"{int(seconds // unit_seconds)}{letter}"
    return f"{int(seconds)}s"


def _mib(size: int | None) -> str:
    return "-" if size is None else f"{size / (1 << 20):.0f}M"


def table(rows: list[dict]) -> list[str]:
    now = time.time()
    lines = [f"{'USER':<14} {'PORT':>5} {'UNIT':<20} {'CONTAINER':<9} {'UP':>4} "
             f"{'MEMORY':>11} {'OOM':>3} {'PIDS':>4} {'BACKUP':>10} {'LOGIN':>5}"]
    for r in rows:
        backup = r["last_backup"]
        state = "idle (on demand)" if r["entry"] == "active" and r["container"] != "running" \
            else r["unit"]
        lines.append(
            f"{r['user']:<14} {r['port']:>5} {state:<20} {r['container']:<9} "
            f"{_span(r['uptime']):>4} {_mib(r['memory']) + '/' + _mib(r['memory_cap']):>11} "
            f"{'-' if r['oom_kills'] is None else r['oom_kills']:>3} "
            f"{'-' if r['pids'] is None else r['pids']:>4} "
            f"{(_span(now - backup['time']) + ' ' + _mib(backup['size'])) if backup else '-':>10} "
            f"{_span(now - r['last_login']) if r['last_login'] else '-':>5}")
    total = summary(rows)
    lines.append(f"{total['running']} running, {total['idle']} idle, {total['failed']} failed, "
                 f"{total['stopped']} stopped; memory in use {_mib(total['memory'])}")
    return lines
