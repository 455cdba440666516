"""The registry as TOML text: the global config and one file per person. Pure."""

import tomllib
from dataclasses import asdict, fields

import tomli_w

from unitgen import validate
from unitgen.errors import BadInput
from unitgen.model import Host, Person, Settings


def _table(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as problem:
        raise BadInput(f"{where}: not valid TOML ({problem}); fix the file") from None


def load_settings(text: str | None, where: str) -> Settings:
    return validate.settings(_table(text, where), where) if text else Settings()


def dump_settings(settings: Settings) -> str:
    return tomli_w.dumps(asdict(settings))


def load_person(name: str, text: str, where: str) -> Person:
    return validate.person(name, _table(text, where), where)


def dump_person(person: Person) -> str:
    """The person's record: only what differs from the defaults."""
    table = {f.name: value for f in fields(Person)
             if (value := getattr(person, f.name)) != f.default and f.name != "name"}
    table["keys"] = [key.line for key in person.keys]
    return tomli_w.dumps(table)


def load_firewall(text: str | None, where: str) -> bool:
    """Whether unitgen runs the host's firewall: its record exists and says so."""
    if text is None:
        return False
    return firewall_table(_table(text, where), where)


def firewall_table(table: dict, where: str) -> bool:
    if set(table) != {"enabled"} or not isinstance(table["enabled"], bool):
        raise BadInput(f"{where}: give exactly: enabled = true (or false)")
    return table["enabled"]


def dump_firewall(enabled: bool) -> str:
    return tomli_w.dumps({"enabled": enabled})


def load_people_file(text: str, where: str) -> Host:
    """A host described in one file: [defaults] settings and one [people.NAME] table each.

    People without a port get the lowest free one, in name order, so the same file always
    gives the same ports.
    """
    table = _table(text, where)
    unknown = sorted(set(table) - {"defaults", "people", "firewall"})
    if unknown:
        raise BadInput(f"{where}: unknown table '{unknown[0]}'; use [defaults], [firewall] "
                       "and [people.NAME]")
    host = Host(validate.settings(table.get("defaults", {}), f"{where}: [defaults]"),
                firewall=firewall_table(table.get("firewall", {"enabled": False}),
                                        f"{where}: [firewall]"))
    people = table.get("people", {})
    placed = {n for n, t in people.items() if isinstance(t, dict) and "port" in t}
    for name in sorted(placed) + sorted(set(people) - placed):
        at = f"{where}: [people.{name}]"
        if not isinstance(people[name], dict):
            raise BadInput(f"{at}: must be a table with keys = [...]; see the README")
        entry = dict(people[name])
        if "port" not in entry:
            entry["port"] = next(host.free_ports(), None)
            if entry["port"] is None:
                raise BadInput(f"{at}: no free port left in the range; widen port_min/port_max")
        person = validate.person(name, entry, at)
        validate.port(person.port, host, at)
        host = host.with_person(person)
    return host
