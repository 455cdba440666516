"""The files an admin names on the command line: key files and people files, read as text,
and the file --out writes. Only plain files, of a bounded size."""

import os
import stat
from pathlib import Path

from unitgen import hostpath, keys, registry
from unitgen.errors import BadInput, Failed
from unitgen.files import write_atomic

KEY_FILE_LIMIT = 64 << 10  # bytes: room for hundreds of keys
PEOPLE_FILE_LIMIT = 16 << 20


def read_text(path: Path, what: str, limit: int) -> str:
    """A plain file's text (a leading byte-order mark dropped); never a device, a FIFO or a
    folder, never more than `limit` bytes."""
    fix = f"give the path of a {what}"
    try:
        info = os.stat(hostpath.inside(path))
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(21, "Is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a plain file")
        with open(hostpath.inside(path), "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as problem:
        raise BadInput(f"cannot read {what} {path}: {problem.strerror}; {fix}") from None
    if len(data) > limit:
        raise BadInput(f"{what} {path} is larger than {limit >> 10} KiB; {fix}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput(f"cannot read {what} {path}: not UTF-8 text; {fix}") from None


def read_keys(paths: list[Path]) -> tuple[keys.PublicKey, ...]:
    found = []
    for path in paths:
        found += keys.parse_keys(read_text(path, "public key file", KEY_FILE_LIMIT), str(path))
    keys.check_unique(found)
    return tuple(found)


def people_file(path: Path) -> registry.PeopleFile:
    """A people file of one host."""
    found = any_people_file(path)
    if found.fleet is not None:
        raise BadInput(f"{path} describes a fleet ([hosts.NAME] and [gateway]); use the unitgen "
                       "fleet commands, such as unitgen fleet ignition")
    return found


def any_people_file(path: Path) -> registry.PeopleFile:
    return registry.read_people_file(read_text(path, "people file", PEOPLE_FILE_LIMIT),
                                     str(path))


def write_out(path: Path, text: str) -> None:
    """Write what --out names: a new file or a plain file replaced whole."""
    check_out(path)
    try:
        write_atomic(hostpath.inside(path).absolute(), text)
    except OSError as problem:
        raise Failed(f"cannot write --out {path}: {problem.strerror}; give a path unitgen "
                     "may write") from None


def check_out(path: Path) -> None:
    """Refuse an --out that is a device, a FIFO, a folder or a link: unitgen would replace
    it, or write where it points."""
    try:
        info = os.lstat(hostpath.inside(path))
    except FileNotFoundError:
        info = None
    except OSError as problem:
        raise BadInput(f"--out {path}: {problem.strerror}; give a file path") from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise BadInput(f"--out {path} is not a plain file; give the path of a new or plain file")
    if not hostpath.inside(path).absolute().parent.is_dir():
        raise BadInput(f"--out {path}: its folder does not exist; create it or give another")
