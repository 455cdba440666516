"""The one place unitgen talks to systemd: a thin wrapper around systemctl."""

import shutil
import subprocess

from unitgen import hostpath
from unitgen.errors import Failed

NOT_LOADED = ("inactive", "dead")
NOT_HERE = "run unitgen on a systemd host, or give --root DIR to only write files"


def _run(*args: str) -> str:
    # From the CLI image, the host's own systemctl runs (unitgen.hostpath says why).
    exe = "systemctl" if hostpath.mount() else shutil.which("systemctl")
    if exe is None or not hostpath.inside("/run/systemd/system").is_dir():
        raise Failed(f"systemd is not running on this machine; {NOT_HERE}")
    done = subprocess.run(hostpath.command([exe, *args]), capture_output=True, text=True)
    if done.returncode:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        units = [a for a in args if a.endswith((".service", ".timer", ".target"))]
        hint = f"systemctl status {units[0]}" if units else "journalctl -xe"
        raise Failed(f"systemctl {' '.join(args)} failed: {reason}; see: {hint}")
    return done.stdout


def check() -> None:
    _run("--version")


def daemon_reload() -> None:
    _run("daemon-reload")


def start(*units: str) -> None:
    _run("start", *units)


def stop(*units: str) -> None:
    _run("stop", *units)


def show(units: list[str], properties: list[str]) -> dict[str, dict[str, str]]:
    """The properties of each unit, by unit name, from one systemctl call."""
    if not units:
        return {}
    text = _run("show", "--property=" + ",".join(["Id", *properties]), "--", *units)
    found = {}
    for block in text.strip().split("\n\n"):
        values = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        found[values.get("Id", "")] = values
    return found


class States(dict[str, tuple[str, str]]):
    """Unit name to (ActiveState, SubState); `in` tells whether systemd holds the unit, and
    indexing a unit it does not hold gives NOT_LOADED."""

    def __missing__(self, _unit: str) -> tuple[str, str]:
        return NOT_LOADED


def states(*patterns: str) -> States:
    """(ActiveState, SubState) of every loaded unit that matches the patterns, from one
    list call: far cheaper than `show`, which asks the bus once per unit. A unit not in
    the answer is not loaded, which is inactive (dead)."""
    text = _run("list-units", "--all", "--plain", "--no-legend", "--full", "--", *patterns)
    found = States()
    for line in text.splitlines():
        fields = line.removeprefix("\u25cf").split()
        if len(fields) >= 4:
            found[fields[0]] = (fields[2], fields[3])
    return found


def restart(*units: str) -> None:
    _run("restart", *units)


def active(unit: str) -> bool:
    return show([unit], ["ActiveState"])[unit]["ActiveState"] == "active"


def results(units: list[str]) -> dict[str, str]:
    """How each unit's last run ended: 'success', 'exit-code', 'timeout', ..."""
    return {name: values.get("Result", "") for name, values in show(units, ["Result"]).items()}


def reset_failed(*units: str) -> None:
    """Forget failures and the start limit, so a deliberate start is not refused."""
    _run("reset-failed", *units)


def try_reload(*units: str) -> None:
    """Reload the units that are running; leave the others alone."""
    _run("try-reload-or-restart", *units)
