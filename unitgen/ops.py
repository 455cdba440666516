"""The operations, each a short composition: load the registry under the lock, decide with
the core (admission, unitgen.plan), write with the files sink, and act through an edge
(unitgen.edge: the live host, or nothing under --root). Messages go to `say`."""

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path

from unitgen import (
    access,
    admission,
    archive,
    credentials,
    hostpath,
    names,
    plan,
    registry,
    restic,
    validate,
)
from unitgen.admission import Wanted
from unitgen.edge import Live
from unitgen.errors import BadInput, Failed, UnitgenError
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
    timers = (names.FORGET_TIMER, names.CHECK_TIMER)
    if any(p.endswith(timers) for p in changed) and host.people:
        edge.start(*timers)
    return changed


def backups(host: Host, edge: Live) -> restic.Backups:
    """The backup settings, with the name this host's snapshots carry."""
    return restic.backups(host.settings, host.settings.host or edge.host_name())


def host_key(edge: Live, host: Host, user: str, choice: restic.Pick) -> tuple[str, str]:
    """The snapshot a restore with `choice` would take, and the public host key it holds
    (what a fleet's move expects the workspace to answer with)."""
    b = backups(host, edge)
    found = restic.pick(edge.snapshots(b, f"user={user}"), user, choice, b.host)
    key = edge.host_key(b, found, user)
    if key is None:
        raise BadInput(f"snapshot {found.short_id} of {user} holds no host key; see: unitgen "
                       f"snapshots {user}")
    return found.id, key


def secrets(root: Root, edge: Live, host: Host) -> list[str]:
    """The repository's password and location at the first use on a live host; what to tell
    the admin about what was created."""
    return credentials.ensure(root, host.settings) if edge.live else []


HELD = (f"this host's backups wait: it took over a repository that holds snapshots of its "
        f"own name, as when a lost host is recovered; run unitgen restore --all (or remove "
        f"{names.HOLD} to back up this host as it is)")


@dataclass(frozen=True)
class Added:
    workspaces: list[Workspace]
    missing_images: list[str]
    shared_keys: list[str]
    notes: list[str] = ()


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
    notes = secrets(root, edge, host)
    for w in added:  # created now, so that a start only starts
        edge.create_volumes(w.name, w.volumes)
    edge.start(*(names.timer(w.name) for w in added),
               *(names.proxy_socket(w.name) for w in added if w.on_demand),
               *(names.unit(w.name) for w in added if start and not w.on_demand))
    images = {w.image for w in added} | {host.settings.backup_image}
    return Added(added, sorted(i for i in images if not edge.has_image(i)), shared, notes)


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
            for line in secrets(root, edge, host):
                say(line)
            say(f"final backup: snapshot {backup(root, edge, host, [name], _silent)[name]}")
        edge.stop(*workspace.units)
        install(root, edge, host.without(name))
    say(f"removed {name}")
    if edge.live:
        _mark_removed(edge, host, name, say)
    if purge:
        gone = edge.remove_volumes(edge.volumes_of(name))
        say(f"deleted volumes: {', '.join(gone) or 'none were left'}")
    else:
        say(f"kept {name}'s home and host key; `unitgen add {name} ...` brings them back")


def _silent(_: str) -> None:
    pass


def _mark_removed(edge: Live, host: Host, name: str, say: Say) -> None:
    """Leave the marker after which restore --all leaves the person out: they left."""
    try:
        edge.mark_removed(backups(host, edge), name)
    except UnitgenError as problem:
        say(f"warning: {name} could not be marked as removed in the backup repository "
            f"({str(problem).partition('; ')[0]}), so unitgen restore --all would bring them "
            "back")


