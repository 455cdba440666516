"""The description of a host: its settings and its people. Pure data and pure operations."""

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from unitgen import __version__, names
from unitgen.errors import BadInput
from unitgen.keys import PublicKey

EGRESS = ("open", "allowlist", "none")
SIZE_UNITS = "KMGT"


def size_bytes(size: str) -> int:
    """512M -> 536870912: sizes as size_text writes them."""
    if size[-1] in SIZE_UNITS:
        return int(size[:-1]) << 10 * (SIZE_UNITS.index(size[-1]) + 1)
    return int(size)


def size_text(size: int) -> str:
    """536870912 -> 512M: the largest unit that divides the size."""
    for exponent in range(len(SIZE_UNITS), 0, -1):
        if size % (1 << 10 * exponent) == 0:
            return f"{size >> 10 * exponent}{SIZE_UNITS[exponent - 1]}"
    return str(size)


def pull_policy(image: str) -> str:
    """Pull only images that name a registry; a local tag is never looked up on a hub."""
    first, slash, _ = image.partition("/")
    from_registry = slash and ("." in first or ":" in first or first == "localhost")
    return "missing" if from_registry else "never"


@dataclass(frozen=True)
class Artifact:
    """A file's content, or a symlink's target. `keep` files are the admin's once written."""

    text: str | None = None
    link: str | None = None
    mode: int = 0o644
    keep: bool = False


@dataclass(frozen=True)
class Settings:
    """The global configuration, CONFIG; each value is also a default for people."""

    image: str = "wormhole:latest"
    memory: str = "512M"
    disk: str = "10G"
    cpus: float = 0.0
    pids: int = 1024
    port_min: int = 2200
    port_max: int = 2999
    publish_address: str = ""
    host: str = ""
    backup_dir: str = "/var/lib/wormhole/backups"
    backup_repository: str = ""  # "" = a local repository in backup_dir
    backup_image: str = "wormhole-backup:latest"
    backup_keep: int = 7  # per person: the newest snapshot of each of the last N days
    backup_keep_weekly: int = 4
    backup_keep_monthly: int = 6
    backup_schedule: str = "daily"
    backup_spread: str = "1h"
    backup_forget_schedule: str = "*-*-* 04:00"
    backup_check_schedule: str = "Sun *-*-* 06:00"
    upgrade_batch: int = 10
    start_lanes: int = 4
    on_demand: bool = False
    idle_stop: str = "1h"
    inner_offset: int = 20000
    egress: str = "open"
    egress_allow: tuple[str, ...] = ()
    admin_ports: tuple[int, ...] = (22,)
    allow_from: tuple[str, ...] = ()  # who may reach the workspace ports; () = everyone
    cli_image: str = f"unitgen:{__version__}"
    update_window: str = ""
    forwarding: str = "none"
    key_policy: str = "any"


@dataclass(frozen=True)
class Person:
    """One workspace. Limits left as None follow the settings. `generation` counts the
    restores: each one moves the workspace onto a new disk. `on_volumes`: the home and host
    key are still on the Docker volumes of before disks, with no cap (unitgen upgrade moves
    them onto a disk)."""

    name: str
    port: int
    keys: tuple[PublicKey, ...]
    memory: str | None = None
    image: str | None = None
    cpus: float | None = None
    pids: int | None = None
    on_demand: bool | None = None
    idle_stop: str | None = None
    forwarding: str | None = None
    key_policy: str | None = None
    disk: str | None = None
    generation: int = 0
    on_volumes: bool = False


@dataclass(frozen=True)
class Workspace:
    """A person with every setting resolved: what the units run."""

    name: str
    port: int
    keys: tuple[PublicKey, ...]
    memory: str
    image: str
    cpus: float
    pids: int
    publish: str
    generation: int
    on_demand: bool
    idle_stop: str
    inner_port: int
    listen: str
    forwarding: str
    key_policy: str
    disk: str
    on_volumes: bool

    @property
    def volumes(self) -> tuple[str, str]:
        """The Docker volumes of the home and host key: the data of before disks."""
        return names.volumes(self.name, self.generation)

    @property
    def disk_image(self) -> str:
        return names.disk_image(self.name, self.generation)

    @property
    def disk_mount(self) -> str:
        return names.disk_mount(self.name)

    @property
    def sources(self) -> tuple[str, str]:
        """What the units mount as the home and the host-key folder: the two folders of the
        mounted disk, or the two volumes while the home is still on them."""
        if self.on_volumes:
            return self.volumes
        return f"{self.disk_mount}/home", f"{self.disk_mount}/hostkeys"

    @property
    def pull(self) -> str:
        return pull_policy(self.image)

    @property
    def entry(self) -> str:
        """The unit that brings the workspace up: its socket when it works on demand."""
        return names.proxy_socket(self.name) if self.on_demand else names.unit(self.name)

    @property
    def hold(self) -> str:
        """The socket that holds the port from boot until the workspace is up: always-on
        workspaces only (on demand, the person's own socket is there all the time)."""
        return "" if self.on_demand else names.hold_socket(self.name)

    @property
    def units(self) -> list[str]:
        """Every unit the workspace may have running, entry first."""
        entries = [names.proxy_socket(self.name), names.proxy(self.name)] if self.on_demand \
            else [self.hold]
        return [*entries, names.unit(self.name), names.timer(self.name),
                names.data_unit(self.name)]


