"""What the kernel counts for a workspace's container, read from its cgroup: memory in
use, processes and OOM kills. Reading the files costs nothing next to asking systemd for
each scope over the bus."""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from unitgen.names import SLICE

ROOT = Path("/sys/fs/cgroup")


@cache
def _systemd_root() -> str:
    """Where PID 1 roots its tree: "" on a host, /docker/ID inside a container that shares
    the host's cgroup namespace (the test hosts)."""
    for line in Path("/proc/1/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers in ("", "name=systemd"):
            return path.removesuffix("/init.scope").rstrip("/")
    return ""


@dataclass(frozen=True)
class Scope:
    """The cgroup that the engine (systemd cgroup driver) made for container `id`; each
    counter is read from cgroup v2 or else v1, and is None when neither can be read."""

    id: str

    def _read(self, v2: str, v1_controller: str, v1: str) -> str | None:
        scope = f"{_systemd_root()}/{SLICE}/docker-{self.id}.scope".lstrip("/")
        for path in (ROOT / scope / v2, ROOT / v1_controller / scope / v1):
            try:
                return path.read_text()
            except OSError:
                continue
        return None

    def memory(self) -> int | None:
        text = self._read("memory.current", "memory", "memory.usage_in_bytes")
        return int(text) if text else None

    def pids(self) -> int | None:
        text = self._read("pids.current", "pids", "pids.current")
        return int(text) if text else None

    def oom_kills(self) -> int | None:
        """How often the OOM killer struck inside the container."""
        text = self._read("memory.events", "memory", "memory.oom_control")
        for line in (text or "").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return None
