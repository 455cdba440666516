"""The operations, each a short composition: load the registry under the lock, decide with
the core (admission, unitgen.plan), write with the files sink, and act through an edge
(unitgen.edge: the live host, or nothing under --root). Messages go to `say`."""

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path

from unitgen import access, admission, archive, hostpath, names, plan, registry, validate
from unitgen.admission import Wanted
from unitgen.edge import Live
from unitgen.errors import BadInput, Failed
from unitgen.files import Root
from unitgen.model import Host, Person, Workspace
from unitgen.names import CONFIG, ETC, FIREWALL, FIREWALL_UNIT, UNIT_DIR
from unitgen.render import paths, render

Say = Callable[[str], None]
BACKUPS_AT_ONCE = 4
READY_TIMEOUT = 30


def load(root: Root) -> Host:
    """The registry under the root, validated."""
    settings = registry.load_settings(root.read(CONFIG), CONFIG)
    people = [registry.load_person(name, text, where)
              for name, (where, text) in root.people().items()]
    return Host(settings, tuple(people), registry.load_firewall(root.read(FIREWALL), FIREWALL))


def check(root: Root, host: Host) -> None:
    """Refuse now what installing `host` would refuse (a link in the way, say), before an
    operation stops or starts anything."""
    root.check(render(host), paths(load(root)))


def install(root: Root, edge: Live, host: Host) -> list[str]:
    """Write the host's files under the root and make systemd read them. What the registry on
    disk rendered before and `host` no longer does is deleted, manifest or not."""
    changed = root.apply(render(host), paths(load(root)))
    if any(p.startswith(UNIT_DIR) for p in changed):
        edge.daemon_reload()
    if host.firewall and any(p.startswith(f"{ETC}/firewall/") for p in changed):
        edge.try_reload(FIREWALL_UNIT)
    return changed


@dataclass(frozen=True)
class Added:
    workspaces: list[Workspace]
    missing_images: list[str]
    shared_keys: list[str]


def add(root: Root, edge: Live, wanted: list[Wanted], start: bool) -> Added:
    """Admit and install people, create their volumes, start their timers and sockets (and,
    with `start`, their workspaces)."""
    busy = edge.busy_ports()
    with root.locked():
        host = admission.admit(load(root), wanted, busy)
        install(root, edge, host)
    added = [host.workspace(host.need(w.person.name)) for w in wanted]
    shared = validate.shared_keys(host, {w.name for w in added})
    if not edge.live:
        return Added(added, [], shared)
    for w in added:  # created now, so that a start only starts
        edge.create_volumes(w.name, w.volumes)
    edge.start(*(names.timer(w.name) for w in added),
               *(names.proxy_socket(w.name) for w in added if w.on_demand),
               *(names.unit(w.name) for w in added if start and not w.on_demand))
    return Added(added, sorted({w.image for w in added if not edge.has_image(w.image)}), shared)


def remove(root: Root, edge: Live, name: str, purge: bool, final_backup: bool,
           say: Say) -> None:
    """Take a final backup, stop and disable the workspace, remove its files; with `purge`,
    its volumes too (also those a remove killed before its purge left behind)."""
    with root.locked():
        host = load(root)
        if host.person(name) is None and purge and (gone := edge.remove_volumes(
                edge.volumes_of(name))):
            say(f"{name} was removed already; deleted volumes: {', '.join(gone)}")
            return
        workspace = host.workspace(host.need(name))
        check(root, host.without(name))
        if final_backup and edge.live:
            say(f"final backup: {backup(root, edge, host, [name], _silent)[name]}")
        edge.stop(*workspace.units)
        install(root, edge, host.without(name))
    say(f"removed {name}")
    if purge:
        gone = edge.remove_volumes(edge.volumes_of(name))
        say(f"deleted volumes: {', '.join(gone) or 'none were left'}")
    else:
        say(f"kept {name}'s home and host key; `unitgen add {name} ...` brings them back")


def _silent(_: str) -> None:
    pass


def backup_folder(root: Root, host: Host, name: str) -> Path:
    return root(host.settings.backup_dir) / name


def backup(root: Root, edge: Live, host: Host, people: list[str], say: Say) -> dict[str, Path]:
    """Run each person's backup unit, a few at a time; return each newest archive."""
    made: dict[str, Path] = {}
    failed: list[str] = []
    for batch in plan.chunks(people, BACKUPS_AT_ONCE):
        units = [names.backup_unit(n) for n in batch]
        with suppress(Failed):  # which of them failed is read below
            edge.start(*units)
        ended = edge.results(units)
        for name in batch:
            count = f"[{len(made) + len(failed) + 1}/{len(people)}] {name}"
            if ended[names.backup_unit(name)] != "success":
                failed.append(name)
                say(f"{count}: backup FAILED, see: journalctl -u {names.backup_unit(name)}")
                continue
            made[name] = hostpath.outside(archive.complete(backup_folder(root, host, name))[-1])
            say(f"{count}: {made[name]}")
    if failed:
        raise Failed(f"the backup of {', '.join(failed)} failed; see: journalctl -u "
                     f"{names.backup_unit(failed[0])}")
    return made


def restart_and_check(edge: Live, host: Host, people: list[Person]) -> list[str]:
    """Restart workspaces together; return the names that do not answer with sshd's banner."""
    units = [names.unit(p.name) for p in people]
    with suppress(Failed):  # a workspace that did not start also fails the check below
        edge.reset_failed(*units)
        edge.restart(*units)
    address = host.settings.publish_address or "127.0.0.1"
    deadline = time.monotonic() + READY_TIMEOUT
    return [p.name for p in people
            if not edge.answers(address, p.port, max(1.0, deadline - time.monotonic()))]