def backup(root: Root, edge: Live, host: Host, people: list[str], say: Say,
           repair: bool = False) -> dict[str, str]:
    """Run each person's backup unit, a few at a time; return each new snapshot's id. With
    `repair` (a damaged pack was removed from the repository), rebuild the index first and
    have each backup read every file again, so that what the pack held is saved anew."""
    for line in secrets(root, edge, host):
        say(line)
    if credentials.held(root):
        raise BadInput(HELD)
    if not repair:
        return _backup(root, edge, people, say)
    edge.rebuild_index(backups(host, edge))
    say("rebuilt the repository's index; every backup reads each file again")
    with credentials.rereading(root):
        return _backup(root, edge, people, say)


def _backup(root: Root, edge: Live, people: list[str], say: Say) -> dict[str, str]:
    made: dict[str, str] = {}
    failed: list[str] = []
    for batch in plan.chunks(people, BACKUPS_AT_ONCE):
        units = [names.backup_unit(n) for n in batch]
        since = time.time() - 1
        with suppress(Failed):  # which of them failed is read below
            edge.start(*units)
        if credentials.held(root):  # the repository unit found this host's snapshots
            raise Failed(HELD)
        ended = edge.results(units)
        saved = edge.saved([n for n in batch if ended[names.backup_unit(n)] == "success"],
                           since)
        for name in batch:
            count = f"[{len(made) + len(failed) + 1}/{len(people)}] {name}"
            if name not in saved:
                failed.append(name)
                say(f"{count}: backup FAILED, see: journalctl -u {names.backup_unit(name)}")
                continue
            made[name] = saved[name]
            say(f"{count}: snapshot {saved[name]}")
    if failed:
        raise Failed(f"the backup of {', '.join(failed)} failed; see: journalctl -u "
                     f"{names.backup_unit(failed[0])} -u {names.REPOSITORY_UNIT}")
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


Fill = Callable[[Workspace, tuple[str, str]], None]


def restore(root: Root, edge: Live, name: str, source: Path | None, choice: restic.Pick,
            wanted: Wanted | None, backup_first: bool, say: Say) -> str:
    """Restore a person from an archive (`source`) or a snapshot (`choice`: the newest, an
    id, or the newest as of a time); a person this host does not know yet from `wanted`, or
    else from the record in their snapshot. Returns what was restored."""
    with root.locked():
        host = load(root)
        if source is not None:
            archive.verify(source)
            used, record = str(hostpath.outside(source)), None

            def fill(w: Workspace, volumes: tuple[str, str]) -> None:
                edge.extract(w.image, source, name, volumes)
        else:
            b = backups(host, edge)
            chosen = restic.pick(edge.snapshots(b, f"user={name}"), name, choice, b.host)
            seen = edge.inspect(b, {name: chosen})[name]
            plan.holds_host_key(name, chosen, seen.host_key)
            used, record = f"snapshot {chosen.short_id} of {chosen.time:%Y-%m-%d %H:%M} UTC", \
                seen.record

            def fill(w: Workspace, volumes: tuple[str, str]) -> None:
                edge.restore_snapshot(b, chosen, name, volumes)
        person = host.person(name)
        if person is None:
            if wanted is None and record is None:
                raise BadInput(f"{name} is not on this host and the backup holds no record "
                               "of them; give their --key to add them with the restored data")
            wanted = wanted or Wanted(plan.from_record(name, record, used), used)
            person = admission.admit(host, [wanted], edge.busy_ports()).need(name)
        check(root, host.with_person(person))
        if backup_first and host.person(name) is not None:
            _backup_first(root, edge, host, [name], say)
        _restore(root, edge, host, person, fill, used, say)
    edge.start(names.timer(name))
    return used


def _backup_first(root: Root, edge: Live, host: Host, people: list[str], say: Say) -> None:
    if credentials.held(root):
        say("the current data was not backed up first: this host's backups wait for "
            "unitgen restore --all")
        return
    made = backup(root, edge, host, people, _silent)
    say("backed up the current data first: " + ", ".join(
        f"{n} snapshot {made[n]}" for n in people))


