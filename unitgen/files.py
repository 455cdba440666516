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
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from unitgen import hostpath
from unitgen.errors import BadInput, Failed
from unitgen.model import Artifact
from unitgen.names import ETC, MANIFEST, PEOPLE, TRANSACTION, UNIT_DIR, owned

MAX_READ = 4 << 20  # bytes of one registry, config or manifest file at the most

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


def _mine(path: object) -> bool:
    """Whether a path read from a file names one of unitgen's own (names.owned)."""
    return isinstance(path, str) and "\0" not in path and owned(path)


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.unitgen-new")
    temp.unlink(missing_ok=True)  # a link left there is removed, never followed
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with open(fd, "w") as handle:
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
        # --root names a host path; from the CLI image the host lies under its mount.
        self.path = hostpath.inside(path).resolve()
        self.recovered = False  # whether taking the lock finished an interrupted change

    @property
    def live(self) -> bool:
        """Only the real root of a host is also acted on with systemctl and the engine."""
        return self.path == hostpath.live_root()

    def __call__(self, host_path: str) -> Path:
        return self.path / host_path.lstrip("/")

    def checked(self, host_path: str, kind: str = "file") -> Path:
        """The path under the root, once no folder on the way there is a link or something
        other than a folder, and what stands there is nothing or a `kind`: "file" (a plain
        file), "folder", or "entry" (a plain file or a link, as a unit's enablement is)."""
        here = self.path
        for part in PurePosixPath(host_path).parts[1:]:
            here = here / part
            try:
                info = os.lstat(here)
            except FileNotFoundError:
                return self(host_path)
            last = here == self(host_path)
            wanted = {"file": stat.S_ISREG, "folder": stat.S_ISDIR,
                      "entry": lambda m: stat.S_ISREG(m) or stat.S_ISLNK(m)}[kind]
            if stat.S_ISLNK(info.st_mode) and not (last and kind == "entry"):
                raise BadInput(f"{self._shown(here)} is a symbolic link, and unitgen never "
                               "follows links under its root; put a real "
                               f"{'folder' if not last or kind == 'folder' else 'file'} "
                               "there or remove it")
            if not (wanted(info.st_mode) if last else stat.S_ISDIR(info.st_mode)):
                raise BadInput(f"{self._shown(here)} is not a "
                               f"{'plain file' if last and kind != 'folder' else 'folder'}; "
                               "move it away")
        return self(host_path)

    def _shown(self, path: Path) -> str:
        return "/" + str(path.relative_to(self.path))

    def read(self, host_path: str) -> str | None:
        """A file of unitgen's as text, or None when there is none."""
        try:
            with open(self.checked(host_path), "rb") as handle:
                data = handle.read(MAX_READ + 1)
        except FileNotFoundError:
            return None
        except OSError as problem:
            raise BadInput(f"{host_path}: cannot be read ({problem.strerror}); fix or remove "
                           "it") from None
        if len(data) > MAX_READ:
            raise BadInput(f"{host_path} is larger than {MAX_READ >> 20} MiB; fix or remove it")
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise BadInput(f"{host_path} is not UTF-8 text; fix or remove it") from None

    def people(self) -> dict[str, tuple[str, str]]:
        """Each registered person's name -> (file, TOML text)."""
        folder = self.checked(PEOPLE, "folder")
        if not folder.is_dir():
            return {}
        found = {}
        for name in sorted(os.listdir(folder)):
            if name.endswith(".toml"):
                path = f"{PEOPLE}/{name}"
                found[name.removesuffix(".toml")] = (path, self.read(path))
        return found

    @contextmanager
    def locked(self, shared: bool = False) -> Iterator[None]:
        """Serialise unitgen runs on this root. The lock is on the root directory itself,
        so taking it creates no file."""
        if not self.path.is_dir():
            raise BadInput(f"--root {hostpath.outside(self.path)} is not a directory; create it "
                           "or give another")
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
        """What unitgen wrote, path -> digest; entries that are not unitgen's own are left
        out (foreign() lists them)."""
        return {path: found for path, found in self._recorded().items() if owned(path)}

    def _recorded(self) -> dict[str, str]:
        text = self.read(MANIFEST)
        try:
            found = json.loads(text) if text else {}
        except ValueError:
            found = None
        if not isinstance(found, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in found.items()):
            raise BadInput(f"{MANIFEST} is damaged; remove it, and unitgen writes it anew at its "
                           "next change")
        return found

    def foreign(self) -> list[str]:
        """Manifest entries outside unitgen's own paths, which it never writes or deletes."""
        return sorted(path for path in self._recorded() if not owned(path))

    def _current(self, path: str, kind: str) -> str | None:
        target = self.checked(path, kind)
        try:
            info = os.lstat(target)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(info.st_mode):
            return "link:" + os.readlink(target)
        return _digest(target.read_bytes(), info.st_mode & 0o7777)

    def _plan(self, files: dict[str, Artifact], previous: Iterable[str] = ()
              ) -> tuple[dict[str, Artifact], list[str]]:
        """What apply would write and delete to make the root match `files`, after checking
        every path on the way. `previous`: the paths the registry rendered before, which go
        when they are no longer rendered, manifest or not."""
        mine = {path: digest(a) for path, a in files.items() if not a.keep}
        writes = {}
        for path, artifact in files.items():
            if not owned(path):
                raise Failed(f"{path} is not a path of unitgen's; report this as a bug")
            current = self._current(path, "file" if artifact.link is None else "entry")
            if (current is None) if artifact.keep else current != mine[path]:
                writes[path] = artifact
        gone = {p for p in [*self._manifest(), *previous] if owned(p) and p not in files}
        deletes = sorted(p for p in gone if self._current(p, "entry") is not None)
        return writes, deletes

    def check(self, files: dict[str, Artifact], previous: Iterable[str] = ()) -> None:
        """Refuse, as apply would, before anything else of a change is done."""
        self._plan(files, previous)

    def apply(self, files: dict[str, Artifact], previous: Iterable[str] = ()) -> list[str]:
        """Make the files under the root match `files`; return the paths changed."""
        writes, deletes = self._plan(files, previous)
        mine = {path: digest(a) for path, a in files.items() if not a.keep}
        if not writes and not deletes and self._recorded() == mine:
            return []
        self.checked(TRANSACTION, "folder")
        self._stage(writes, deletes, mine)
        self._recover()
        return sorted([*writes, *deletes])

    def drift(self, files: dict[str, Artifact]) -> dict[str, str]:
        """How the root differs from `files`, by path: missing, edited by hand, written by
        another unitgen (as generated, but no longer what this one renders), or left over."""
        writes, deletes = self._plan(files)
        manifest = self._manifest()
        reasons = {path: "left over" for path in deletes}
        for path in writes:
            current = self._current(path, "entry")
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
        try:
            self._replay()
        except OSError as problem:
            raise Failed(f"an interrupted change under {TRANSACTION} could not be finished "
                         f"({problem.strerror}: {problem.filename}); move that out of the way "
                         "and run unitgen again") from None

    def _replay(self) -> None:
        final = self(TRANSACTION)
        staging = final.with_name(final.name + ".new")
        if os.path.lexists(staging) and (staging.is_symlink() or not staging.is_dir()):
            staging.unlink()
        shutil.rmtree(staging, ignore_errors=True)
        if not os.path.lexists(final):
            return
        self.checked(TRANSACTION, "folder")
        writes, deletes = self._replayable(final)
        for entry in writes:  # every target checked first: nothing is done to a refused one
            self.checked(entry["path"], "file" if entry["link"] is None else "entry")
        for path in deletes:
            self.checked(path, "entry")
        for entry in writes:
            target = self(entry["path"])
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry["link"] is not None:
                temp = target.with_name(f".{target.name}.unitgen-new")
                temp.unlink(missing_ok=True)
                temp.symlink_to(entry["link"])
                os.replace(temp, target)
            elif (final / entry["staged"]).exists():
                _move(final / entry["staged"], target)
        for path in deletes:
            self(path).unlink(missing_ok=True)
            self._prune(self(path).parent)
        shutil.rmtree(final)

    def _replayable(self, final: Path) -> tuple[list[dict], list[str]]:
        """The writes and deletes of a committed transaction, once each is one that unitgen
        stages: a path of its own, a link to one of its own, and a staged file that is a
        plain file named in the transaction folder. BadInput for anything else: a change
        that unitgen did not stage is never carried out."""
        def refuse(why: str) -> BadInput:
            return BadInput(f"{TRANSACTION} holds a change that unitgen did not stage ({why}); "
                            "move it out of the way and run unitgen again")

        try:
            fd = os.open(final / PLAN, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as problem:
            raise refuse(f"{PLAN}: {problem.strerror}") from None
        with open(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise refuse(f"{PLAN} is not a plain file")
            data = handle.read(MAX_READ + 1)
        try:
            plan = json.loads(data)
            writes, deletes = plan["writes"], plan["deletes"]
            for entry in writes:
                path, staged, link = entry["path"], entry["staged"], entry["link"]
                if not _mine(path) or not (link is None or _mine(link)):
                    raise refuse(f"{str(path)[:80]!r} is not a path of unitgen's")
                if link is None and not self._staged(final, staged):
                    raise refuse(f"{str(staged)[:80]!r} is not a file it staged")
            if not isinstance(deletes, list) or not all(map(_mine, deletes)):
                raise refuse("it deletes paths that are not unitgen's")
        except (ValueError, TypeError, KeyError, AttributeError):
            raise refuse(f"{PLAN} is damaged") from None
        return writes, deletes

    @staticmethod
    def _staged(final: Path, name: object) -> bool:
        """Whether `name` is a plain file name in the transaction folder, and what stands
        there is a plain file or nothing (already moved into place)."""
        if not isinstance(name, str) or name in ("", ".", "..", PLAN) or "/" in name \
                or "\0" in name:
            return False
        try:
            return stat.S_ISREG(os.lstat(final / name).st_mode)
        except FileNotFoundError:
            return True

    def _prune(self, folder: Path) -> None:
        tops = [self(top) for top in TOPS]
        while folder not in tops and any(top in folder.parents for top in tops):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent
