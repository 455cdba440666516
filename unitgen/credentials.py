"""The backup repository's secrets: the root-only folder /etc/wormhole/restic and what it
holds. unitgen writes the password (random, at first use) and the repository's location,
each once and never again; the admin adds a rest: URL's credentials, an s3: key pair
(`env`) or an sftp: key (`ssh/`). Nothing here is ever written into a unit or an env file.
`unitgen ignition --backup-secrets DIR` carries a copy of such a folder to a new host."""

import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from unitgen import hostpath, inputs, names, restic
from unitgen.errors import BadInput
from unitgen.files import Root
from unitgen.model import Artifact, Settings

FILES = ("password", "repository", "env")
SECRET_LIMIT = 64 << 10


def _create(root: Root, host_path: str, text: str) -> bool:
    """Write a new 0600 file whole, or nothing when one is there already: a temporary file
    linked into place, so that no reader ever sees half a password."""
    target = root.checked(host_path)
    temp = target.with_name(f".{target.name}.unitgen-new")
    temp.unlink(missing_ok=True)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with open(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temp, target)
    except FileExistsError:
        return False
    finally:
        temp.unlink()
    return True


def ensure(root: Root, settings: Settings) -> list[str]:
    """The secrets folder at the first use: the password and the repository's location.
    Returns what to tell the admin, once, about what was created."""
    folder = root.checked(names.SECRETS, "folder")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    told = []
    if _create(root, names.PASSWORD, restic.new_password() + "\n"):
        told.append(f"wrote a new backup repository password to {names.PASSWORD} (root "
                    "only): keep a copy away from this host, in a password manager say; "
                    "without it no backup can be read, and a lost host cannot be recovered")
    location = restic.location(settings)
    if _create(root, names.REPOSITORY_FILE, location + "\n") and not location.startswith("/"):
        told.append(f"wrote the repository's location to {names.REPOSITORY_FILE}; add its "
                    "credentials there if it needs any (rest:https://USER:PASSWORD@HOST/...)")
    return told


def initialized(root: Root) -> bool:
    """Whether this host has used its repository (the repository unit has run once)."""
    return root.checked(names.INITIALIZED).exists()


def held(root: Root) -> bool:
    """Whether this host's backups wait for `restore --all` (see the repository unit)."""
    return root.checked(names.HOLD).exists()


def release(root: Root) -> bool:
    target = root.checked(names.HOLD)
    if not target.exists():
        return False
    target.unlink()
    return True


@contextmanager
def rereading(root: Root) -> Iterator[None]:
    """While inside, every backup reads each file again (the repair of a damaged pack)."""
    flag = root.checked(names.REREAD)
    flag.write_text("backups read every file again: a repair is under way\n")
    try:
        yield
    finally:
        flag.unlink(missing_ok=True)


def problems(root: Root, settings: Settings) -> list[str]:
    """What keeps the backup units from reading the repository, one line each."""
    folder = root.checked(names.SECRETS, "folder")
    if not folder.is_dir():
        return [f"{names.SECRETS} does not exist; run: unitgen backup --all (which creates "
                "the password at first use), or put the password you kept there"]
    found = []
    if stat.S_IMODE(folder.stat().st_mode) & 0o077:
        found.append(f"{names.SECRETS} is readable by others; run: chmod 0700 {names.SECRETS}")
    for name in ("password", "repository"):
        path = root.checked(f"{names.SECRETS}/{name}")
        if not path.is_file() or path.stat().st_size == 0:
            found.append(f"{names.SECRETS}/{name} is missing or empty; put the repository's "
                         f"{name} there (see the README's backup section)")
    repository = root.checked(names.REPOSITORY_FILE)
    if repository.is_file():
        given = restic.plain(repository.read_text().strip())
        if given and given != restic.location(settings):
            found.append(f"{names.REPOSITORY_FILE} names {given}, the config "
                         f"{restic.location(settings)}; make them the same")
    return found


def provisioned(folder: Path) -> dict[str, Artifact]:
    """A secrets folder the admin keeps (password; optionally repository, env and ssh/),
    as the files a new host gets, each 0600."""
    found = {}
    for name in FILES:
        path = folder / name
        if name == "password" or hostpath.inside(path).exists():
            text = inputs.read_text(path, f"backup secret {name}", SECRET_LIMIT)
            found[f"{names.SECRETS}/{name}"] = Artifact(text, mode=0o600)
    if not found[names.PASSWORD].text.strip():
        raise BadInput(f"{folder / 'password'} is empty; give the folder that holds the "
                       "repository's password")
    ssh = hostpath.inside(folder / "ssh")
    if ssh.is_dir():
        for path in sorted(ssh.iterdir()):
            if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", path.name):
                raise BadInput(f"{folder / 'ssh' / path.name}: not a plain file name; give "
                               "the ssh folder only files such as id_ed25519 and known_hosts")
            text = inputs.read_text(folder / "ssh" / path.name, "backup secret", SECRET_LIMIT)
            found[f"{names.SECRETS}/ssh/{path.name}"] = Artifact(text, mode=0o600)
    return found
