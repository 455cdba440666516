"""The pure half of each operation: what to stop, write, start and roll back, decided from
data. unitgen.ops carries the plans out against a host."""

from dataclasses import dataclass, replace
from functools import reduce

from unitgen import names, registry, restic, validate
from unitgen.errors import BadInput
from unitgen.keys import PublicKey
from unitgen.model import Host, Person, Workspace


def select(host: Host, wanted: list[str], everyone: bool) -> list[Person]:
    """The people a command names, or everyone with --all."""
    if everyone and wanted:
        raise BadInput("names and --all were both given; give one or the other")
    if everyone:
        return list(host.people)
    if not wanted:
        raise BadInput("no workspace was named; give one or more names, or --all")
    return [host.need(n) for n in dict.fromkeys(wanted)]


def chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def switch(before: Workspace, after: Workspace) -> tuple[list[str], list[str]]:
    """The units to stop and to start when a workspace's way of running changes."""
    if before.entry == after.entry:
        return [], []
    stop = [names.proxy_socket(before.name), names.proxy(before.name)] if before.on_demand \
        else [names.hold_socket(before.name), before.entry]
    return stop, [after.entry]


def next_generation(name: str, volumes: list[str], images: list[str] = ()) -> int:
    """The lowest generation above every existing volume and disk image of the person's."""
    used = [g for v in volumes if (g := names.generation_of(name, v)) is not None]
    used += [g for i in images if (g := names.disk_generation_of(name, i)) is not None]
    return max(used, default=-1) + 1


@dataclass(frozen=True)
class Restore:
    """A restore of one person: the stale volumes and disks a killed restore left, and the
    host with the person moved onto a new disk of the next generation."""

    stale_volumes: list[str]
    stale_disks: list[str]
    after: Host
    person: Person

    @property
    def disk(self) -> Workspace:
        """The person's workspace on the new disk."""
        return self.after.workspace(self.person)


def restore(host: Host, person: Person, volumes: list[str], images: list[str]) -> Restore:
    """`volumes` and `images`: every volume of the person in the engine and every disk image
    of theirs. A registered person's other than their current ones hold no current data."""
    was = host.person(person.name)
    current = set()
    if was:
        w = host.workspace(was)
        current = {*w.volumes, w.disk_image}
    after = max(next_generation(person.name, volumes, images),
                was.generation + 1 if was else 0)  # never the current one, made or not
    moved = replace(person, generation=after, on_volumes=False)
    return Restore([v for v in volumes if was and v not in current],
                   [i for i in images if was and i not in current],
                   host.with_person(moved), moved)


def to_move(host: Host, people: list[Person], volumes: set[str],
            images: set[str]) -> list[Person]:
    """Those of `people` whose home is still on the Docker volumes of before disks: marked
    so, or registered by a unitgen before disks (no disk image of their generation, and their
    home volume exists). `volumes`: every volume of the engine's; `images`: every disk image."""
    found = []
    for p in people:
        w = host.workspace(p)
        if p.on_volumes or (w.disk_image not in images and w.volumes[0] in volumes):
            found.append(p)
    return found


def on_volumes(host: Host, people: list[Person], marked: bool = True) -> Host:
    """The host with these people's homes recorded as on their volumes (or on a disk)."""
    return reduce(lambda h, p: h.with_person(replace(h.need(p.name), on_volumes=marked)),
                  people, host)


def recreate(host: Host, people: list[Person], changed: list[str]) -> list[Person]:
    """Whose containers an upgrade recreates: the people named, those whose env file changed,
    and everyone when the workspace template changed."""
    if names.TEMPLATE in changed:
        return list(host.people)
    touched = {names.env_file.of(p) for p in changed} | {p.name for p in people}
    return [p for p in host.people if p.name in touched]


def with_image(host: Host, people: list[Person], image: str | None) -> Host:
    if image is None:
        return host
    return reduce(lambda h, p: h.with_person(replace(p, image=image)), people, host)


