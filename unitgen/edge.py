"""What operations do to a host besides writing its files, as one object: systemd (through
unitgen.systemctl), the engine (through unitgen.engine) and the readiness probe. `Live` drives
the real ones. `Offline`, for a --root other than /, only writes files: it leaves systemd alone
and refuses what needs the engine. Fast tests hand operations a fake with the same methods."""

from unitgen import engine, journal, probe, repository, sockets, systemctl
from unitgen.errors import BadInput


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
    create_volumes = staticmethod(engine.create_volumes)
    volumes_of = staticmethod(engine.volumes_of)
    remove_volumes = staticmethod(engine.remove_volumes)
    extract = staticmethod(engine.extract)
    clear_restores = staticmethod(engine.clear_restores)
    running_image = staticmethod(engine.running_image)
    image_id = staticmethod(engine.image_id)
    has_image = staticmethod(engine.has_image)
    answers = staticmethod(probe.ssh_banner)
    snapshots = staticmethod(repository.snapshots)
    inspect = staticmethod(repository.inspect)
    restore_snapshot = staticmethod(repository.restore)
    mark_removed = staticmethod(repository.mark_removed)
    rebuild_index = staticmethod(repository.rebuild_index)
    host_key = staticmethod(repository.host_key)
    host_name = staticmethod(repository.host_name)
    saved = staticmethod(journal.saved_snapshots)

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
    results = active = create_volumes = volumes_of = remove_volumes = extract = clear_restores = \
        running_image = image_id = has_image = answers = snapshots = inspect = \
        restore_snapshot = mark_removed = rebuild_index = host_key = host_name = saved = \
        staticmethod(_refused)

    @staticmethod
    def busy_ports() -> frozenset[int]:
        return frozenset()


def for_root(live: bool) -> Live:
    return Live() if live else Offline()
