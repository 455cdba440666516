"""restic, the backup engine: where the repository is, the snapshots it lists, which one a
restore takes, and what its failures mean. Pure: nothing here runs restic, reads a file or
asks the engine (unitgen.repository does).

Facts of restic 0.14.0 (Debian 12) this module relies on, each seen in the lab:
- the repository location and password come from files (RESTIC_REPOSITORY_FILE,
  RESTIC_PASSWORD_FILE); there is no RESTIC_REST_USERNAME, so a rest: URL carries its
  credentials and the file that holds it is root-only;
- every failure seen exited 1 (restic documents 3 for a snapshot saved without some
  unreadable files), so the kind of failure is read from the message;
- the parent of a backup is the newest snapshot with the same host and paths, so each
  person's trees are mounted at paths of their own (/wormhole/USER/...);
- there is no --retry-lock: a backup started while forget, prune or check holds the
  exclusive lock fails at once, and the other way round (libexec/wormhole-restic waits).
"""

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from unitgen import disk, names
from unitgen.disk import Need
from unitgen.errors import BadInput
from unitgen.model import Settings, pull_policy

MOUNTED = "/run/secrets/restic"  # the secrets folder inside the backup container
ENVIRONMENT = {
    "RESTIC_REPOSITORY_FILE": f"{MOUNTED}/repository",
    "RESTIC_PASSWORD_FILE": f"{MOUNTED}/password",
    "RESTIC_CACHE_DIR": "/cache",
}
TREES = ("home", "hostkeys")
RECORD = "person.toml"  # the person's registry file, saved beside their trees
HOST_KEY = "ssh_host_ed25519_key"  # in hostkeys/
REMOVED = "removed"  # the tag of the marker `unitgen remove` leaves
RESTORE_TARGET = "/restore"
CHECK_PARTS = 12  # the weekly check reads part N of 12 of the data: all of it in 12 weeks
SNAPSHOT_ID = re.compile(r"[0-9a-f]{8,64}")


@dataclass(frozen=True)
class Backups:
    """The backup settings as the units and unitgen's own restic runs use them. `host` is
    the name snapshots carry: the config's `host`, else the machine's host name (%H in a
    unit), which a host recovering a lost one takes over."""

    location: str  # the repository as the config names it, never with credentials
    image: str
    host: str
    keep: tuple[int, int, int]  # daily, weekly, monthly

    @property
    def local(self) -> bool:
        return self.location.startswith("/")

    @property
    def network(self) -> str:
        """A local repository needs no network; a remote one gets a bridge of its own,
        never the workspaces' network."""
        return "none" if self.local else names.BACKUP_NETWORK

    @property
    def pull(self) -> str:
        return pull_policy(self.image)

    @property
    def sftp(self) -> bool:
        return self.location.startswith("sftp:")

    @property
    def policy(self) -> list[str]:
        daily, weekly, monthly = self.keep
        return ["--keep-daily", str(daily), "--keep-weekly", str(weekly),
                "--keep-monthly", str(monthly)]


def location(settings: Settings) -> str:
    return settings.backup_repository or f"{settings.backup_dir}/{names.LOCAL_REPOSITORY}"


def backups(settings: Settings, host: str = "%H") -> Backups:
    """The settings' backups; `host` stands for the machine's name when the config gives
    none (the units' %H, or the name unitgen read)."""
    return Backups(location(settings), settings.backup_image, settings.host or host,
                   (settings.backup_keep, settings.backup_keep_weekly,
                    settings.backup_keep_monthly))


def tags(user: str, host: str, *more: str) -> str:
    return ",".join([f"user={user}", f"host={host}", *more])


def paths(user: str) -> list[str]:
    return [*(names.backup_path(user, tree) for tree in TREES), names.backup_path(user, RECORD)]


def backup_command(user: str, host: str) -> list[str]:
    return ["backup", "--host", host, "--tag", tags(user, host), *paths(user)]


def forget_command(b: Backups) -> list[str]:
    """This host's snapshots only (a repository may serve a fleet), one group per person."""
    return ["forget", "--tag", f"host={b.host}", "--group-by", "tags", *b.policy, "--prune"]


def restore_command(snapshot: str) -> list[str]:
    """Restore into RESTORE_TARGET (a tmpfs), where the new volumes are mounted at
    RESTORE_TARGET + their paths; the record lands in the tmpfs. --verify reads every
    restored file back."""
    return ["restore", snapshot, "--target", RESTORE_TARGET, "--verify"]


