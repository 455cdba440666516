"""The registry as TOML text: the global config and one file per person. Pure."""

import re
import tomllib
from dataclasses import asdict, dataclass, fields

import tomli_w

from unitgen import validate
from unitgen.admission import Wanted
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
    if not isinstance(table, dict) or set(table) != {"enabled"} or \
            not isinstance(table["enabled"], bool):
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


@dataclass(frozen=True)
class PeopleFile:
    """A people file: the host it describes (settings and firewall, no people yet), its
    admin, the people it wants, and which host tables it holds."""

    host: Host
    admin: Admin
    wanted: list[Wanted]
    host_tables: tuple[str, ...]


HOST_TABLES = ("defaults", "firewall", "admin")


def read_people_file(text: str, where: str) -> PeopleFile:
    """[defaults] settings, [firewall], [admin] and one [people.NAME] table each."""
    table = _table(text, where)
    unknown = sorted(set(table) - {*HOST_TABLES, "people"})
    if unknown:
        raise BadInput(f"{where}: unknown table '{unknown[0]}'; use [defaults], [firewall], "
                       "[admin] and [people.NAME]")
    at = {key: f"{where}{_line(text, key)}: [{key}]" for key in HOST_TABLES}
    host = Host(validate.settings(table.get("defaults", {}), at["defaults"]),
                firewall=firewall_table(table.get("firewall", {"enabled": False}),
                                        at["firewall"]))
    people = table.get("people", {})
    if not isinstance(people, dict):
        raise BadInput(f"{where}: people is not a table; give one [people.NAME] table each")
    wanted = [_wanted(name, entry, f"{where}{_line(text, 'people', name)}: [people.{name}]")
              for name, entry in people.items()]
    return PeopleFile(host, admin_table(table.get("admin", {}), at["admin"]), wanted,
                      tuple(key for key in HOST_TABLES if key in table))


def _wanted(name: str, entry: object, at: str) -> Wanted:
    if not isinstance(entry, dict):
        raise BadInput(f"{at}: must be a table with keys = [...]; see the README")
    return Wanted(validate.person(name, entry, at, port_required=False), at)


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