@dataclass(frozen=True)
class Batch:
    number: int
    people: list[Person]
    after: Host     # the host with this batch on its new image
    rollback: Host  # the host with this batch back on the image it ran


def upgrade(host: Host, running: list[Person], image: str | None,
            ran: dict[str, str]) -> list[Batch]:
    """The batches of an upgrade of the running people. `ran` maps a person to the image id
    they ran, for those whose image reference no longer names it: their rollback pins it."""
    batches = []
    for number, people in enumerate(chunks(running, host.settings.upgrade_batch), 1):
        after = with_image(host, people, image)
        rollback = reduce(lambda h, p: h.with_person(
            replace(p, image=ran[p.name]) if p.name in ran else p), people, host)
        batches.append(Batch(number, people, after, rollback))
        host = after
    return batches


def add_keys(person: Person, new: tuple[PublicKey, ...]) -> Person:
    held = next((k for k in new if k.data in {old.data for old in person.keys}), None)
    if held is not None:
        raise BadInput(f"{person.name} has key {held.fingerprint} already; give a new key")
    return replace(person, keys=(*person.keys, *new))


def remove_key(person: Person, fingerprint: str) -> Person:
    kept = tuple(k for k in person.keys if k.fingerprint != fingerprint)
    if len(kept) == len(person.keys):
        raise BadInput(f"{person.name} has no key {fingerprint}; see: unitgen key list "
                       f"{person.name}")
    if not kept:
        raise BadInput(f"{fingerprint} is {person.name}'s last key; add another first")
    return replace(person, keys=kept)


def holds_host_key(name: str, snapshot: restic.Snapshot, has_key: bool) -> None:
    if not has_key:
        raise BadInput(f"snapshot {snapshot.short_id} of {name} holds no hostkeys/"
                       f"{restic.HOST_KEY}, so it is no workspace backup; pick another (see: "
                       f"unitgen snapshots {name})")


def from_record(name: str, text: str, where: str) -> Person:
    """The person as their snapshot recorded them (port, keys, limits), on no volumes yet."""
    return replace(registry.load_person(name, text, where), generation=0)


def recovery(host: Host, chosen: dict[str, restic.Snapshot], inspected: dict) -> Host:
    """The host with each chosen person as their snapshot recorded them; someone already
    here keeps their volumes until the restore moves them. A snapshot without a host key,
    or without a record of someone this host does not know, is refused."""
    target = host
    for name, snapshot in sorted(chosen.items()):
        seen, was = inspected[name], host.person(name)
        holds_host_key(name, snapshot, seen.host_key)
        where = f"snapshot {snapshot.short_id} of {name}"
        if seen.record is None:
            if was is None:
                raise BadInput(f"{where} holds no record of them; restore them alone with: "
                               f"unitgen restore {name} --key KEYFILE")
            continue
        recorded = from_record(name, seen.record, where)
        target = target.with_person(replace(recorded, generation=was.generation if was else 0))
    problems = validate.conflicts(target)
    if problems:
        raise BadInput(f"as the snapshots record them, {problems[0]}")
    return target


def moved(host: Host, target: Host) -> list[str]:
    """Registered people whose port or way of running the recovery changes: they stop
    before the new records are installed, so that no two workspaces want one port."""
    return [p.name for p in host.people if (t := target.person(p.name)) is not None
            and (t.port, target.workspace(t).on_demand) != (p.port, host.workspace(p).on_demand)]


def free_ports(host: Host, target: Host, busy: frozenset[int]) -> None:
    """Refuse a recovery whose recorded ports something else on the host holds."""
    ours = {port for port, _ in host.held_ports()}
    for port, name in target.held_ports():
        if port in busy and port not in ours:
            raise BadInput(f"port {port} of {name}, as their snapshot records it, is in use on "
                           "this host; stop what holds it, then run the restore again")
