"""The host's side of the disks: runs libexec/disk on the host (in PID 1's namespaces when
unitgen runs from its CLI image, so that the mounts are the host's), and reads and deletes
the images under DISKS. unitgen.disk holds the pure half."""

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from unitgen import disk, hostpath, names
from unitgen.errors import Failed

Where = Callable[[str], Path]  # a host path -> the path unitgen reads it at


def run(*args: str) -> None:
    """libexec/disk with these arguments, on the host; Failed with its last line."""
    done = subprocess.run(hostpath.command(["/bin/sh", names.DISK_SCRIPT, *args]),
                          capture_output=True, text=True)
    if done.returncode:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        reason = reason.removeprefix("disk: ")
        raise Failed(reason if "; " in reason else f"{reason}; see: unitgen doctor")


def make(image: str, mount: str, size: str) -> None:
    """A new disk of `size` at `image` (kept if it exists), checked and mounted at `mount`."""
    run("start", image, mount, size, "", "")


def unmount(mount: str) -> None:
    run("stop", mount)


def shrink(image: str, mount: str, size: str) -> None:
    run("shrink", image, mount, size)


def _entries() -> list[str]:
    try:
        return os.listdir(hostpath.inside(names.DISKS))
    except FileNotFoundError:
        return []


def images() -> set[str]:
    """Every disk image on the host, by host path."""
    return {f"{names.DISKS}/{e}" for e in _entries() if e.endswith(".img")}


def images_of(name: str) -> list[str]:
    """Every disk image of a person, whatever its generation."""
    return [p for p in names.disk_leftovers(name, _entries())
            if names.disk_generation_of(name, p) is not None]


def leftovers(name: str) -> list[str]:
    """Everything of a person's under DISKS: images, half-made ones, mount folders."""
    return names.disk_leftovers(name, _entries())


def mounted(path: str) -> bool:
    """Whether the host has something mounted at `path`. Asked in the host's own mount
    namespace: the CLI container's view of the host may keep a copy of a mount the host has
    since unmounted, where the host's / does not propagate unmounts to it."""
    return subprocess.run(hostpath.command(["mountpoint", "-q", path])).returncode == 0


def remove(paths: list[str]) -> list[str]:
    """Delete images and mount folders (each unmounted first); return those deleted."""
    gone = []
    for path in paths:
        inside = hostpath.inside(path)
        if os.path.isdir(inside) and not os.path.islink(inside):
            unmount(path)
            if mounted(path):
                raise Failed(f"{path} is still mounted; see what holds it with: "
                             f"fuser -vm {path}")
            _delete_folder(path)
        elif os.path.lexists(inside):
            os.unlink(inside)
        else:
            continue
        gone.append(path)
    return gone


def _delete_folder(path: str) -> None:
    """An unmounted folder and what it holds, deleted on the host (never across into a
    file system mounted below it)."""
    done = subprocess.run(hostpath.command(["rm", "-rf", "--one-file-system", "--", path]),
                          capture_output=True, text=True)
    if done.returncode:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise Failed(f"deleting {path}: {lines[-1]}; see: unitgen doctor")


def _head(where: Where, image: str) -> bytes | None:
    """The first 2 KiB of an image, where its superblock is; None when it cannot be read."""
    try:
        fd = os.open(where(image), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with open(fd, "rb") as handle:
        return handle.read(2048)


def fs_size(where: Where, image: str) -> int | None:
    """The size of the file system in an image (None: no image)."""
    data = _head(where, image)
    return None if data is None else disk.fs_bytes(data)


def usage(where: Where, image: str, mount: str) -> disk.Usage | None:
    """How full a disk is: from statvfs while it is mounted, else from its superblock;
    None when it does not exist (yet) or cannot be read."""
    folder = where(mount)
    try:
        if os.path.ismount(folder):
            return disk.from_statvfs(os.statvfs(folder))
    except OSError:
        return None
    data = _head(where, image)
    return None if data is None else disk.from_superblock(data)
