"""What operations do to a host besides writing its files, as one object: systemd (through
unitgen.systemctl), the engine (through unitgen.engine), the people's disks (through
unitgen.disktool), restic (through unitgen.repository) and the readiness probe. `Live` drives
the real ones. `Offline`, for a --root other than /, only writes files: it leaves systemd alone
and refuses what needs the engine. Fast tests hand operations a fake with the same methods."""

from unitgen import disktool, engine, hostpath, journal, probe, repository, sockets, systemctl
from unitgen.disk import Usage
from unitgen.errors import BadInput
from unitgen.model import Workspace


class Live:
    live = True
    check = staticmethod(systemctl.check)
    daemon_reload = staticmethod(systemctl.daemon_reload)
    start = staticmethod(systemctl.start)
    stop = staticmethod(systemctl.stop)
    restart = staticmethod(systemctl.restart)
    reset_failed = staticmethod(systemctl.reset_failed)
    try_reload = staticmethod(systemctl.try_reload)
    results = staticmethod(systemctl.results)
    active = staticmethod(systemctl.active)
    volumes_of = staticmethod(engine.volumes_of)
    all_volumes = staticmethod(engine.all_volumes)
    remove_volumes = staticmethod(engine.remove_volumes)
    extract_onto_disk = staticmethod(engine.extract_onto_disk)
    migrate = staticmethod(engine.migrate)
    clear_restores = staticmethod(engine.clear_restores)
    make_disk = staticmethod(disktool.make)
    unmount_disk = staticmethod(disktool.unmount)
    shrink_disk = staticmethod(disktool.shrink)
    disk_images = staticmethod(disktool.images)
    disks_of = staticmethod(disktool.images_of)
    disk_leftovers = staticmethod(disktool.leftovers)
    remove_disks = staticmethod(disktool.remove)
    running_image = staticmethod(engine.running_image)
    image_id = staticmethod(engine.image_id)
    has_image = staticmethod(engine.has_image)
    answers = staticmethod(probe.ssh_banner)
    snapshots = staticmethod(repository.snapshots)
    inspect = staticmethod(repository.inspect)
    snapshot_need = staticmethod(repository.need)
    restore_onto_disk = staticmethod(repository.restore_onto_disk)
    mark_removed = staticmethod(repository.mark_removed)
    rebuild_index = staticmethod(repository.rebuild_index)
    host_key = staticmethod(repository.host_key)
    host_name = staticmethod(repository.host_name)
    saved = staticmethod(journal.saved_snapshots)

    @staticmethod
    def disk_usage(w: Workspace) -> Usage | None:
        return None if w.on_volumes else disktool.usage(hostpath.inside, w.disk_image,
                                                        w.disk_mount)

    @staticmethod
    def disk_fs_size(w: Workspace) -> int | None:
        return None if w.on_volumes else disktool.fs_size(hostpath.inside, w.disk_image)

    @staticmethod
    def busy_ports() -> frozenset[int]:
        """Ports something on the host holds: published by containers or listened on."""
        systemctl.check()
        return frozenset(engine.published_ports() | sockets.listening_ports())


def _quiet(*_: object) -> None:
    """systemd is left alone under --root."""


def _refused(*_: object) -> None:
    raise BadInput("this needs the engine and systemd of the live host; leave out --root")


class Offline(Live):
    live = False
    check = daemon_reload = start = stop = restart = reset_failed = try_reload = \
        staticmethod(_quiet)
    results = active = volumes_of = all_volumes = remove_volumes = extract_onto_disk = \
        migrate = clear_restores = make_disk = unmount_disk = shrink_disk = disk_images = \
        disks_of = disk_leftovers = remove_disks = running_image = image_id = has_image = \
        answers = snapshots = inspect = snapshot_need = restore_onto_disk = mark_removed = \
        rebuild_index = host_key = host_name = saved = staticmethod(_refused)

    @staticmethod
    def busy_ports() -> frozenset[int]:
        return frozenset()

    @staticmethod
    def disk_usage(w: Workspace) -> Usage | None:
        return None

    @staticmethod
    def disk_fs_size(w: Workspace) -> int | None:
        return None


def for_root(live: bool) -> Live:
    return Live() if live else Offline()
