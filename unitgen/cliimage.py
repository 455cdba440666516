"""The CLI image: unitgen for hosts without Python (Fedora CoreOS, Flatcar), run from a
container by a small wrapper.

It is built offline from what runs this unitgen: the installed files of unitgen and of
every distribution it depends on, as each one's RECORD lists them, go into the build
context beside image/cli/Dockerfile, which adds Debian's python3 and nothing from PyPI.
"""

import importlib.metadata as metadata
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from unitgen import resources
from unitgen.errors import Failed

NAME = "unitgen"
SITE = "site"  # the folder of the build context that becomes the image's PYTHONPATH
PYTHON = (3, 11)  # Debian 12's python3, which runs the copied files
RESOURCES = ("units", "image", "butane")  # shipped inside the package, found by resources


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement(spec: str) -> str | None:
    """The distribution a Requires-Dist line names, or None for an optional one (an
    extra): unitgen is installed without extras."""
    name, _, marker = spec.partition(";")
    if "extra" in marker:
        return None
    found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", name)
    return found.group(1) if found else None


def closure(name: str = NAME) -> list[metadata.Distribution]:
    """`name` and every distribution it needs, as installed here. A requirement whose
    marker excluded it at install time (pywin32 on Linux, say) is not installed, and so
    is left out."""
    found: dict[str, metadata.Distribution] = {}
    todo = [name]
    while todo:
        wanted = todo.pop()
        if _key(wanted) in found:
            continue
        try:
            dist = metadata.distribution(wanted)
        except metadata.PackageNotFoundError:
            if wanted == name:
                raise Failed(f"{name} is not installed in {sys.prefix}; install it "
                             "first") from None
            continue
        found[_key(wanted)] = dist
        todo += [r for r in map(requirement, dist.requires or []) if r]
    return sorted(found.values(), key=lambda d: _key(d.metadata["Name"]))


def _copied(entry: PurePosixPath) -> bool:
    """Whether a file RECORD lists goes into the image: not scripts (outside the
    site directory), not byte code (compiled again in the image), not .pth files."""
    return (entry.parts[0] != ".." and "__pycache__" not in entry.parts
            and entry.suffix not in (".pyc", ".pth"))


def _recorded(dist: metadata.Distribution) -> Iterator[tuple[PurePosixPath, Path]]:
    if dist.files is None:
        raise Failed(f"{dist.metadata['Name']} has no RECORD of its files; reinstall it "
                     "with pip")
    for entry in dist.files:
        entry = PurePosixPath(entry)
        if _copied(entry):
            yield entry, Path(dist.locate_file(entry))


def _tree(folder: Path, dest: PurePosixPath) -> Iterator[tuple[PurePosixPath, Path]]:
    for path in sorted(folder.rglob("*")):
        entry = dest / path.relative_to(folder).as_posix()
        if path.is_file() and _copied(entry):
            yield entry, path


def _own() -> Iterator[tuple[PurePosixPath, Path]]:
    """unitgen itself, from the package that runs: an editable install's RECORD holds only
    a .pth file and stale copies of the resources."""
    package = Path(__file__).resolve().parent
    yield from _tree(package, PurePosixPath(NAME))
    for name in RESOURCES:
        folder = resources.folder(name)
        if package not in folder.parents:
            yield from _tree(folder, PurePosixPath(NAME, name))


def plan() -> dict[PurePosixPath, Path]:
    """Each file of the image's site folder, by its path there, and where it comes from."""
    if sys.version_info[:2] != PYTHON:
        raise Failed(f"this unitgen runs on Python {sys.version_info[0]}."
                     f"{sys.version_info[1]}, the CLI image on {PYTHON[0]}.{PYTHON[1]}; "
                     f"build it with a unitgen installed for Python {PYTHON[0]}.{PYTHON[1]}")
    files: dict[PurePosixPath, Path] = {}
    for dist in closure():
        for entry, source in _recorded(dist):
            if _key(dist.metadata["Name"]) != NAME or ".dist-info" in entry.parts[0]:
                files[entry] = source
    files.update(_own())
    return files


def write_context(folder: Path, files: dict[PurePosixPath, Path]) -> None:
    """The build context: the Dockerfile and the site folder."""
    shutil.copy2(resources.folder("image") / "cli" / "Dockerfile", folder / "Dockerfile")
    for entry, source in files.items():
        target = folder / SITE / entry
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def build(tag: str) -> str:
    """Build the CLI image into `tag`; return the image id."""
    from unitgen import engine

    files = plan()
    with tempfile.TemporaryDirectory(prefix="unitgen-cli-") as folder:
        write_context(Path(folder), files)
        return engine.build(Path(folder), tag)
