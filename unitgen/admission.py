"""Admission: the one way a person joins a host, for `add`, `add --from`, `restore --key` and
the fleet. Pure: the host and the wanted people in, the host with them out."""

from dataclasses import dataclass, replace

from unitgen import access, validate
from unitgen.errors import BadInput
from unitgen.model import Host, Person


@dataclass(frozen=True)
class Wanted:
    """A person asked for, port 0 meaning the lowest free one; `where` names the source in
    messages ("" for the command line, FILE:LINE: [people.NAME] for a people file)."""

    person: Person
    where: str = ""


def same(registered: Person, given: Person) -> bool:
    """Whether `given` asks for the person as registered (restores move the generation)."""
    return replace(given, generation=registered.generation) == registered


def _order(wanted: list[Wanted]) -> list[Wanted]:
    """Those with a port first, then the rest, each in name order: the same input gives the
    same ports whatever its order."""
    return sorted(wanted, key=lambda w: (w.person.port == 0, w.person.name))


def admit(host: Host, wanted: list[Wanted], busy: frozenset[int] = frozenset()) -> Host:
    """The host with every wanted person registered. A person given again exactly as
    registered changes nothing, so a killed add can be run again. `busy` are the ports
    something else on the live host holds."""
    for w in _order(wanted):
        host = _admit_one(host, w, busy)
    return host


def _admit_one(host: Host, w: Wanted, busy: frozenset[int]) -> Host:
    person, at = w.person, f"{w.where}: " if w.where else ""
    existing = host.person(person.name)
    if existing is not None:
        if not same(existing, replace(person, port=person.port or existing.port)):
            raise BadInput(f"{at}{person.name} exists already (port {existing.port}), with other "
                           f"values; choose another name or run: unitgen remove {person.name}")
        return host
    on_demand = host.workspace(replace(person, port=1)).on_demand
    if not person.port:
        inner = host.settings.inner_offset if on_demand else 0
        port = next((n for n in host.free_ports(on_demand)
                     if n not in busy and n + inner not in busy), None)
        if port is None:
            s = host.settings
            raise BadInput(f"{at}no free port left in {s.port_min}-{s.port_max}; "
                           "widen port_min/port_max in the config")
        person = replace(person, port=port)
    else:
        validate.port(person.port, host, w.where or "--port")
        if person.port in busy:
            raise BadInput(f"{w.where or '--port'}: port {person.port} is in use on this host; "
                           "pick another or leave it out")
    problems = validate.conflicts(host.with_person(person))
    if problems:
        raise BadInput(f"{at}{problems[0]}")
    access.check_key_policy(person.keys, host.workspace(person).key_policy, w.where)
    return host.with_person(person)
