"""The steps commands share, each a short composition of the core and the edges:
load the registry, install a host's files, back up, restore, upgrade."""

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from functools import reduce
from pathlib import Path

from unitgen import archive, registry, validate
from unitgen.errors import BadInput, Failed
from unitgen.files import Root
from unitgen.model import CONFIG, ETC, FIREWALL, UNIT_DIR, Host, Person

Say = Callable[[str], None]
BACKUPS_AT_ONCE = 4
FIREWALL_UNIT = "wormhole-firewall.service"
READY_TIMEOUT = 30


def unit(name: str) -> str:
    return f"wormhole@{name}.service"


def backup_unit(name: str) -> str:
    return f"wormhole-backup@{name}.service"


def timer(name: str) -> str:
    return f"wormhole-backup@{name}.timer"


def proxy(name: str) -> str:
    return f"wormhole-proxy@{name}.service"


def socket(name: str) -> str:
    return f"wormhole-proxy@{name}.socket"


def entry(host: Host, name: str) -> str:
    """The unit that brings a workspace up: its socket when it works on demand."""
    return socket(name) if host.workspace(host.person(name)).on_demand else unit(name)


def all_units(host: Host, name: str) -> list[str]:
    """Every unit a person's workspace may have running, entry first."""
    entries = [socket(name), proxy(name)] if entry(host, name) == socket(name) else []
    return [*entries, unit(name), timer(name), f"wormhole-data@{name}.service"]


def switch(root: Root, before: Host, after: Host, name: str) -> None:
    """Install `after` and, when the person's way of running changed, stop the old entry
    and start the new one."""
    from unitgen import systemctl

    old, new = entry(before, name), entry(after, name)
    if root.live and old != new:
        systemctl.stop(*([socket(name), proxy(name)] if old == socket(name) else [old]))
    install(root, after)
    if root.live and old != new:
        systemctl.start(new)


