"""Where each person of a fleet lives: the checks of the people file's [hosts] tables, the
placement of people onto hosts, the moves against the lock, and the lock file. Pure.

Weighted rendezvous hashing: each (host, person) pair scores -w / ln(u), u in (0, 1) from
blake2b of the two names, w the host's weight (its capacity in people of the fleet's default
memory). A person's best host is the one that scores highest, so adding a host takes exactly
the people whose best it becomes (on average its share, w over the sum of the weights) and
removing one moves only its people; no other pair changes score. The scores are computed in decimal,
whose ln is correctly rounded, so every machine gets the same digits and the same placement.

When capacity binds, pairs are taken in one global order: pins, then each locked person with
their locked host, then every pair; within each tier the highest score first, then by names.
A pair is taken when the person has no host yet and the host has room, so a person spills
down their own ranks. The order depends on nothing but names and weights, so input order
cannot matter; taking locked pairs first keeps everyone whose host still exists and has room
in place, so only new people, the people of removed or shrunk hosts, and changed pins or
labels move. With people capacities the untiered order gives the one stable assignment (no
person and host both prefer each other to what they got): a new host takes those who prefer
it, and only the places they free let anyone else move. A rebalance drops the lock tier,
which gives the placement from scratch.

A person's `labels` restrict them to hosts that carry every one (a GPU host, a region). That
is all the labels do: a filter on the candidates, which keeps every rendezvous property on
the hosts that remain.
"""

import hashlib
import ipaddress
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal

from unitgen import validate
from unitgen.errors import BadInput
from unitgen.model import size_bytes, size_text

DECIMAL = Context(prec=28)
SPAN = Decimal(2**65)
DEFAULT_UNIT = 512 << 20
HOST_KEYS = ("address", "people", "memory", "labels")
HOST_MEMORY = (1 << 30, 1 << 50)
MAX_PEOPLE = 100_000
FLEET_KEYS = frozenset({"host", "labels"})  # a person's keys that only placement reads
DNS = re.compile(r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}"
                 r"[a-z0-9])?)*", re.IGNORECASE | re.ASCII)
LOCK_VERSION = 1
LOCK_HEADER = """\
# unitgen fleet lock: the host and port of each person, as `unitgen fleet apply` last left them.
# Generated; do not edit. Keep it next to the people file, under version control.
# Nobody moves unless `unitgen fleet plan` lists the move and `unitgen fleet apply` makes it.
"""


@dataclass(frozen=True)
class FleetHost:
    """A host of the fleet. It takes at most `people` people, and the memory caps of its
    people add up to at most `memory` bytes; None is no limit (at least one is given)."""

    name: str
    address: str
    people: int | None = None
    memory: int | None = None
    labels: tuple[str, ...] = ()

    def weight(self, unit: int) -> Decimal:
        """The capacity in people of `unit` bytes each; the lower of the two if both."""
        counts = [Decimal(self.people)] if self.people is not None else []
        if self.memory is not None:
            counts.append(DECIMAL.divide(Decimal(self.memory), Decimal(unit)))
        return min(counts)


@dataclass(frozen=True)
class FleetPerson:
    """A person as placement sees them: their memory cap in bytes, their pin, and the
    labels their host must carry."""

    name: str
    memory: int
    host: str | None = None
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Move:
    """A change against the lock: source None is a person new in the file, target None one
    who left it."""

    person: str
    source: str | None
    target: str | None
    reason: str

    @property
    def kind(self) -> str:
        return "add" if self.source is None else "remove" if self.target is None else "move"


@dataclass(frozen=True)
class Placement:
    assignment: tuple[tuple[str, str], ...]  # (person, host), by person
    moves: tuple[Move, ...]  # against the lock, by person

    def host_of(self) -> dict[str, str]:
        return dict(self.assignment)

    def people_on(self, host: str) -> tuple[str, ...]:
        return tuple(person for person, at in self.assignment if at == host)


# ---- the people file --------------------------------------------------------------------

def host_name(value: str, where: str) -> str:
    if not isinstance(value, str) or not validate.NAME.fullmatch(value):
        raise BadInput(f"{where}: host name {str(value)[:40]!r} is not allowed; use lowercase "
                       "letters, digits, '-' and '_', starting with a letter (e.g. h1)")
    return value