def _restore(root: Root, edge: Live, host: Host, person: Person, fill: Fill, used: str,
             say: Say) -> None:
    """Move the person onto new volumes filled by `fill`; on any failure the workspace
    keeps its data and state as they were."""
    was = host.person(person.name)
    edge.clear_restores(person.name)
    step = plan.restore(host, person, edge.volumes_of(person.name))
    check(root, step.after)
    edge.remove_volumes(step.stale)
    say(f"restoring {person.name} from {used} into {', '.join(step.volumes)}")
    fill(step.after.workspace(step.person), step.volumes)
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
        edge.remove_volumes([v for v in host.workspace(was).volumes if v not in step.volumes])


def restore_all(root: Root, edge: Live, choice: restic.Pick, backup_first: bool,
                say: Say) -> list[str]:
    """Bring back every person of this host (or of `choice.host`, a lost one) from their
    newest snapshots (as of `choice.as_of`): their record as the snapshot holds it (port,
    keys, limits), then their home and host key, each switched over as a single restore
    is. Everything is verified before anything changes. Returns who was restored."""
    if choice.snapshot is not None:
        raise BadInput("--all restores each person's own snapshot; give --as-of TIME, not an "
                       "id")
    with root.locked():
        host = load(root)
        b = backups(host, edge)
        source = choice.host or b.host
        chosen, gone = restic.recovery(edge.snapshots(b, f"host={source}"), source,
                                       choice.as_of)
        if not chosen:
            raise BadInput(f"the repository holds no snapshot of host {source}; see: unitgen "
                           "snapshots, and give the lost host's name with --from-host")
        target = plan.recovery(host, chosen, edge.inspect(b, chosen))
        plan.free_ports(host, target, edge.busy_ports())
        check(root, target)
        for user in gone:
            say(f"left out {user}: they were removed from {source}")
        for name in plan.moved(host, target):
            edge.stop(*host.workspace(host.need(name)).units)
        install(root, edge, target)
        edge.start(names.REPOSITORY_UNIT)  # takes the repository over, or checks it
        registered = [n for n in sorted(chosen) if host.person(n) is not None]
        if backup_first and registered:
            _backup_first(root, edge, target, registered, say)
        failed = _recover(root, edge, b, chosen, say)
        if failed:
            raise Failed(f"{', '.join(failed)} could not be restored (the others were); see "
                         "the lines above, and restore each alone with: unitgen restore NAME")
        if credentials.release(root):
            say(f"backups of this host resume ({names.HOLD} removed)")
    return sorted(chosen)


def _recover(root: Root, edge: Live, b: restic.Backups, chosen: dict[str, restic.Snapshot],
             say: Say) -> list[str]:
    """Restore each person's data onto new volumes and start those not running; the names
    that failed."""
    failed = []
    for name, snapshot in sorted(chosen.items()):
        current = load(root)
        used = f"snapshot {snapshot.short_id} of {snapshot.time:%Y-%m-%d %H:%M} UTC"
        try:
            _restore(root, edge, current, current.need(name),
                     lambda _w, volumes, s=snapshot, n=name: edge.restore_snapshot(
                         b, s, n, volumes), used, say)
        except UnitgenError as problem:
            say(f"{name}: {problem}")
            failed.append(name)
    host = load(root)
    workspaces = [host.workspace(host.need(n)) for n in sorted(chosen) if n not in failed]
    edge.start(*(names.timer(w.name) for w in workspaces))
    idle = [w for w in workspaces if not edge.active(w.entry)]
    with suppress(Failed):  # who did not start also fails the check below
        edge.start(*(w.entry for w in idle))
    address = host.settings.publish_address or "127.0.0.1"
    deadline = time.monotonic() + READY_TIMEOUT
    for w in idle:
        if not w.on_demand and not edge.answers(address, w.port,
                                                max(1.0, deadline - time.monotonic())):
            say(f"{w.name}: restored, but the workspace does not answer; see: journalctl -u "
                f"{names.unit(w.name)}")
            failed.append(w.name)
    return failed


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
        for line in secrets(root, edge, host):
            say(line)
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