@dataclass(frozen=True)
class Admin:
    """The login of whoever runs a provisioned host (the `core` user on Fedora CoreOS and
    Flatcar)."""

    user: str = "core"
    keys: tuple[PublicKey, ...] = ()


@dataclass(frozen=True)
class Host:
    settings: Settings = field(default_factory=Settings)
    people: tuple[Person, ...] = ()
    firewall: bool = False

    def person(self, name: str) -> Person | None:
        return next((p for p in self.people if p.name == name), None)

    def need(self, name: str) -> Person:
        """The person, or the error every command gives for a name that is not here."""
        person = self.person(name)
        if person is None:
            raise BadInput(f"there is no workspace named {name}; see: unitgen list")
        return person

    def with_person(self, person: Person) -> "Host":
        others = tuple(p for p in self.people if p.name != person.name)
        return replace(self, people=tuple(sorted((*others, person), key=lambda p: p.name)))

    def with_settings(self, **changes: object) -> "Host":
        return replace(self, settings=replace(self.settings, **changes))

    def without(self, name: str) -> "Host":
        return replace(self, people=tuple(p for p in self.people if p.name != name))

    def workspace(self, person: Person) -> Workspace:
        """The person with every setting resolved. An on-demand workspace publishes sshd
        on 127.0.0.1 only, at its inner port; systemd listens on its port instead."""
        s = self.settings
        address = s.publish_address
        if ":" in address:
            address = f"[{address}]"
        on_demand = s.on_demand if person.on_demand is None else person.on_demand
        inner = person.port + s.inner_offset
        outer = f"{address}:{person.port}" if address else f"{person.port}"
        return Workspace(
            name=person.name,
            port=person.port,
            keys=person.keys,
            memory=person.memory or s.memory,
            image=person.image or s.image,
            cpus=s.cpus if person.cpus is None else person.cpus,
            pids=person.pids or s.pids,
            publish=f"127.0.0.1:{inner}:22" if on_demand else f"{outer}:22",
            generation=person.generation,
            on_demand=on_demand,
            idle_stop=person.idle_stop or s.idle_stop,
            inner_port=inner,
            listen=outer,
            forwarding=person.forwarding or s.forwarding,
            key_policy=person.key_policy or s.key_policy,
            disk=person.disk or s.disk,
            on_volumes=person.on_volumes,
        )

    def workspaces(self) -> list[Workspace]:
        return [self.workspace(p) for p in self.people]

    def predecessors(self) -> dict[str, str]:
        """Whom each always-on person's start waits for: those in port order, dealt into
        lanes."""
        order = [w.name for w in sorted(self.workspaces(), key=lambda w: w.port)
                 if not w.on_demand]
        lanes = self.settings.start_lanes
        return {name: order[n - lanes] for n, name in enumerate(order) if n >= lanes}

    def held_ports(self) -> list[tuple[int, str]]:
        """Every port the host's people hold, with whose: each person's port, and the inner
        port of those on demand."""
        return sorted([(w.port, w.name) for w in self.workspaces()] +
                      [(w.inner_port, w.name) for w in self.workspaces() if w.on_demand])

    def free_ports(self, on_demand: bool = False) -> Iterator[int]:
        """Ports of the range that nobody holds, lowest first; for someone on demand, only
        those whose inner port is free and a port too."""
        taken = {port for port, _ in self.held_ports()}
        inner = self.settings.inner_offset if on_demand else 0
        return (n for n in range(self.settings.port_min, self.settings.port_max + 1)
                if n not in taken and n + inner not in taken and n + inner <= 65535)