def batches(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def load(root: Root) -> Host:
    """The registry under the root, validated."""
    settings = registry.load_settings(root.read(CONFIG), CONFIG)
    people = [registry.load_person(name, text, where)
              for name, (where, text) in root.people().items()]
    return Host(settings, tuple(people), registry.load_firewall(root.read(FIREWALL), FIREWALL))


def install(root: Root, host: Host) -> list[str]:
    """Write the host's files under the root; on the live host, make systemd read them."""
    from unitgen.render import render

    changed = root.apply(render(host))
    if root.live and changed:
        from unitgen import systemctl

        if any(p.startswith(UNIT_DIR) for p in changed):
            systemctl.daemon_reload()
        if host.firewall and any(p.startswith(f"{ETC}/firewall/") for p in changed):
            systemctl.try_reload(FIREWALL_UNIT)
    return changed


def busy_ports(root: Root) -> set[int]:
    """Ports something on the live host holds: published by containers or listened on."""
    if not root.live:
        return set()
    from unitgen import engine, sockets, systemctl

    systemctl.check()
    return engine.published_ports() | sockets.listening_ports()


def admit(host: Host, person: Person, busy: set[int]) -> Host:
    """The host with the person registered; port 0 means: the lowest free one. A person
    given again exactly as registered changes nothing, so a killed add can be rerun."""
    existing = host.person(person.name)
    if existing is not None:
        if not registry.same(existing, replace(person, port=person.port or existing.port)):
            raise BadInput(f"{person.name} exists already (port {existing.port}), with other "
                           f"values; choose another name or run: unitgen remove {person.name}")
        return host
    if person.port:
        validate.port(person.port, host)
        if person.port in busy:
            raise BadInput(f"--port: port {person.port} is in use on this host; pick another "
                           "or leave --port out")
        return host.with_person(person)
    port = next((n for n in host.free_ports() if n not in busy), None)
    if port is None:
        s = host.settings
        raise BadInput(f"no free port left in {s.port_min}-{s.port_max}; "
                       "widen port_min/port_max in the config")
    return host.with_person(replace(person, port=port))


def activate(added: list, start: bool) -> list[str]:
    """On the live host, after new people were installed: create their volumes, start their
    backup timers and on-demand sockets (and, with `start`, the others' workspaces).
    Returns the images that are missing."""
    from unitgen import engine, systemctl

    for w in added:  # created now, so that a start only starts
        engine.create_volumes(w.name, w.volumes)
    systemctl.start(*(timer(w.name) for w in added),
                    *(socket(w.name) for w in added if w.on_demand),
                    *(unit(w.name) for w in added if start and not w.on_demand))
    return sorted({w.image for w in added if not engine.has_image(w.image)})


def select(host: Host, names: list[str], everyone: bool) -> list[Person]:
    if everyone and names:
        raise BadInput("names and --all were both given; give one or the other")
    if everyone:
        return list(host.people)
    if not names:
        raise BadInput("no workspace was named; give one or more names, or --all")
    missing = [n for n in names if host.person(n) is None]
    if missing:
        raise BadInput(f"there is no workspace named {missing[0]}; see: unitgen list")
    return [host.person(n) for n in dict.fromkeys(names)]


def backup_folder(root: Root, host: Host, name: str) -> Path:
    return root(host.settings.backup_dir) / name


def backup(root: Root, host: Host, names: list[str], say: Say) -> dict[str, Path]:
    """Run each person's backup unit, a few at a time; return each newest archive."""
    from unitgen import systemctl

    made: dict[str, Path] = {}
    failed: list[str] = []
    for batch in batches(names, BACKUPS_AT_ONCE):
        with suppress(Failed):  # which of them failed is read below
            systemctl.start(*map(backup_unit, batch))
        ended = systemctl.results([backup_unit(n) for n in batch])
        for name in batch:
            if ended[backup_unit(name)] != "success":
                failed.append(name)
                say(f"[{len(made) + len(failed)}/{len(names)}] {name}: backup FAILED, see: "
                    f"journalctl -u {backup_unit(name)}")
                continue
            made[name] = archive.complete(backup_folder(root, host, name))[-1]
            say(f"[{len(made) + len(failed)}/{len(names)}] {name}: {made[name]}")
    if failed:
        raise Failed(f"the backup of {', '.join(failed)} failed; see: journalctl -u "
                     f"{backup_unit(failed[0])}")
    return made


def is_active(name: str) -> bool:
    from unitgen import systemctl

    return systemctl.show([unit(name)], ["ActiveState"])[unit(name)]["ActiveState"] == "active"


def restart_and_check(host: Host, people: list[Person]) -> list[str]:
    """Restart workspaces together; return the names that do not answer with sshd's banner."""
    from unitgen import probe, systemctl

    units = [unit(p.name) for p in people]
    with suppress(Failed):  # a workspace that did not start also fails the check below
        systemctl.reset_failed(*units)
        systemctl.restart(*units)
    address = host.settings.publish_address or "127.0.0.1"
    deadline = time.monotonic() + READY_TIMEOUT
    return [p.name for p in people
            if not probe.ssh_banner(address, p.port, max(1.0, deadline - time.monotonic()))]


def next_generation(name: str, volumes: list[str]) -> int:
    """The lowest generation above every existing volume of the person's. Pure."""
    used = [-1]
    for volume in volumes:
        for prefix in (f"wormhole-home-{name}", f"wormhole-hostkeys-{name}"):
            rest = volume.removeprefix(prefix)
            if rest != volume and (rest == "" or rest[1:].isdigit()):
                used.append(int(rest[1:] or 0))
    return max(used) + 1


def restore(root: Root, host: Host, person: Person, source: Path, say: Say) -> Host:
    """Move the person onto new volumes filled from `source`; on any failure the workspace
    keeps its data and state as they were. Returns the host as it now is."""
    from unitgen import engine

    was = host.person(person.name)
    if was is not None:  # what a killed restore left behind: none of it holds current data
        current = set(host.workspace(was).volumes)
        engine.remove_volumes([v for v in engine.volumes_of(was.name) if v not in current])
    generation = next_generation(person.name, engine.volumes_of(person.name))
    moved = replace(person, generation=generation)
    new_host = host.with_person(moved)
    volumes = new_host.workspace(moved).volumes
    say(f"restoring {source.name} into {', '.join(volumes)}")
    engine.extract(new_host.workspace(moved).image, source, person.name, volumes)
    running = was is not None and is_active(person.name)
    install(root, new_host)
    if running and restart_and_check(new_host, [moved]):
        install(root, host)
        restart_and_check(host, [was])
        engine.remove_volumes(list(volumes))
        raise Failed(f"{person.name} did not answer on the restored data, so the workspace "
                     "went back to its previous data; see: journalctl -u " + unit(person.name))
    if was is not None:
        engine.remove_volumes(list(host.workspace(was).volumes))
    return new_host


def upgrade(root: Root, host: Host, people: list[Person], image: str | None,
            say: Say) -> Host:
    """Recreate the people's containers from their (new) image, a batch at a time; a batch
    in which a workspace does not answer goes back to its previous image, and the rest is
    left as it was. Files that a newer unitgen renders differently are installed first, and
    the workspaces they concern are recreated too."""
    from unitgen import engine

    changed = install(root, host)
    templates = f"{UNIT_DIR}/wormhole@.service" in changed
    touched = {p.rsplit("/", 1)[1].removesuffix(".env") for p in changed if f"{ETC}/env/" in p}
    names = {p.name for p in people} | touched
    chosen = [p for p in host.people if templates or p.name in names]
    before = {p.name: engine.running_image(f"wormhole-{p.name}") for p in chosen}
    running = [p for p in chosen if before[p.name]]
    say(f"upgrading {len(running)} running workspace(s) of {len(chosen)} chosen, "
        f"{host.settings.upgrade_batch} at a time")

    def moved(batch: list[Person]) -> Host:
        if image is None:
            return host
        return reduce(lambda h, p: h.with_person(replace(p, image=image)), batch, host)

    for number, batch in enumerate(batches(running, host.settings.upgrade_batch), 1):
        new_host = moved(batch)
        install(root, new_host)
        failed = restart_and_check(new_host, batch)
        if failed:
            old_host = reduce(lambda h, p: h.with_person(previous(p, h, before[p.name])),
                              batch, host)
            install(root, old_host)
            still = restart_and_check(old_host, batch)
            raise Failed(f"batch {number}: {', '.join(failed)} did not answer after the "
                         "upgrade; the batch went back to its previous image"
                         + (f" but {', '.join(still)} still does not answer" if still else "")
                         + "; later batches were not touched")
        host = new_host
        say(f"batch {number}: {', '.join(p.name for p in batch)} upgraded")
    host = moved([p for p in chosen if not before[p.name]])
    install(root, host)
    return host


def previous(person: Person, host: Host, image_id: str) -> Person:
    """The person's record that runs the image they ran before: the old record when its
    image reference still names that image, else one that names the image by its id."""
    from unitgen import engine

    if engine.image_id(person.image or host.settings.image) == image_id:
        return person
    return replace(person, image=image_id)
