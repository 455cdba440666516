"""A stand-in for unitgen.edge.Live that records what operations ask of systemd, the engine
and the disks, and answers from plain data: the fast tests drive unitgen.ops with it."""

from unitgen import names, registry, restic
from unitgen.disk import Need, Usage, usable
from unitgen.errors import BadInput, Failed
from unitgen.model import Workspace, size_bytes
from unitgen.names import backup_unit, generation_of
from unitgen.repository import Inspected


class FakeEdge:
    live = True

    def __init__(self, images: dict[str, str] | None = None, broken: set[int] = frozenset(),
                 busy: set[int] = frozenset(), failing: set[str] = frozenset()) -> None:
        self.calls: list[tuple] = []
        self.images = dict(images or {"wormhole:latest": "sha256:old"})
        self.broken = set(broken)  # ports whose sshd does not answer
        self.busy = frozenset(busy)
        self.volumes: set[str] = set()
        self.running: dict[str, str] = {}  # container -> image id
        self.active_units: set[str] = set()
        self.disks: dict[str, Usage] = {}  # image -> its use
        self.mounted: dict[str, str] = {}  # mount folder -> image
        self.failing = set(failing)  # calls that fail: migrate, extract, restore, shrink, reload
        self.grows_to: str | None = None  # what the next start grows every disk to
        self.listing: list[dict] = []  # the repository's snapshots, as restic --json lists them
        self.records: dict[str, str] = {}  # snapshot id -> the record it holds
        self.keyless: set[str] = set()  # snapshot ids without a host key
        self.needs: dict[str, Need] = {}  # snapshot id -> what it takes on a disk
        self.password_wrong = False
        self.failing_backups: set[str] = set()
        self.hostname = "lab"

    def _record(self, *call: object) -> None:
        self.calls.append(call)

    def check(self) -> None:
        self._record("check")

    def daemon_reload(self) -> None:
        self._record("daemon-reload")

    def start(self, *units: str) -> None:
        self._record("start", *units)
        self._grow()

    def _grow(self) -> None:
        if self.grows_to is not None:  # the data unit grows the disk offline at its start
            room = size_bytes(self.grows_to)
            self.disks = {i: Usage(room, u.used, u.inodes, u.inodes_used)
                          for i, u in self.disks.items()}

    def stop(self, *units: str) -> None:
        self._record("stop", *units)

    def restart(self, *units: str) -> None:
        self._record("restart", *units)
        self._grow()

    def reset_failed(self, *units: str) -> None:
        self._record("reset-failed", *units)

    def try_reload(self, *units: str) -> None:
        self._record("try-reload", *units)
        self._fail("reload")

    def _fail(self, call: str) -> None:
        if call in self.failing:
            raise Failed(f"{call} failed; see the fake")

    def results(self, units: list[str]) -> dict[str, str]:
        return {u: "exit-code" if backup_unit.of(u) in self.failing_backups else "success"
                for u in units}

    def active(self, unit: str) -> bool:
        return unit in self.active_units

    def volumes_of(self, name: str) -> list[str]:
        return sorted(v for v in self.volumes if generation_of(name, v) is not None)

    def all_volumes(self) -> set[str]:
        return set(self.volumes)

    def remove_volumes(self, volumes: list[str]) -> list[str]:
        gone = [v for v in volumes if v in self.volumes]
        self.volumes -= set(gone)
        return gone

    def make_disk(self, image: str, mount: str, size: str) -> None:
        self._record("make-disk", image, mount, size)
        self.disks.setdefault(image, Usage(usable(size_bytes(size)), 0, 1 << 16, 11))
        self.mounted[mount] = image

    def unmount_disk(self, mount: str) -> None:
        self._record("unmount", mount)
        self.mounted.pop(mount, None)

    def shrink_disk(self, image: str, mount: str, size: str) -> None:
        self._record("shrink", image, size)
        self._fail("shrink")
        old = self.disks[image]
        self.disks[image] = Usage(usable(size_bytes(size)), old.used, old.inodes,
                                  old.inodes_used)

    def disk_images(self) -> set[str]:
        return set(self.disks)

    def disks_of(self, name: str) -> list[str]:
        return sorted(i for i in self.disks if names.disk_generation_of(name, i) is not None)

    def disk_leftovers(self, name: str) -> list[str]:
        return self.disks_of(name)

    def remove_disks(self, paths: list[str]) -> list[str]:
        for path in paths:
            self.mounted.pop(path, None)
        gone = [p for p in paths if p in self.disks]
        for path in gone:
            del self.disks[path]
        return gone

    def disk_usage(self, w: Workspace) -> Usage | None:
        return None if w.on_volumes else self.disks.get(w.disk_image)

    def disk_fs_size(self, w: Workspace) -> int | None:
        """The fake's file systems fill their images by the use they report."""
        usage = self.disk_usage(w)
        return None if usage is None else usage.size

    def extract_onto_disk(self, image: str, archive: object, name: str, mount: str) -> None:
        self._record("extract", name, self.mounted[mount])
        self._fail("extract")

    def migrate(self, image: str, name: str, volumes: tuple[str, str], mount: str) -> str:
        self._record("migrate", name, *volumes, self.mounted[mount])
        self._fail("migrate")
        return "migrate: 12 records equal on both sides"

    def clear_restores(self, name: str) -> None:
        self._record("clear-restores", name)

    def running_image(self, container: str) -> str | None:
        return self.running.get(container)

    def image_id(self, reference: str) -> str | None:
        return self.images.get(reference)

    def has_image(self, reference: str) -> bool:
        return reference in self.images

    def answers(self, address: str, port: int, timeout: float) -> bool:
        return port not in self.broken

    def busy_ports(self) -> frozenset[int]:
        return self.busy

    def _repository(self) -> None:
        if self.password_wrong:
            raise BadInput("restic snapshots failed (wrong password): Fatal: wrong password or "
                           "no key found; put the right one in /etc/wormhole/restic/password")

    def snapshots(self, backups: restic.Backups, tag: str | None = None,
                  timeout: float | None = None) -> list[restic.Snapshot]:
        self._repository()
        return [s for s in restic.snapshots(self.listing) if tag is None or tag in s.tags]

    def inspect(self, backups: restic.Backups, chosen: dict) -> dict[str, Inspected]:
        self._repository()
        return {user: Inspected(self.records.get(s.id), s.id not in self.keyless)
                for user, s in chosen.items()}

    def snapshot_need(self, backups: restic.Backups, snapshot: restic.Snapshot,
                      name: str) -> Need:
        self._record("snapshot-need", name, snapshot.short_id)
        return self.needs.get(snapshot.id, Need(1 << 20, 12))

    def restore_onto_disk(self, backups: restic.Backups, snapshot: restic.Snapshot, name: str,
                          mount: str) -> None:
        self._record("restore-snapshot", name, snapshot.short_id, self.mounted[mount])
        self._fail("restore")

    def mark_removed(self, backups: restic.Backups, name: str) -> None:
        self._record("mark-removed", name, backups.host)

    def host_key(self, backups: restic.Backups, snapshot: restic.Snapshot,
                 user: str) -> str | None:
        self._repository()
        return None if snapshot.id in self.keyless else f"ssh-ed25519 KEY{snapshot.short_id}"

    def rebuild_index(self, backups: restic.Backups) -> None:
        self._record("rebuild-index")

    def host_name(self) -> str:
        return self.hostname

    def saved(self, names: list[str], since: float) -> dict[str, str]:
        return {n: f"{abs(hash(n)) % 16**8:08x}" for n in names if n not in self.failing_backups}

    def add_snapshot(self, user: str, hours: float, number: int, host: str = "lab",
                     person: object = None, removed: bool = False) -> str:
        """A snapshot in the fake repository, with the record of `person` when given."""
        moment = f"2026-12-01T{int(hours):02d}:{int(hours % 1 * 60):02d}:00.5Z"
        sid = f"{number:02x}" * 32
        paths = [f"/wormhole/{user}/removed"] if removed else restic.paths(user)
        self.listing.append({"id": sid, "time": moment, "hostname": host, "paths": paths,
                             "tags": [f"user={user}", f"host={host}",
                                      *(["removed"] if removed else [])]})
        if person is not None:
            self.records[sid] = registry.dump_person(person)
        return sid

    def restarted(self) -> list[str]:
        return [unit for call in self.calls if call[0] == "restart" for unit in call[1:]]