def need(listing: str, user: str) -> Need:
    """What the person's trees in a snapshot take on a disk, from `restic ls --json`: a
    block per folder, files in whole blocks, a block per symlink (restic 0.14 lists no
    target), an inode for each (hard links too). An upper bound, as disk.need is."""
    trees = tuple(names.backup_path(user, tree) for tree in TREES)
    size, count = 0, 0
    for line in listing.splitlines():
        node = json.loads(line) if line.strip() else {}
        path = node.get("path", "")
        if node.get("struct_type") != "node" or not (
                path in trees or path.startswith(tuple(f"{t}/" for t in trees))):
            continue
        count += 1
        kind = node.get("type")
        size += disk.blocks(node.get("size") or 0) if kind == "file" else \
            disk.BLOCK if kind in ("dir", "symlink") else 0
    return Need(size, count)


def restore_mount(user: str, tree: str) -> str:
    return RESTORE_TARGET + names.backup_path(user, tree)


@dataclass(frozen=True)
class Snapshot:
    id: str
    time: datetime
    host: str
    user: str | None
    paths: tuple[str, ...]
    tags: tuple[str, ...] = ()

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def complete(self) -> bool:
        """Whether it holds both of its person's trees (and so is a workspace backup)."""
        return self.user is not None and all(
            names.backup_path(self.user, tree) in self.paths for tree in TREES)

    @property
    def removed(self) -> bool:
        return REMOVED in self.tags

    def view(self) -> dict:
        return {"id": self.id, "short_id": self.short_id, "time": self.time.isoformat(),
                "host": self.host, "user": self.user, "paths": list(self.paths),
                "tags": list(self.tags)}


def parse_time(text: str) -> datetime:
    """restic's times (RFC 3339 with nanoseconds, any offset) as aware datetimes."""
    found = re.fullmatch(r"(.+T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    if not found:
        raise ValueError(f"not a restic time: {text!r}")
    whole, fraction, zone = found.groups()
    micro = (fraction or ".0")[1:7].ljust(6, "0")
    return datetime.fromisoformat(f"{whole}.{micro}{'+00:00' if zone == 'Z' else zone}")


def _user(tag_list: list[str]) -> str | None:
    found = [t.removeprefix("user=") for t in tag_list if t.startswith("user=")]
    return found[0] if len(found) == 1 else None


def snapshots(listing: list[dict]) -> list[Snapshot]:
    """The snapshots of `restic snapshots --json`, oldest first."""
    found = [Snapshot(s["id"], parse_time(s["time"]), s.get("hostname", ""),
                      _user(s.get("tags") or []), tuple(s.get("paths") or ()),
                      tuple(s.get("tags") or ()))
             for s in listing]
    return sorted(found, key=lambda s: (s.time, s.id))


def when(text: str) -> datetime:
    """An admin's "as of" time: ISO 8601, a date alone meaning the end of that day, and
    no offset meaning UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"--as-of {text!r} is not a time; give one such as 2026-12-01 or "
                       "2026-12-01T18:00Z") from None
    if re.fullmatch(r"\d{4}-\d\d-\d\d", text):
        moment = moment.replace(hour=23, minute=59, second=59, microsecond=999999)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def of_person(found: list[Snapshot], user: str, host: str | None = None) -> list[Snapshot]:
    """A person's complete snapshots, oldest first."""
    return [s for s in found if s.user == user and s.complete
            and (host is None or s.host == host)]


@dataclass(frozen=True)
class Pick:
    """Which snapshot a restore takes: an id (or a unique prefix), else the newest at or
    before `as_of`, else the newest; of the snapshots of `host` (default: this host's)."""

    snapshot: str | None = None
    as_of: datetime | None = None
    host: str | None = None


def pick(found: list[Snapshot], user: str, choice: Pick, host: str) -> Snapshot:
    mine = of_person(found, user, choice.host or host)
    if choice.snapshot is not None and choice.as_of is not None:
        raise BadInput("a snapshot and --as-of were both given; give one or the other")
    if choice.snapshot is not None:
        matches = [s for s in mine if s.id.startswith(choice.snapshot)]
        if len(matches) != 1:
            what = "no snapshot" if not matches else "more than one snapshot"
            raise BadInput(f"{what} of {user} has an id starting {choice.snapshot}; see the "
                           f"ids with: unitgen snapshots {user}")
        return matches[0]
    candidates = [s for s in mine if choice.as_of is None or s.time <= choice.as_of]
    if not candidates:
        since = f" at or before {choice.as_of.isoformat()}" if choice.as_of else ""
        raise BadInput(f"the repository holds no snapshot of {user} from host "
                       f"{choice.host or host}{since}; see: unitgen snapshots {user}")
    return candidates[-1]


def snapshot_id(text: str) -> str:
    if not SNAPSHOT_ID.fullmatch(text):
        raise BadInput(f"{text!r} is neither an archive nor a snapshot id; give a path to a "
                       ".tar.gz archive, or an id that unitgen snapshots shows")
    return text


def recovery(found: list[Snapshot], host: str, as_of: datetime | None = None
             ) -> tuple[dict[str, Snapshot], list[str]]:
    """What `restore --all` brings back: each person's newest complete snapshot of `host`
    (at or before `as_of`), and the people left out because their newest entry is the
    marker `unitgen remove` left (they had left the host)."""
    people = sorted({s.user for s in found if s.user and s.host == host})
    chosen, gone = {}, []
    for user in people:
        entries = [s for s in found if s.user == user and s.host == host
                   and (s.complete or s.removed) and (as_of is None or s.time <= as_of)]
        if not entries:
            continue
        if entries[-1].removed:
            gone.append(user)
        else:
            chosen[user] = [s for s in entries if s.complete][-1]
    return chosen, gone


def latest(found: list[Snapshot], host: str | None = None) -> dict[str, Snapshot]:
    """Each person's newest complete snapshot: what status and doctor show."""
    users = {s.user for s in found if s.user}
    return {u: mine[-1] for u in sorted(users) if (mine := of_person(found, u, host))}


def overdue(newest: dict[str, Snapshot], people: list[str], now: datetime,
            period_seconds: float) -> list[str]:
    """The people whose newest snapshot is older than two backup periods, or missing."""
    return [p for p in people if p not in newest
            or (now - newest[p].time).total_seconds() > 2 * period_seconds]


def _secrets(name: str) -> str:
    return f"{names.SECRETS}/{name}"


# What restic 0.14 says, first match wins: (the words in its message, the kind, the fix).
FAILURES = (
    ("repository is already locked", "locked",
     "another restic (forget, prune or check) holds the repository; try again later"),
    ("wrong password or no key found", "wrong password",
     f"the repository was made with another password; put the right one in "
     f"{_secrets('password')}"),
    ("Resolving password failed", "no password",
     f"the password file is missing; put the repository's password in {_secrets('password')}"),
    ("an empty password is not a password", "no password",
     f"the password file is empty; put the repository's password in {_secrets('password')}"),
    ("(401)", "refused",
     f"the repository refused the credentials in {_secrets('repository')}; fix them there"),
    ("(403)", "refused",
     f"the repository refused the credentials in {_secrets('repository')}; fix them there"),
    ("no space left on device", "full",
     "the repository's disk is full; free space there, then run: systemctl start "
     f"{names.FORGET_UNIT}"),
    ("500 Internal Server Error", "server error",
     "the repository server failed (a full disk does this); see its log, free space, then "
     f"run: systemctl start {names.FORGET_UNIT}"),
    ("507 Insufficient Storage", "full",
     f"the repository is full; free space there, then run: systemctl start {names.FORGET_UNIT}"),
    ("dial tcp", "unreachable",
     "the repository cannot be reached; check its address and the network"),
    ("no such host", "unreachable",
     "the repository's host name does not resolve; check its address and DNS"),
    ("i/o timeout", "unreachable", "the repository did not answer; check the network"),
    ("Connection refused", "unreachable",
     "the repository cannot be reached; check its address and the network"),
    ("does not exist", "no repository",
     f"there is no repository at that location; {names.REPOSITORY_UNIT} creates it"),
    ("no such file or directory", "no repository",
     f"there is no repository at that location; {names.REPOSITORY_UNIT} creates it"),
    ("Pack ID does not match", "damaged",
     "a pack file is damaged; the README's backup section says how to repair it"),
    ("repository contains errors", "damaged",
     f"restic check found damage; see: journalctl -u {names.CHECK_UNIT}"),
    ("timed out", "unreachable", "the repository did not answer in time; check the network"),
)


def failure(output: str) -> tuple[str, str, str]:
    """(kind, restic's own line, the fix) of a failed restic run, from its output."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for words, kind, fix in FAILURES:
        said = [line for line in lines if words in line]
        if said:  # restic's own verdict rather than one of its retries
            fatal = [line for line in said if line.startswith("Fatal:")]
            return kind, redact((fatal or said)[0])[:300], fix
    return "failed", redact(lines[-1] if lines else "no output")[:300], "see the unit's journal"


def new_password() -> str:
    """A repository password: 256 random bits, as text safe in a file and a shell."""
    return secrets.token_urlsafe(32)


CREDENTIALS = re.compile(r"(?<=://)([^/@\s:]*):[^/@\s]*@")


def redact(text: str) -> str:
    """Text fit to print: a URL's password hidden, as restic does."""
    return CREDENTIALS.sub(r"\1:***@", text)


def plain(place: str) -> str:
    """A location without a URL's credentials: what the config names."""
    return re.sub(r"(?<=://)[^/@\s]*@", "", place)
