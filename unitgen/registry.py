"""The registry as TOML text: the global config and one file per person. Pure."""

import ipaddress
import re
import tomllib
from dataclasses import asdict, dataclass, fields, replace

import tomli_w

from unitgen import placement, validate
from unitgen.admission import Wanted
from unitgen.errors import BadInput
from unitgen.model import Admin, Host, Person, Settings
from unitgen.placement import FleetHost, FleetPerson


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
class Gateway:
    """A fleet's front door: the address people's ssh config names (an IP address or a DNS
    name), and the addresses or networks the workspace hosts let in to the workspaces."""

    address: str
    allow_from: tuple[str, ...]


@dataclass(frozen=True)
class FleetTables:
    """What a people file says about a fleet: its hosts, its gateway, and each person as
    placement sees them (pin, labels, memory), in the order of `PeopleFile.wanted`."""

    hosts: tuple[FleetHost, ...]
    gateway: Gateway
    people: tuple[FleetPerson, ...]


@dataclass(frozen=True)
class PeopleFile:
    """A people file: the host it describes (settings and firewall, no people yet), its
    admin, the people it wants, and which host tables it holds; a fleet's also `fleet`."""

    host: Host
    admin: Admin
    wanted: list[Wanted]
    host_tables: tuple[str, ...]
    fleet: FleetTables | None = None


HOST_TABLES = ("defaults", "firewall", "admin")
FLEET_TABLES = ("hosts", "gateway")
GATEWAY = "gateway"  # the front door's config is gateway.ign, so no host may take the name


def read_people_file(text: str, where: str) -> PeopleFile:
    """[defaults] settings, [firewall], [admin] and one [people.NAME] table each; a fleet adds
    [hosts.NAME] tables and [gateway], and people may pin `host` and need `labels`."""
    table = _table(text, where)
    unknown = sorted(set(table) - {*HOST_TABLES, *FLEET_TABLES, "people"})
    if unknown:
        raise BadInput(f"{where}: unknown table '{unknown[0]}'; use [defaults], [firewall], "
                       "[admin], [people.NAME], and for a fleet [hosts.NAME] and [gateway]")
    at = {key: f"{where}{_line(text, key)}: [{key}]" for key in (*HOST_TABLES, *FLEET_TABLES)}
    host = Host(validate.settings(table.get("defaults", {}), at["defaults"]),
                firewall=firewall_table(table.get("firewall", {"enabled": False}),
                                        at["firewall"]))
    people = table.get("people", {})
    if not isinstance(people, dict):
        raise BadInput(f"{where}: people is not a table; give one [people.NAME] table each")
    fleet = any(key in table for key in FLEET_TABLES)
    if fleet:
        host = _fleet_host(table, host, at, where)
    entries = {name: (entry, f"{where}{_line(text, 'people', name)}: [people.{name}]")
               for name, entry in people.items()}
    wanted = [_wanted(name, entry, place, fleet) for name, (entry, place) in entries.items()]
    found = PeopleFile(host, admin_table(table.get("admin", {}), at["admin"]), wanted,
                       tuple(key for key in HOST_TABLES if key in table))
    if not fleet:
        return found
    hosts = _fleet_hosts(table, text, where)
    people_of = tuple(placement.person(name, entry, place, hosts, host.settings.memory)
                      for name, (entry, place) in entries.items())
    return replace(found, fleet=FleetTables(hosts, gateway_table(table.get(GATEWAY),
                                                                 at[GATEWAY]), people_of))


def _fleet_host(table: dict, host: Host, at: dict[str, str], where: str) -> Host:
    """The host every workspace host of a fleet starts from: the firewall is on, since it is
    what lets only the gateway in."""
    if "hosts" not in table or GATEWAY not in table:
        missing = "hosts.NAME" if "hosts" not in table else GATEWAY
        raise BadInput(f"{where}: a fleet needs [hosts.NAME] tables and [gateway]; give "
                       f"[{missing}]")
    if "firewall" in table and not host.firewall:
        raise BadInput(f"{at['firewall']}: a fleet's hosts let ssh in from the gateway only, "
                       "which is their firewall's work; drop enabled = false")
    if host.settings.allow_from:
        raise BadInput(f"{at['defaults']}: allow_from is set by [gateway] in a fleet; give "
                       "allow_from in [gateway] instead")
    return replace(host, firewall=True)


def _fleet_hosts(table: dict, text: str, where: str) -> tuple[FleetHost, ...]:
    if isinstance(table["hosts"], dict) and GATEWAY in table["hosts"]:
        raise BadInput(f"{where}{_line(text, 'hosts', GATEWAY)}: [hosts.{GATEWAY}]: the name "
                       f"{GATEWAY} is the front door's; name the host otherwise")
    hosts = placement.hosts(table["hosts"], f"{where}{_line(text, 'hosts')}")
    for each in hosts:
        if not _is_ip(each.address):
            raise BadInput(f"{where}{_line(text, 'hosts', each.name)}: [hosts.{each.name}]: "
                           f"address {each.address} is a name; the gateway maps people to "
                           "their host's IP address, so give that")
    return hosts


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def gateway_table(table: object, where: str) -> Gateway:
    """[gateway]: `address` (IP or DNS name) and `allow_from`, the source addresses the
    workspace hosts see the gateway's connections come from (default: the address)."""
    if not isinstance(table, dict) or set(table) - {"address", "allow_from"} or \
            "address" not in table:
        raise BadInput(f"{where}: give address = \"gw.example.com\" and, if the workspace hosts "
                       "see the gateway under another address, allow_from = [\"10.0.0.1\"]")
    address = placement.address(table["address"], f"{where}: address")
    if "allow_from" in table:
        allow = validate.SETTINGS["allow_from"](table["allow_from"], f"{where}: allow_from")
    elif _is_ip(address):
        allow = (address,)
    else:
        raise BadInput(f"{where}: address {address} is a name; give allow_from = [\"10.0.0.1\"], "
                       "the address the workspace hosts see the gateway's connections from")
    if not allow:
        raise BadInput(f"{where}: allow_from is empty; give the gateway's address as the "
                       "workspace hosts see it")
    return Gateway(address, allow)


def _wanted(name: str, entry: object, at: str, fleet: bool) -> Wanted:
    if not isinstance(entry, dict):
        raise BadInput(f"{at}: must be a table with keys = [...]; see the README")
    pinned = sorted(set(entry) & placement.FLEET_KEYS)
    if pinned and not fleet:
        raise BadInput(f"{at}: {pinned[0]} is for a fleet; give [hosts.NAME] tables and "
                       f"[gateway], or drop {pinned[0]}")
    own = {key: value for key, value in entry.items() if key not in placement.FLEET_KEYS}
    return Wanted(validate.person(name, own, at, port_required=False), at)


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
