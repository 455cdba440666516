"""The tar.gz archives of unitgen's backups before restic (backup_dir/USER/USER-TIME.tar.gz
with its .sha256): whether one is whole and safe to restore. `restore USER ARCHIVE` still
takes them."""

import hashlib
import tarfile
from pathlib import Path, PurePosixPath

from unitgen import hostpath
from unitgen.errors import BadInput

SUFFIX = ".tar.gz"
TREES = ("home", "hostkeys")
HOST_KEY = "hostkeys/ssh_host_ed25519_key"
KINDS = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "directory",
         tarfile.SYMTYPE: "symlink"}


def member_problem(name: str, kind: bytes, symlinks: set[str]) -> str | None:
    """Why a member must not be restored, or None. Pure."""
    path = PurePosixPath(name)
    if path.is_absolute():
        return f"member {name!r} has an absolute path"
    if ".." in path.parts:
        return f"member {name!r} climbs out with '..'"
    if not path.parts or path.parts[0] not in TREES:
        return f"member {name!r} is outside home/ and hostkeys/"
    if kind not in KINDS:
        return f"member {name!r} is not a file, directory or symlink"
    if any(str(parent) in symlinks for parent in path.parents):
        return f"member {name!r} lies behind a symlink"
    return None


def check_members(members: list[tuple[str, bytes]], where: str) -> None:
    symlinks: set[str] = set()
    for name, kind in members:
        problem = member_problem(name.rstrip("/"), kind, symlinks)
        if problem:
            raise BadInput(f"{where}: {problem}; it is not restored, pick another archive")
        if kind == tarfile.SYMTYPE:
            symlinks.add(name.rstrip("/"))
    if HOST_KEY not in {name for name, _ in members}:
        raise BadInput(f"{where}: holds no {HOST_KEY}, so it is no workspace backup; "
                       "pick another archive")


def checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path) -> list[tarfile.TarInfo]:
    """Refuse an archive that is missing, damaged, incomplete or unsafe to extract; return
    its members."""
    shown = hostpath.outside(path)
    if not path.is_file():
        raise BadInput(f"archive {shown} does not exist; see the archives with: ls "
                       f"{shown.parent}")
    sums = path.with_name(path.name + ".sha256")
    if not sums.is_file():
        raise BadInput(f"{shown}: no checksum file {sums.name} beside it, so it may be "
                       "incomplete; pick another archive")
    expected = (sums.read_text().split() or [""])[0]
    if checksum(path) != expected:
        raise BadInput(f"{shown}: its checksum does not match {sums.name}, so it is damaged; "
                       "pick another archive")
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = list(tar)
    except (tarfile.TarError, EOFError, OSError) as problem:
        raise BadInput(f"{shown}: not a readable archive ({problem}); pick another "
                       "archive") from None
    check_members([(m.name, m.type) for m in members], str(shown))
    return members

