"""The files sink: a host's files under a root directory, changed as one transaction.

A change is staged in full under ETC/.transaction.new, committed by renaming that
directory to ETC/.transaction, then replayed file by file with atomic renames. A
crash before the commit leaves the old files; after it, the next unitgen run under
the lock replays the rest. Either way readers see the old state or the new one.
"""

import errno
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from unitgen.errors import Failed
from unitgen.model import Artifact
from unitgen.names import ETC, MANIFEST, PEOPLE, TRANSACTION, UNIT_DIR

PLAN = "plan.json"
# Directories a removal may leave empty and then removes too; never above these.
TOPS = (ETC, UNIT_DIR)


def _digest(data: bytes, mode: int) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}:{mode:o}"


def digest(artifact: Artifact) -> str:
    if artifact.link is not None:
        return "link:" + artifact.link
    return _digest(artifact.text.encode(), artifact.mode)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.unitgen-new")
    with open(temp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temp, mode)
    os.replace(temp, path)


def _move(source: Path, target: Path) -> None:
    """Rename source over target atomically, also across file systems."""
    try:
        os.replace(source, target)
    except OSError as problem:
        if problem.errno != errno.EXDEV:
            raise
        temp = target.with_name(f".{target.name}.unitgen-new")
        shutil.copy2(source, temp)
        os.replace(temp, target)
        source.unlink()


class Root:
    """The host's file system as seen under --root."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).resolve()
        self.recovered = False  # whether taking the lock finished an interrupted change

    @property
    def live(self) -> bool:
        """Only the real root of a host is also acted on with systemctl and the engine."""
        return self.path == Path("/")

    def __call__(self, host_path: str) -> Path:
        return self.path / host_path.lstrip("/")

    def read(self, host_path: str) -> str | None:
        try:
            return self(host_path).read_text()
        except FileNotFoundError:
            return None

    def people(self) -> dict[str, tuple[str, str]]:
        """Each registered person's name -> (file, TOML text)."""
        folder = self(PEOPLE)
        if not folder.is_dir():
            return {}
        return {f.stem: (f"{PEOPLE}/{f.name}", f.read_text())
                for f in sorted(folder.glob("*.toml"))}

    @contextmanager
    def locked(self, shared: bool = False) -> Iterator[None]:
        """Serialise unitgen runs on this root. The lock is on the root directory itself,
        so taking it creates no file."""
        if not self.path.is_dir():
            raise Failed(f"--root {self.path} is not a directory; create it or give another")
        # A reader that finds an interrupted change finishes it first, under the write lock.
        exclusive = not shared or self(TRANSACTION).is_dir()
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            if exclusive:
                self.recovered = self(TRANSACTION).is_dir()
                self._recover()
            yield
        finally:
            os.close(fd)

    def _manifest(self) -> dict[str, str]:
        text = self.read(MANIFEST)
        return json.loads(text) if text else {}

    def _current(self, path: str) -> str | None:
        target = self(path)
        if target.is_symlink():
            return "link:" + os.readlink(target)
        if target.is_file():
            return _digest(target.read_bytes(), target.stat().st_mode & 0o7777)
        return None

    def _plan(self, files: dict[str, Artifact]) -> tuple[dict[str, Artifact], list[str]]:
        """What apply would write and delete to make the root match `files`."""
        owned = {path: digest(a) for path, a in files.items() if not a.keep}
        writes = {
            path: artifact for path, artifact in files.items()
            if (self._current(path) is None if artifact.keep
                else self._current(path) != owned[path])
        }
        deletes = sorted(p for p in self._manifest()
                         if p not in files and self._current(p) is not None)
        return writes, deletes

    def apply(self, files: dict[str, Artifact]) -> list[str]:
        """Make the files under the root match `files`; return the paths changed."""
        writes, deletes = self._plan(files)
        owned = {path: digest(a) for path, a in files.items() if not a.keep}
        if not writes and not deletes and self._manifest() == owned:
            return []
        self._stage(writes, deletes, owned)
        self._recover()
        return sorted([*writes, *deletes])

    def drift(self, files: dict[str, Artifact]) -> dict[str, str]:
        """How the root differs from `files`, by path: missing, edited by hand, written by
        another unitgen (as generated, but no longer what this one renders), or left over."""
        writes, deletes = self._plan(files)
        manifest = self._manifest()
        reasons = {path: "left over" for path in deletes}
        for path in writes:
            current = self._current(path)
            reasons[path] = ("missing" if current is None else
                             "written by another unitgen" if current == manifest.get(path)
                             else "edited by hand")
        return reasons

    def _stage(self, writes: dict[str, Artifact], deletes: list[str],
               manifest: dict[str, str]) -> None:
        final = self(TRANSACTION)
        staging = final.with_name(final.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        plan = []
        entries = [*writes.items(), (MANIFEST, Artifact(json.dumps(manifest, indent=1) + "\n"))]
        for number, (path, artifact) in enumerate(entries):
            staged = None
            if artifact.link is None:
                staged = str(number)
                write_atomic(staging / staged, artifact.text, artifact.mode)
            plan.append({"path": path, "staged": staged, "link": artifact.link})
        write_atomic(staging / PLAN, json.dumps({"writes": plan, "deletes": deletes}))
        _fsync_dir(staging)
        os.replace(staging, final)
        _fsync_dir(final.parent)

    def _recover(self) -> None:
        """Finish a committed transaction; drop one that was never committed."""
        final = self(TRANSACTION)
        shutil.rmtree(final.with_name(final.name + ".new"), ignore_errors=True)
        if not final.is_dir():
            return
        plan = json.loads((final / PLAN).read_text())
        for entry in plan["writes"]:
            target = self(entry["path"])
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry["link"] is not None:
                temp = target.with_name(f".{target.name}.unitgen-new")
                temp.unlink(missing_ok=True)
                temp.symlink_to(entry["link"])
                os.replace(temp, target)
            elif (final / entry["staged"]).exists():
                _move(final / entry["staged"], target)
        for path in plan["deletes"]:
            self(path).unlink(missing_ok=True)
            self._prune(self(path).parent)
        shutil.rmtree(final)

    def _prune(self, folder: Path) -> None:
        tops = [self(top) for top in TOPS]
        while folder not in tops and any(top in folder.parents for top in tops):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent
