"""The one place that names every unit, container, volume, label and path unitgen makes,
and reads those names back. Pure. The templates in units/ spell the same names with %i."""

import posixpath

# Where things live on a host, taken relative to --root.
ETC = "/etc/wormhole"
CONFIG = f"{ETC}/wormhole.toml"
PEOPLE = f"{ETC}/people"
FIREWALL = f"{ETC}/firewall.toml"
MANIFEST = f"{ETC}/generated.json"
CLI_ENV = f"{ETC}/cli.env"  # the CLI image, for the wrapper
TRANSACTION = f"{ETC}/.transaction"
UNIT_DIR = "/etc/systemd/system"
DOCKER = "/usr/bin/docker"
LIBEXEC = f"{ETC}/libexec"
DISK_SCRIPT = f"{LIBEXEC}/disk"  # what the data units run on the host, and unitgen too
DISKS = "/var/lib/wormhole/disks"  # each person's disk image and the folder it is mounted at

# Host-wide units and resources.
TARGET = "wormhole.target"
SLICE = "wormhole.slice"
FIREWALL_UNIT = "wormhole-firewall.service"
DISKS_UNIT = "wormhole-disks.service"  # makes every registered person's missing disk
NETWORK = "wormhole"
BRIDGE = "wormhole0"
USER_LABEL = "wormhole.user"
RESTORE_LABEL = "wormhole.restore"
MOVE_LABEL = "wormhole.move"

# Backups: restic's repository, its secrets, its cache and the units around it.
SECRETS = f"{ETC}/restic"  # root-only, 0700: password, repository, env, ssh/, initialized, hold
PASSWORD = f"{SECRETS}/password"
REPOSITORY_FILE = f"{SECRETS}/repository"  # the location, with a rest: URL's credentials
INITIALIZED = f"{SECRETS}/initialized"  # the repository's id, once this host has used it
HOLD = f"{SECRETS}/hold"  # backups wait: this host took over a repository with its snapshots
REREAD = f"{SECRETS}/reread"  # backups read every file again: a repair is under way
RESTIC_CACHE = "/var/cache/wormhole/restic"  # restic's cache, kept between runs, shared
LOCAL_REPOSITORY = "restic.repo"  # under backup_dir: a name no person can have ('.')
REPOSITORY_UNIT = "wormhole-repository.service"  # creates the repository at first use
FORGET_UNIT = "wormhole-forget.service"
FORGET_TIMER = "wormhole-forget.timer"
CHECK_UNIT = "wormhole-check.service"
CHECK_TIMER = "wormhole-check.timer"
BACKUP_NETWORK = "wormhole-backup"  # the backup containers' own, for a remote repository
BACKUP_BRIDGE = "wormhole1"
BACKUP_LABEL = "wormhole.backup"


class Named:
    """A kind of thing named after a person: the name for a person, and whose a name is."""

    def __init__(self, pattern: str) -> None:
        self.prefix, _, self.suffix = pattern.partition("{}")

    def __call__(self, name: str) -> str:
        return f"{self.prefix}{name}{self.suffix}"

    def of(self, text: str) -> str | None:
        """Whose this name is, or None when it is no name of this kind."""
        if not (text.startswith(self.prefix) and text.endswith(self.suffix)):
            return None
        name = text[len(self.prefix):len(text) - len(self.suffix)]
        return name if name and "/" not in name else None


unit = Named("wormhole@{}.service")  # the workspace
data_unit = Named("wormhole-data@{}.service")
backup_unit = Named("wormhole-backup@{}.service")
timer = Named("wormhole-backup@{}.timer")
backup_container = Named("wormhole-backup-{}")
proxy = Named("wormhole-proxy@{}.service")  # the entry of an on-demand workspace
proxy_socket = Named("wormhole-proxy@{}.socket")
# Holds an always-on workspace's port from boot until its container takes it over.
hold_socket = Named("wormhole-hold@{}.socket")
container = Named("wormhole-{}")
syslog = Named("wormhole-{}")  # the SyslogIdentifier= of a workspace
env_file = Named(f"{ETC}/env/{{}}.env")
keys_file = Named(f"{ETC}/keys/{{}}/authorized_keys")
person_file = Named(f"{PEOPLE}/{{}}.toml")
TEMPLATE = f"{UNIT_DIR}/{unit('')}"  # wormhole@.service, which every workspace runs


def volumes(name: str, generation: int) -> tuple[str, str]:
    """The home volume and the host-key volume of a generation ('.' cannot occur in a name)."""
    suffix = f".{generation}" if generation else ""
    return f"wormhole-home-{name}{suffix}", f"wormhole-hostkeys-{name}{suffix}"


def generation_of(name: str, volume: str) -> int | None:
    """The generation of one of the person's volumes, or None when it is not theirs."""
    for prefix in (f"wormhole-home-{name}", f"wormhole-hostkeys-{name}"):
        rest = volume.removeprefix(prefix)
        if rest == "":
            return 0
        if rest != volume and rest[:1] == "." and rest[1:].isdigit():
            return int(rest[1:])
    return None


def disk_image(name: str, generation: int) -> str:
    """The image file of a person's disk of a generation (a restore makes the next one)."""
    suffix = f".{generation}" if generation else ""
    return f"{DISKS}/{name}{suffix}.img"


def disk_mount(name: str) -> str:
    """Where the data unit mounts the person's disk, whatever its generation."""
    return f"{DISKS}/{name}"


def disk_aside(name: str) -> str:
    """Where unitgen mounts a new disk while it fills it (a restore, a move from volumes)."""
    return f"{DISKS}/{name}.new"


def disk_generation_of(name: str, path: str) -> int | None:
    """The generation of one of the person's disk images, or None when it is not theirs."""
    rest = path.removeprefix(f"{DISKS}/{name}")
    if rest == path or not rest.endswith(".img"):
        return None
    rest = rest.removesuffix(".img")
    if rest == "":
        return 0
    return int(rest[1:]) if rest[:1] == "." and rest[1:].isdigit() else None


def disk_leftovers(name: str, entries: list[str]) -> list[str]:
    """Of the entries of DISKS, the person's: every image, half-made image and mount folder
    (names hold no '.', so no other person's entry starts with NAME.)."""
    return sorted(f"{DISKS}/{e}" for e in entries if e == name or e.startswith(f"{name}."))


def backup_path(name: str, tree: str) -> str:
    """Where one of a person's trees (home, hostkeys) or their record (person.toml) is in
    the backup container, and so in each snapshot: a path of their own, so that restic
    finds each person's previous snapshot as the parent of the next."""
    return f"/wormhole/{name}/{tree}"


def dropins(unit_name: str) -> str:
    return f"{UNIT_DIR}/{unit_name}.d"


def owned(path: str) -> bool:
    """Whether unitgen may write or delete a path: a plain absolute path under ETC, or one of
    its own units, drop-ins or enablement links in UNIT_DIR. Anything else is never touched,
    whatever a manifest edited by hand may list."""
    if not path.startswith("/") or posixpath.normpath(path) != path:
        return False
    if path.startswith(f"{ETC}/"):
        return True
    rest = path.removeprefix(f"{UNIT_DIR}/")
    parts = rest.split("/")
    if rest == path or len(parts) > 2:
        return False
    if len(parts) == 1 or parts[0].endswith(".d"):  # a unit, or a drop-in of one
        return parts[0].startswith("wormhole")
    return parts[0].endswith(".wants") and parts[1].startswith("wormhole")