def hosts(table: object, where: str) -> tuple[FleetHost, ...]:
    """The people file's `hosts` table: one [hosts.NAME] table each, by name."""
    if not isinstance(table, dict) or not table:
        raise BadInput(f"{where}: hosts names no host; give one [hosts.NAME] table each")
    found = tuple(host(name, table[name], f"{where}: [hosts.{name}]") for name in sorted(table))
    seen: dict[str, str] = {}
    for each in found:
        if each.address in seen:
            raise BadInput(f"{where}: [hosts.{each.name}]: address {each.address} is also "
                           f"{seen[each.address]}'s; give each host its own")
        seen[each.address] = each.name
    return found


def host(name: str, table: object, where: str) -> FleetHost:
    """One [hosts.NAME] table: address, people and/or memory, labels."""
    host_name(name, where)
    if not isinstance(table, dict):
        raise BadInput(f"{where} is not a table; give address = \"10.0.0.11\" and people = N "
                       "in it")
    unknown = sorted(set(table) - set(HOST_KEYS))
    if "capacity" in unknown:
        raise BadInput(f"{where}: capacity is not a key; give people = N and/or memory = "
                       "\"64G\" directly in the table")
    if unknown:
        raise BadInput(f"{where}: unknown key '{unknown[0]}'; the keys are address, people, "
                       "memory and labels")
    if "address" not in table:
        raise BadInput(f"{where}: address is missing; give address = \"10.0.0.11\" or a DNS "
                       "name")
    if "people" not in table and "memory" not in table:
        raise BadInput(f"{where}: no capacity; give people = N, memory = \"64G\", or both")
    people = table.get("people")
    if people is not None and (not isinstance(people, int) or isinstance(people, bool)
                               or not 1 <= people <= MAX_PEOPLE):
        raise BadInput(f"{where}: people = {people!r} is not allowed; give a whole number from "
                       f"1 to {MAX_PEOPLE}")
    memory = table.get("memory")
    if memory is not None:
        memory = size_bytes(validate.memory(_text(memory, f"{where}: memory"),
                                            f"{where}: memory", *HOST_MEMORY))
    return FleetHost(name, address(table["address"], f"{where}: address"), people, memory,
                     labels(table.get("labels", []), where))


def address(value: object, where: str) -> str:
    """An IP address or a DNS name, in canonical form."""
    text = _text(value, where)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if not DNS.fullmatch(text) or text.rpartition(".")[2].isdigit():
        raise BadInput(f"{where}: {text!r} is not an IP address or a DNS name; give one such "
                       "as 10.0.0.11 or h1.example.com")
    return text.lower()


