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
    disk,
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
from unitgen.model import Host, Person, Workspace, size_bytes
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
    disks_later: str = ""  # why the disks were not all made now (each start makes its own)
    notes: list[str] = ()


def add(root: Root, edge: Live, wanted: list[Wanted], start: bool) -> Added:
    """Admit and install people, make their disks, start their timers and sockets (and, with
    `start`, their workspaces)."""
    busy = edge.busy_ports()
    with root.locked():
        host = admission.admit(load(root), wanted, busy)
        install(root, edge, host)
    added = [host.workspace(host.need(w.person.name)) for w in wanted]
    shared = validate.shared_keys(host, {w.name for w in added})
    if not edge.live:
        return Added(added, [], shared)
    notes = secrets(root, edge, host)
    later = ""
    try:
        edge.start(names.DISKS_UNIT)  # made now, so that a start only mounts
    except Failed as problem:  # a home still on volumes, say: not the new people's problem
        later = str(problem)
    edge.start(*(names.timer(w.name) for w in added),
               *(names.proxy_socket(w.name) for w in added if w.on_demand),
               *(names.unit(w.name) for w in added if start and not w.on_demand))
    images = {w.image for w in added} | {host.settings.backup_image}
    return Added(added, sorted(i for i in images if not edge.has_image(i)), shared, later,
                 notes)


def remove(root: Root, edge: Live, name: str, purge: bool, final_backup: bool,
           say: Say) -> None:
    """Take a final backup, stop and disable the workspace, remove its files; with `purge`,
    its disks and volumes too (also those a remove killed before its purge left behind)."""
    with root.locked():
        host = load(root)
        if host.person(name) is None and purge and (gone := _purge(edge, name)):
            say(f"{name} was removed already; deleted: {', '.join(gone)}")
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
        say(f"deleted: {', '.join(_purge(edge, name)) or 'nothing was left'}")
    else:
        say(f"kept {name}'s home and host key; `unitgen add {name} ...` brings them back")


def _purge(edge: Live, name: str) -> list[str]:
    """Delete every disk image, mount folder and volume of the person's."""
    return edge.remove_disks(edge.disk_leftovers(name)) + \
        edge.remove_volumes(edge.volumes_of(name))


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


def restart_and_check(edge: Live, host: Host, people: list[Person],
                      disk: bool = False) -> list[str]:
    """Restart workspaces together (with `disk`, their disks too, unmounted and mounted
    again); return the names that do not answer with sshd's banner."""
    units = [names.unit(p.name) for p in people]
    disks = [names.data_unit(p.name) for p in people] if disk else []
    with suppress(Failed):  # a workspace that did not start also fails the check below
        edge.reset_failed(*units, *disks)
        # The data units first: a restart of one restarts its workspace too (Requires=), so
        # once it is queued systemd finishes both even if unitgen is killed; a stop and a
        # later start would leave the workspace stopped.
        edge.restart(*disks, *units)
    address = host.settings.publish_address or "127.0.0.1"
    deadline = time.monotonic() + READY_TIMEOUT
    return [p.name for p in people
            if not edge.answers(address, p.port, max(1.0, deadline - time.monotonic()))]


Fill = Callable[[Workspace, str], None]  # fills a new disk mounted aside at a host path


def restore(root: Root, edge: Live, name: str, source: Path | None, choice: restic.Pick,
            wanted: Wanted | None, backup_first: bool, say: Say) -> str:
    """Restore a person from an archive (`source`) or a snapshot (`choice`: the newest, an
    id, or the newest as of a time); a person this host does not know yet from `wanted`, or
    else from the record in their snapshot. Returns what was restored. A backup that does
    not fit the person's disk is refused before anything changes."""
    with root.locked():
        host = load(root)
        if source is not None:
            need = disk.need(archive.verify(source))
            used, record = str(hostpath.outside(source)), None

            def fill(w: Workspace, aside: str) -> None:
                edge.extract_onto_disk(w.image, source, name, aside)
        else:
            b = backups(host, edge)
            chosen = restic.pick(edge.snapshots(b, f"user={name}"), name, choice, b.host)
            seen = edge.inspect(b, {name: chosen})[name]
            plan.holds_host_key(name, chosen, seen.host_key)
            used, record = f"snapshot {chosen.short_id} of {chosen.time:%Y-%m-%d %H:%M} UTC", \
                seen.record
            need = edge.snapshot_need(b, chosen, name)

            def fill(w: Workspace, aside: str) -> None:
                edge.restore_onto_disk(b, chosen, name, aside)
        person = host.person(name)
        if person is None:
            if wanted is None and record is None:
                raise BadInput(f"{name} is not on this host and the backup holds no record "
                               "of them; give their --key to add them with the restored data")
            wanted = wanted or Wanted(plan.from_record(name, record, used), used)
            person = admission.admit(host, [wanted], edge.busy_ports()).need(name)
        cap = host.with_person(person).workspace(person).disk
        disk.check_fits(need, cap, used,
                        f"give {name} a larger disk first: unitgen set {name} --disk SIZE"
                        if host.person(name) else "give a larger --disk, with their --key")
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
    """Move the person onto a new disk filled by `fill`; on any failure the workspace
    keeps its data and state as they were."""
    name = person.name
    was = host.person(name)
    edge.clear_restores(name)
    edge.remove_disks([names.disk_aside(name)])  # what a killed restore or move left mounted
    step = plan.restore(host, person, edge.volumes_of(name), edge.disks_of(name))
    check(root, step.after)
    edge.remove_volumes(step.stale_volumes)
    edge.remove_disks(step.stale_disks)
    new = step.disk
    say(f"restoring {name} from {used} onto a new disk of {new.disk}, {new.disk_image}")
    _fill(edge, new, lambda aside: fill(new, aside))
    running = was is not None and edge.active(names.unit(name))
    if was is not None and not running:
        edge.stop(names.data_unit(name))  # a backup may hold the old disk mounted
    install(root, edge, step.after)
    if running and restart_and_check(edge, step.after, [step.person], disk=True):
        install(root, edge, host)
        restart_and_check(edge, host, [was], disk=True)
        edge.remove_disks([new.disk_image])
        raise Failed(f"{name} did not answer on the restored data, so the workspace "
                     f"went back to its previous data; see: journalctl -u {names.unit(name)}")
    if was is not None:
        _release(edge, host.workspace(was))


