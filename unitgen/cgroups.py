"""Counters the kernel keeps per cgroup that systemd does not show: OOM kills."""

from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


def oom_kills(control_group: str) -> int | None:
    """How often the OOM killer struck inside the cgroup (cgroup v2, or v1's memory
    controller); None when the counter cannot be read."""
    for path in (ROOT / control_group.lstrip("/") / "memory.events",
                 ROOT / "memory" / control_group.lstrip("/") / "memory.oom_control"):
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    return None
