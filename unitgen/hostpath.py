"""unitgen run from its own container (the CLI image) on a host without Python.

The wrapper mounts the host's `/` at UNITGEN_HOST (`/host`) and says so in that variable.
Paths the admin gives are host paths: an absolute one is read under the mount, and a path
handed back to the host (to its engine, or printed) drops the mount again. The host's own
`systemctl`, `journalctl` and `libexec/disk` run in PID 1's namespaces through nsenter: a
`systemctl` of the image would believe it runs in a chroot and turn `start` and `enable`
into no-ops that exit 0, and an older `journalctl` skips journal files with newer features.
Without the variable every function here is the identity.
"""

import os
from pathlib import Path

VARIABLE = "UNITGEN_HOST"
NSENTER = ["nsenter", "--target", "1", "--mount", "--uts", "--ipc", "--net", "--pid", "--"]


def mount() -> Path | None:
    """Where the host's `/` is mounted, or None when unitgen runs on the host itself."""
    value = os.environ.get(VARIABLE, "")
    return Path(value) if value.startswith("/") and value != "/" else None


def live_root() -> Path:
    """The directory that is the host's `/` as unitgen sees it."""
    return mount() or Path("/")


def inside(path: str | os.PathLike) -> Path:
    """The host path `path` as unitgen reads it. A relative path is left alone (the
    wrapper starts unitgen in the admin's working directory under the mount), and so is
    one already under the mount: mapping twice changes nothing."""
    path, top = Path(path), mount()
    if top is None or not path.is_absolute() or path == top or top in path.parents:
        return path
    return top / path.relative_to("/")


def outside(path: str | os.PathLike) -> Path:
    """The host path of a path unitgen sees, for the engine and for messages."""
    path, top = Path(path), mount()
    if top is None or not (path == top or top in path.parents):
        return path
    return Path("/") / path.relative_to(top)


def command(argv: list[str]) -> list[str]:
    """The argv that runs one of the host's own programs."""
    return argv if mount() is None else [*NSENTER, *argv]