def _fill(edge: Live, new: Workspace, fill: Callable[[str], object]) -> None:
    """Make the new disk of `new`, mount it aside, fill it with `fill(aside)`; on any
    failure the new disk is deleted."""
    aside = names.disk_aside(new.name)
    try:
        edge.make_disk(new.disk_image, aside, new.disk)
        try:
            fill(aside)
        finally:
            edge.remove_disks([aside])  # unmounted first
    except UnitgenError:  # a wrong password is BadInput: the new disk goes all the same
        edge.remove_disks([new.disk_image])
        raise


def _release(edge: Live, old: Workspace) -> None:
    """Delete what held the person's data before a switch: their volumes, or their disk."""
    edge.remove_volumes(list(old.volumes))
    if not old.on_volumes:
        edge.remove_disks([old.disk_image])


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
        _fits(edge, b, target, chosen)
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


def _fits(edge: Live, b: restic.Backups, target: Host,
          chosen: dict[str, restic.Snapshot]) -> None:
    """Refuse, before anything changes, a snapshot that a disk of its person's cap cannot
    hold."""
    for name, snapshot in sorted(chosen.items()):
        disk.check_fits(edge.snapshot_need(b, snapshot, name),
                        target.workspace(target.need(name)).disk,
                        f"{name}'s snapshot {snapshot.short_id}",
                        f"give {name} a larger disk first (unitgen set {name} --disk SIZE), "
                        f"or restore them alone with a larger --disk")


def _recover(root: Root, edge: Live, b: restic.Backups, chosen: dict[str, restic.Snapshot],
             say: Say) -> list[str]:
    """Restore each person's data onto a new disk and start those not running; the names
    that failed."""
    failed = []
    for name, snapshot in sorted(chosen.items()):
        current = load(root)
        used = f"snapshot {snapshot.short_id} of {snapshot.time:%Y-%m-%d %H:%M} UTC"
        try:
            _restore(root, edge, current, current.need(name),
                     lambda _w, aside, s=snapshot, n=name: edge.restore_onto_disk(
                         b, s, n, aside), used, say)
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
        movers = plan.to_move(host, people or list(host.people), edge.all_volumes(),
                              edge.disk_images())
        host = plan.on_volumes(host, movers)
        changed = install(root, edge, host)
        moved, stayed = [], []
        for person in movers:
            try:
                host = _move(root, edge, host, person, say)
                moved.append(person.name)
            except Failed as problem:
                stayed.append(person.name)
                say(f"{person.name}: NOT moved onto a disk: {problem}. The home stays on the "
                    f"volume {host.workspace(person).volumes[0]}, with no disk cap, and the "
                    "workspace runs on it as before")
        chosen = [p for p in plan.recreate(host, people, changed)
                  if p.name not in moved or image is not None]  # moved ones just restarted
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
    if stayed:
        raise Failed(f"the home of {', '.join(stayed)} is still on Docker volumes (the move "
                     "onto a disk failed, as said above); fix that and run unitgen upgrade "
                     "again")


