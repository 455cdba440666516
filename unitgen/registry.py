"""The registry as TOML text: the global config and one file per person. Pure."""

import re
import tomllib
from dataclasses import asdict, fields, replace

import tomli_w

from unitgen import validate
from unitgen.errors import BadInput
from unitgen.model import Admin, Host, Person, Settings


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
        raise BadInput(f"{where}: holds more or less than enabled; give exactly: enabled = true "
                       "(or false)")
    return table["enabled"]


def dump_firewall(enabled: bool) -> str:
    return tomli_w.dumps({"enabled": enabled})


def _line(text: str, *keys: str) -> str:
    """':N' for the line where the table (or key) keys[0].keys[1]... opens in a TOML file."""
    dotted = r"\s*\.\s*".join(rf'"?{re.escape(k)}"?' for k in keys)
    pattern = re.compile(rf"\[\s*{dotted}\s*\]|{re.escape(keys[-1])}\s*=")
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.match(line.strip()):
            return f":{number}"
    return ""


def read_people_file(text: str,
                     where: str) -> tuple[Host, Admin, dict[str, tuple[str, object]]]:
    """A people file: [defaults] settings, [firewall], [admin] and one [people.NAME] table
    each. Returns the host without people, its admin, and each person's table with where
    it stands."""
    table = _table(text, where)
    unknown = sorted(set(table) - {"defaults", "people", "firewall", "admin"})
    if unknown:
        raise BadInput(f"{where}: unknown table '{unknown[0]}'; use [defaults], [firewall], "
                       "[admin] and [people.NAME]")
    at = {key: f"{where}{_line(text, key)}: [{key}]"
          for key in ("defaults", "firewall", "admin")}
    host = Host(validate.settings(table.get("defaults", {}), at["defaults"]),
                firewall=firewall_table(table.get("firewall", {"enabled": False}),
                                        at["firewall"]))
    people = table.get("people", {})
    if not isinstance(people, dict):
        raise BadInput(f"{where}: people is not a table; give one [people.NAME] table each")
    return host, admin_table(table.get("admin", {}), at["admin"]), {
        name: (f"{where}{_line(text, 'people', name)}: [people.{name}]", table)
        for name, table in people.items()}


def admin_table(table: dict, where: str) -> Admin:
    """[admin]: `user` (default core) and `keys`, the login of whoever runs the host."""
    if not isinstance(table, dict) or set(table) - {"user", "keys"}:
        raise BadInput(f"{where}: holds other keys; give user = \"core\" and keys = [...], "
                       "nothing else")
    user = table.get("user", "core")
    if not isinstance(user, str) or not validate.NAME.fullmatch(user):
        raise BadInput(f"{where}: user {user!r} is not a login name; give one such as core")
    keys = validate.key_lines(table["keys"], where) if "keys" in table else ()
    return Admin(user, keys)


def place(host: Host, people: dict[str, tuple[str, object]],
          busy: frozenset[int] = frozenset()) -> Host:
    """Add people from their tables. Those without a port get the lowest free one in name
    order, after those with a port are placed, so the same input gives the same ports."""
    placed = {n for n, (_, t) in people.items() if isinstance(t, dict) and "port" in t}
    for name in sorted(placed) + sorted(set(people) - placed):
        at, table = people[name]
        if not isinstance(table, dict):
            raise BadInput(f"{at}: must be a table with keys = [...]; see the README")
        if (existing := host.person(name)) is not None:
            if not same(existing, validate.person(name, {"port": existing.port, **table}, at)):
                raise BadInput(f"{at}: {name} exists already, with other values; leave them "
                               "out or remove them first")
            continue  # given again as registered: adding them again changes nothing
        entry = dict(table)
        if "port" not in entry:
            entry["port"] = next((n for n in host.free_ports() if n not in busy), None)
            if entry["port"] is None:
                raise BadInput(f"{at}: no free port left in the range; widen port_min/port_max")
        person = validate.person(name, entry, at)
        validate.port(person.port, host, at)
        if person.port in busy:
            raise BadInput(f"{at}: port {person.port} is in use on this host; pick another "
                           "or leave it out")
        host = host.with_person(person)
    return host


def same(registered: Person, given: Person) -> bool:
    """Whether `given` asks for the person as registered (restores move the generation)."""
    return replace(given, generation=registered.generation) == registered


def load_people_file(text: str, where: str) -> Host:
    """The host a people file describes, people and all."""
    host, _, people = read_people_file(text, where)
    return place(host, people)