def labels(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise BadInput(f"{where}: labels = {value!r} is not a list; give it in [brackets]")
    for number, label in enumerate(value):
        if not isinstance(label, str) or not validate.NAME.fullmatch(label):
            raise BadInput(f"{where}: labels[{number}] = {str(label)[:40]!r} is not a label; "
                           "use lowercase letters, digits, '-' and '_', starting with a letter "
                           "(e.g. gpu)")
    return tuple(sorted(set(value)))


def person(name: str, table: dict, where: str, fleet: Sequence[FleetHost],
           memory: str) -> FleetPerson:
    """A [people.NAME] table as placement sees it: its pin `host`, its `labels`, and its
    memory cap (`memory`, the fleet's default if not given). The caller hands the table
    without FLEET_KEYS to validate.person."""
    validate.name(name, where)
    pin = table.get("host")
    if pin is not None:
        host_name(_text(pin, f"{where}: host"), f"{where}: host")
        if pin not in {h.name for h in fleet}:
            raise BadInput(f"{where}: host '{pin}' is not in [hosts]; give one of "
                           f"{', '.join(h.name for h in fleet)}")
    cap = validate.memory(_text(table.get("memory", memory), f"{where}: memory"),
                          f"{where}: memory")
    return FleetPerson(name, size_bytes(cap), pin, labels(table.get("labels", []), where))


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise BadInput(f"{where} = {value!r} is not a string; give it in quotes")
    return value


# ---- placement --------------------------------------------------------------------------

def score(host: str, person: str, weight: Decimal) -> Decimal:
    """The pair's rendezvous score -weight / ln(u), u in (0, 1) from the names alone."""
    digest = hashlib.blake2b(f"{host}\0{person}".encode(), digest_size=8).digest()
    u = DECIMAL.divide(Decimal(2 * int.from_bytes(digest, "big") + 1), SPAN)
    return DECIMAL.divide(-weight, DECIMAL.ln(u))


def ranks(fleet: Iterable[FleetHost], person: str, unit: int = DEFAULT_UNIT) -> list[str]:
    """The person's hosts, best first: where they spill when a host is full."""
    scored = [(-score(h.name, person, h.weight(unit)), h.name) for h in fleet]
    return [name for _, name in sorted(scored)]


class _Room:
    """What a host can still take while placement runs; None is no limit."""

    def __init__(self, host: FleetHost):
        self.people, self.memory = host.people, host.memory

    def fits(self, person: FleetPerson) -> bool:
        return ((self.people is None or self.people >= 1)
                and (self.memory is None or self.memory >= person.memory))

    def take(self, person: FleetPerson) -> None:
        if self.people is not None:
            self.people -= 1
        if self.memory is not None:
            self.memory -= person.memory


def place(fleet: Iterable[FleetHost], people: Iterable[FleetPerson],
          lock: Mapping[str, str] | None = None, *, rebalance: bool = False,
          unit: int = DEFAULT_UNIT, where: str = "people file") -> Placement:
    """Each person's host, and the moves against the lock. With a lock, everyone stays on
    their locked host while it exists, carries their labels and has room (pins win);
    `rebalance` places as if there were no lock, which moves people to the hosts added since.
    `unit` is the fleet's default memory cap, in bytes: it converts memory into people for
    the weights."""
    by_host = _unique(fleet, "host", where)
    by_person = _unique(people, "person", where)
    if not by_host:
        raise BadInput(f"{where}: no hosts; give one [hosts.NAME] table each")
    for name, h in sorted(by_host.items()):
        if h.people is None and h.memory is None:
            raise BadInput(f"{where}: [hosts.{name}]: no capacity; give people = N, memory = "
                           "\"64G\", or both")
    _check_people(by_host, by_person, where)
    rooms = {name: _Room(h) for name, h in by_host.items()}
    taken = _pin(by_host, by_person, rooms, where)
    kept = {} if rebalance else dict(lock or {})
    for *_, name, at in sorted(_pairs(by_host, by_person, kept, unit)):
        if name not in taken and rooms[at].fits(by_person[name]):
            rooms[at].take(by_person[name])
            taken[name] = at
    missing = sorted(set(by_person) - set(taken))
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if missing[3:] else "")
        raise BadInput(f"{where}: {len(missing)} of {len(by_person)} people do not fit on the "
                       f"hosts ({shown}); add a host or raise a capacity")
    before = dict(lock or {})
    moves = tuple(Move(name, before.get(name), taken.get(name),
                       _reason(name, before, by_host, by_person, rebalance))
                  for name in sorted(set(before) | set(taken))
                  if before.get(name) != taken.get(name))
    return Placement(tuple(sorted(taken.items())), moves)


def _unique(items: Iterable, kind: str, where: str) -> dict:
    found = {}
    for item in items:
        if item.name in found:
            raise BadInput(f"{where}: {kind} {item.name} is given twice; give each once")
        found[item.name] = item
    return found


def _fits_labels(host: FleetHost, person: FleetPerson) -> bool:
    return set(person.labels) <= set(host.labels)


def _check_people(by_host: dict[str, FleetHost], by_person: dict[str, FleetPerson],
                  where: str) -> None:
    for name, each in sorted(by_person.items()):
        if each.host is not None and each.host not in by_host:
            raise BadInput(f"{where}: {name} is pinned to {each.host}, which is not in [hosts]; "
                           f"give one of {', '.join(sorted(by_host))}")
        if each.host is not None and not _fits_labels(by_host[each.host], each):
            lacking = sorted(set(each.labels) - set(by_host[each.host].labels))
            raise BadInput(f"{where}: {name} is pinned to {each.host}, which lacks the label "
                           f"{lacking[0]}; drop the pin or the label")
        if not any(_fits_labels(h, each) for h in by_host.values()):
            raise BadInput(f"{where}: no host carries every label {name} needs "
                           f"({', '.join(each.labels)}); label a host or change the labels")


def _pin(by_host: dict[str, FleetHost], by_person: dict[str, FleetPerson],
         rooms: dict[str, _Room], where: str) -> dict[str, str]:
    """Pinned people onto their hosts; pins that overfill a host are an error."""
    taken = {}
    for name, each in sorted(by_person.items()):
        if each.host is None:
            continue
        if not rooms[each.host].fits(each):
            _overpinned(by_host[each.host], by_person, where)
        rooms[each.host].take(each)
        taken[name] = each.host
    return taken