def _move(root: Root, edge: Live, host: Host, person: Person, say: Say) -> Host:
    """Move one person's home and host key from their volumes onto a new disk, with the
    workspace stopped; every entry is compared before the switch, and the volumes are
    deleted only once the workspace answers on the disk (or, stopped, once the disk holds
    it all). On any failure the person keeps running on the volumes, which are unchanged.
    `host` has the person recorded on their volumes; returns it with them on their disk."""
    name = person.name
    old = host.workspace(host.need(name))
    after = plan.on_volumes(host, [person], marked=False)
    new = after.workspace(after.need(name))
    check(root, after)
    running = edge.active(names.unit(name))
    listening = old.on_demand and edge.active(old.entry)
    edge.clear_restores(name)
    edge.stop(*(u for u in old.units if u != names.timer(name)))
    # What a killed move left: the home is on the volumes, so no disk of theirs is in use.
    edge.remove_disks([names.disk_aside(name), new.disk_image])
    say(f"{name}: moving the home and host key from {', '.join(old.volumes)} onto a new "
        f"disk of {new.disk}, {new.disk_image}")
    try:
        _fill(edge, new, lambda aside: say(
            f"{name}: {edge.migrate(old.image, name, old.volumes, aside)}"))
    except Failed:
        _resume(edge, old, running, listening)
        raise
    install(root, edge, after)
    if running and restart_and_check(edge, after, [after.need(name)], disk=True):
        with suppress(Failed):
            edge.stop(names.unit(name), names.data_unit(name))
        install(root, edge, host)
        _resume(edge, old, running, listening)
        edge.remove_disks([new.disk_image])
        raise Failed(f"{name} did not answer on the disk, so the workspace went back to its "
                     f"volumes; see: journalctl -u {names.unit(name)}")
    if listening:
        edge.start(old.entry)
    edge.remove_volumes(list(old.volumes))
    say(f"{name}: moved onto the disk; the volumes were deleted")
    return after


def _resume(edge: Live, w: Workspace, running: bool, listening: bool) -> None:
    """Start again what ran before a step that stopped the workspace."""
    units = [*([names.unit(w.name)] if running else []), *([w.entry] if listening else [])]
    if units:
        with suppress(Failed):  # then it shows as failed, with its journal
            edge.start(*units)


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
        return _change(root, edge, load(root), name, edit)


def _change(root: Root, edge: Live, before: Host, name: str,
            edit: Callable[[Person], Person]) -> Person:
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


@dataclass(frozen=True)
class Applied:
    """What `set` did: whether the workspace answered after a restart (True when there was
    none), and how a new disk cap took effect ("" when none was given)."""

    answers: bool
    disk: str = ""


def set_limits(root: Root, edge: Live, name: str, limits: dict, restart: bool) -> Applied:
    """Change a person's limits or way of running; with `restart`, apply them now and tell
    whether the workspace answers. A larger disk grows online where the host allows it, else
    at the next start (at once with `restart`); a smaller one is refused unless the data
    fits, and is made with the workspace stopped, which is then started again."""
    size = limits.get("disk")
    with root.locked():
        host = load(root)
        w = host.workspace(host.need(name))
        step = "record" if size is None or not edge.live or w.on_volumes else \
            disk.resize(w.disk, size, edge.disk_usage(w))
        if step == "shrink":
            return _shrink(root, edge, host, name, limits)
        person = _change(root, edge, host, name, lambda p: replace(p, **limits))
    how = _grown(edge, w, size, step, restart)
    disk_too = size is not None and not w.on_volumes
    answers = not restart or not restart_and_check(edge, load(root), [person], disk=disk_too)
    if restart and disk_too and (now := edge.disk_fs_size(w)) and now < size_bytes(size):
        how = (f"disk: still {disk.shown(now)}, as another process's mount namespace "
               "held it open at the restart (see: journalctl -u "
               f"{names.data_unit(name)}); it grows to {size} at a later start")
    return Applied(answers, how)


def _grown(edge: Live, w: Workspace, size: str | None, step: str, restart: bool) -> str:
    """How a new cap takes effect, once recorded: online where it can."""
    if size is None:
        return ""
    if w.on_volumes:
        return (f"disk: {size} once unitgen upgrade moves the home from its volumes onto a "
                "disk")
    if restart:  # the disk is unmounted and mounted again, grown if it was smaller
        return f"disk: {size} from the restart"
    if step == "same":
        return f"disk: {size} already"
    if not edge.live or not edge.active(names.data_unit(w.name)):
        return f"disk: {size} from the workspace's next start"
    try:
        edge.try_reload(names.data_unit(w.name))
    except Failed:
        return (f"disk: grows to {size} at the workspace's next start, as growing it online "
                f"failed (see: journalctl -u {names.data_unit(w.name)}); to grow it now: "
                f"unitgen set {w.name} --disk {size} --restart")
    return f"disk: grown to {size} online"


def _shrink(root: Root, edge: Live, host: Host, name: str, limits: dict) -> Applied:
    """Shrink the person's disk with the workspace stopped, then record the limits and
    start again what ran; a disk that cannot shrink is left as it was."""
    w = host.workspace(host.need(name))
    running = edge.active(names.unit(name))
    listening = w.on_demand and edge.active(w.entry)
    edge.stop(*(u for u in w.units if u != names.timer(name)))
    try:
        edge.shrink_disk(w.disk_image, w.disk_mount, limits["disk"])
    except Failed:
        _resume(edge, w, running, listening)
        raise
    person = _change(root, edge, host, name, lambda p: replace(p, **limits))
    after = load(root)
    answers = not running or not restart_and_check(edge, after, [person])
    _resume(edge, after.workspace(person), False, listening)
    stopped = ": the workspace was stopped for it and started again" if running else ""
    return Applied(answers, f"disk: shrunk to {limits['disk']} offline{stopped}")


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
