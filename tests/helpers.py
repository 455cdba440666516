"""Plain helpers shared by the fast tests."""

import os
import stat
from pathlib import Path


def public(key: Path) -> Path:
    """The KEY.pub that ssh-keygen writes next to KEY."""
    return key.with_name(key.name + ".pub")


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root (files, symlinks, dirs) -> (kind, mode, content or link target).

    Symlinks are recorded, never followed, so two snapshots are equal exactly when nothing
    under the root was created, deleted, rewritten, relinked or chmod'ed.
    """
    found: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder, name)
            info = path.lstat()
            mode = stat.S_IMODE(info.st_mode)
            key = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                found[key] = ("link", mode, os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[key] = ("dir", mode, None)
            else:
                found[key] = ("file", mode, path.read_bytes())
    return found


def assert_message(message: str, *parts: str) -> None:
    """An error message is one line and holds every given part (the problem, the fix)."""
    assert "\n" not in message and "\r" not in message, f"not one line: {message!r}"
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


def described(text: str, where: str = "people.toml"):
    """The host a people file describes, everyone admitted, as provisioning sees it."""
    from unitgen.admission import admit
    from unitgen.registry import read_people_file

    found = read_people_file(text, where)
    return admit(found.host, found.wanted)