def _overpinned(host: FleetHost, by_person: dict[str, FleetPerson], where: str) -> None:
    pinned = [p for p in by_person.values() if p.host == host.name]
    if host.people is not None and len(pinned) > host.people:
        raise BadInput(f"{where}: {len(pinned)} people are pinned to {host.name}, which has "
                       f"room for {host.people}; pin fewer there or raise its people")
    need = size_text(sum(p.memory for p in pinned))
    raise BadInput(f"{where}: the people pinned to {host.name} need {need} of memory, more than "
                   f"its {size_text(host.memory or 0)}; pin fewer there or raise its "
                   "memory")


def _pairs(by_host: dict[str, FleetHost], by_person: dict[str, FleetPerson],
           lock: dict[str, str], unit: int) -> Iterable[tuple]:
    """(tier, -score, person, host) of every pair an unpinned person may take: tier 0 is
    the person's locked host, tier 1 every host that carries their labels."""
    weights = {name: h.weight(unit) for name, h in by_host.items()}
    for name, each in by_person.items():
        if each.host is not None:
            continue
        for at, h in by_host.items():
            if _fits_labels(h, each):
                strength = -score(at, name, weights[at])
                if lock.get(name) == at:
                    yield 0, strength, name, at
                yield 1, strength, name, at


def _reason(name: str, lock: dict[str, str], by_host: dict[str, FleetHost],
            by_person: dict[str, FleetPerson], rebalance: bool) -> str:
    before, each = lock.get(name), by_person.get(name)
    if before is None:
        return "new"
    if each is None:
        return "not in the people file"
    if each.host is not None:
        return f"pinned to {each.host}"
    if before not in by_host:
        return f"{before} is gone"
    if not _fits_labels(by_host[before], each):
        return f"{before} lacks a label"
    return "rebalance" if rebalance else f"{before} is full"


# ---- the lock file ----------------------------------------------------------------------

@dataclass(frozen=True)
class Locked:
    """Where a person is: their host, and their port, which is theirs across the fleet so
    that their ssh line never changes."""

    host: str
    port: int


def dump_lock(entries: Mapping[str, Locked]) -> str:
    """The lock file's text, byte-identical for the same entries: one line per person, so a
    move is a one-line diff. Names and hosts are checked names, so they need no quoting."""
    lines = [f'{name} = {{ host = "{at.host}", port = {at.port} }}'
             for name, at in sorted(entries.items())]
    return LOCK_HEADER + f"\nversion = {LOCK_VERSION}\n\n[people]\n" + "".join(
        f"{line}\n" for line in lines)


def load_lock(text: str, where: str) -> dict[str, Locked]:
    """person -> (host, port) from a lock file's text."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as problem:
        raise BadInput(f"{where}: not valid TOML ({problem}); fix the file or take it back "
                       "from version control") from None
    unknown = sorted(set(table) - {"version", "people"})
    if unknown:
        raise BadInput(f"{where}: unknown key '{unknown[0]}'; a lock holds version and [people] "
                       "only")
    if table.get("version") != LOCK_VERSION:
        raise BadInput(f"{where}: version = {table.get('version')!r} is not {LOCK_VERSION}; "
                       "use the unitgen that wrote this lock")
    people = table.get("people")
    if not isinstance(people, dict):
        raise BadInput(f"{where}: people is not a table; give [people] with one "
                       "NAME = { host = \"HOST\", port = N } line each")
    found, holders = {}, {}
    for name, entry in people.items():
        validate.name(name, f"{where}: [people]")
        found[name] = _locked(entry, f"{where}: people.{name}")
        port = found[name].port
        if port in holders:
            raise BadInput(f"{where}: port {port} is both {holders[port]}'s and {name}'s; take "
                           "the lock back from version control")
        holders[port] = name
    return dict(sorted(found.items()))


def _locked(entry: object, where: str) -> Locked:
    if not isinstance(entry, dict) or set(entry) != {"host", "port"}:
        raise BadInput(f"{where} = {entry!r} is not {{ host = \"HOST\", port = N }}; take the "
                       "lock back from version control")
    port = entry["port"]
    if not isinstance(port, int) or isinstance(port, bool) or not 1025 <= port <= 65535:
        raise BadInput(f"{where}: port = {port!r} is not a port from 1025 to 65535; take the "
                       "lock back from version control")
    return Locked(host_name(_text(entry["host"], f"{where}: host"), f"{where}: host"), port)