def restore(root: Root, edge: Live, name: str, source: Path | None, wanted: Wanted | None,
            backup_first: bool, say: Say) -> Path:
    """Restore a person from `source` (default: their newest archive), a person this host does
    not know yet from `wanted`; returns the archive used."""
    with root.locked():
        host = load(root)
        if source is None:
            found = archive.complete(backup_folder(root, host, name))
            if not found:
                raise BadInput(f"there is no backup of {name} in "
                               f"{hostpath.outside(backup_folder(root, host, name))}; give an "
                               "ARCHIVE")
            source = found[-1]
        archive.verify(source)
        person = host.person(name)
        if person is None:
            if wanted is None:
                raise BadInput(f"{name} is not on this host; give their --key to add them "
                               "with the restored data")
            person = admission.admit(host, [wanted], edge.busy_ports()).need(name)
        check(root, host.with_person(person))
        if backup_first and host.person(name) is not None:
            say(f"backed up the current data first: "
                f"{backup(root, edge, host, [name], _silent)[name]}")
        _restore(root, edge, host, person, source, say)
    edge.start(names.timer(name))
    return hostpath.outside(source)


def _restore(root: Root, edge: Live, host: Host, person: Person, source: Path,
             say: Say) -> None:
    """Move the person onto new volumes filled from `source`; on any failure the workspace
    keeps its data and state as they were."""
    was = host.person(person.name)
    edge.clear_restores(person.name)
    step = plan.restore(host, person, edge.volumes_of(person.name))
    check(root, step.after)
    edge.remove_volumes(step.stale)
    say(f"restoring {source.name} into {', '.join(step.volumes)}")
    edge.extract(step.after.workspace(step.person).image, source, person.name, step.volumes)
    running = was is not None and edge.active(names.unit(person.name))
    install(root, edge, step.after)
    if running and restart_and_check(edge, step.after, [step.person]):
        install(root, edge, host)
        restart_and_check(edge, host, [was])
        edge.remove_volumes(list(step.volumes))
        raise Failed(f"{person.name} did not answer on the restored data, so the workspace "
                     f"went back to its previous data; see: journalctl -u "
                     f"{names.unit(person.name)}")
    if was is not None:
        edge.remove_volumes(list(host.workspace(was).volumes))


def upgrade(root: Root, edge: Live, wanted: list[str], everyone: bool, image: str | None,
            batch: int | None, say: Say) -> None:
    """Recreate the people's containers from their (new) image, a batch at a time; a batch in
    which a workspace does not answer goes back to its previous image, and the rest is left
    as it was. Files that a newer unitgen renders differently are installed first, and the
    workspaces they concern are recreated too."""
    with root.locked():
        host = load(root)
        if batch is not None:
            host = host.with_settings(upgrade_batch=batch)
        people = plan.select(host, wanted, everyone) if wanted or everyone else []
        if image is not None and not people:
            raise BadInput("--image needs names or --all; give USER... or --all")
        chosen = plan.recreate(host, people, install(root, edge, host))
        before = {p.name: edge.running_image(names.container(p.name)) for p in chosen}
        running = [p for p in chosen if before[p.name]]
        say(f"upgrading {len(running)} running workspace(s) of {len(chosen)} chosen, "
            f"{host.settings.upgrade_batch} at a time")
        ids = {ref: edge.image_id(ref) for ref in {host.workspace(p).image for p in running}}
        ran = {p.name: before[p.name] for p in running
               if ids[host.workspace(p).image] != before[p.name]}
        for step in plan.upgrade(host, running, image, ran):
            _upgrade_batch(root, edge, step, say)
            host = step.after
        install(root, edge, plan.with_image(host, [p for p in chosen if not before[p.name]],
                                            image))


def _upgrade_batch(root: Root, edge: Live, step: plan.Batch, say: Say) -> None:
    install(root, edge, step.after)
    failed = restart_and_check(edge, step.after, step.people)
    if failed:
        install(root, edge, step.rollback)
        still = restart_and_check(edge, step.rollback, step.people)
        raise Failed(f"batch {step.number}: {', '.join(failed)} did not answer after the "
                     "upgrade; the batch went back to its previous image"
                     + (f" but {', '.join(still)} still does not answer" if still else "")
                     + "; later batches were not touched")
    say(f"batch {step.number}: {', '.join(p.name for p in step.people)} upgraded")


def change(root: Root, edge: Live, name: str, edit: Callable[[Person], Person]) -> Person:
    """Change one person's record and install the result; when their way of running changed,
    stop the old entry and start the new one."""
    with root.locked():
        before = load(root)
        changed = edit(before.need(name))
        after = before.with_person(changed)
        added = [key for key in changed.keys if key not in before.need(name).keys]
        access.check_key_policy(added, after.workspace(changed).key_policy)
        stop, start = plan.switch(before.workspace(before.need(name)), after.workspace(changed))
        check(root, after)
        if stop:
            edge.stop(*stop)
        install(root, edge, after)
        if start:
            edge.start(*start)
    return changed


def set_limits(root: Root, edge: Live, name: str, limits: dict, restart: bool) -> bool:
    """Change a person's limits or way of running; with `restart`, apply them now and tell
    whether the workspace answers."""
    person = change(root, edge, name, lambda p: replace(p, **limits))
    return not restart or not restart_and_check(edge, load(root), [person])


def firewall(root: Root, edge: Live, on: bool) -> Host:
    """Install and start the host's firewall, or stop it and take its files out."""
    with root.locked():
        was = load(root)
        host = replace(was, firewall=on)
        check(root, host)
        edge.check()
        if was.firewall and not on:
            edge.stop(FIREWALL_UNIT)
        install(root, edge, host)
        if on:
            edge.restart(FIREWALL_UNIT)
    return host
