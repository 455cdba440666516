"""What the journal knows of the workspaces: each one's last successful login; and a
workspace's journal shown to the admin."""

import json
import os
import shutil
import subprocess

from unitgen import hostpath
from unitgen.names import SLICE, backup_container, syslog, unit

SINCE = "-30d"


def show(name: str, follow: bool) -> None:
    """Replace this process with the host's journalctl over the person's workspace unit."""
    argv = hostpath.command(["journalctl", "--unit", unit(name),
                             "--follow" if follow else "--no-pager"])
    os.execvp(argv[0], argv)


def last_logins() -> dict[str, float]:
    """Person -> time (seconds since the epoch) of their last accepted login in the last 30
    days, from one journalctl call over the workspaces' slice."""
    exe = "journalctl" if hostpath.mount() else shutil.which("journalctl")
    if exe is None:
        return {}
    done = subprocess.run(hostpath.command(
        [exe, "--no-pager", "--output=json", "--output-fields=SYSLOG_IDENTIFIER",
         f"--since={SINCE}", "--grep=^Accepted publickey for user",
         f"_SYSTEMD_SLICE={SLICE}"]),
        capture_output=True, text=True)
    found: dict[str, float] = {}
    for line in done.stdout.splitlines():
        entry = json.loads(line)
        name = syslog.of(entry.get("SYSLOG_IDENTIFIER", ""))
        if name is None:
            continue
        found[name] = max(found.get(name, 0), int(entry["__REALTIME_TIMESTAMP"]) / 1e6)
    return found


def saved_snapshots(names: list[str], since: float) -> dict[str, str]:
    """Person -> id of the snapshot their backup unit saved last since `since` (seconds
    since the epoch), from one journalctl call: restic says `snapshot ID saved`."""
    exe = "journalctl" if hostpath.mount() else shutil.which("journalctl")
    if exe is None or not names:
        return {}
    done = subprocess.run(hostpath.command(
        [exe, "--no-pager", "--output=json", "--output-fields=SYSLOG_IDENTIFIER,MESSAGE",
         f"--since=@{int(since)}", "--grep=^snapshot [0-9a-f]+ saved$",
         *(f"SYSLOG_IDENTIFIER={backup_container(n)}" for n in names)]),
        capture_output=True, text=True)
    found: dict[str, str] = {}
    for line in done.stdout.splitlines():
        entry = json.loads(line)
        name = backup_container.of(entry.get("SYSLOG_IDENTIFIER", ""))
        message = entry.get("MESSAGE")
        if name is not None and isinstance(message, str):
            found[name] = message.split()[1]
    return found
