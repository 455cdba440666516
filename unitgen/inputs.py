"""The files an admin names on the command line: key files and people files, read as text."""

from pathlib import Path

from unitgen import keys, registry
from unitgen.errors import BadInput


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as problem:
        reason = getattr(problem, "strerror", None) or "not a text file"
        raise BadInput(f"cannot read {what} {path}: {reason}; give the path of a "
                       f"{what}") from None


def read_keys(paths: list[Path]) -> tuple[keys.PublicKey, ...]:
    found = []
    for path in paths:
        found += keys.parse_keys(read_text(path, "public key file"), str(path))
    keys.check_unique(found)
    return tuple(found)


def people_file(path: Path) -> registry.PeopleFile:
    return registry.read_people_file(read_text(path, "people file"), str(path))
