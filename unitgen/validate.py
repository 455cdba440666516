"""Checks of everything that comes from outside: names, sizes, ports, images, tables.

Each check returns the canonical value or raises BadInput with one line that names
the problem and the fix, prefixed with where the value came from.
"""

import difflib
import ipaddress
import re
from typing import NamedTuple

from unitgen.errors import BadInput
from unitgen.keys import PublicKey, check_unique, parse_key
from unitgen.model import EGRESS, Host, Person, Settings

NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
RESERVED = frozenset((
    "root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc "
    "gnats nobody nogroup sshd messagebus systemd-network systemd-resolve systemd-timesync "
    "core docker dockremap user admin wormhole all default none"
).split())
SIZE = re.compile(r"(\d+)([kmgt]?)", re.IGNORECASE | re.ASCII)
UNITS = "KMGT"
MIN_MEMORY = 64 << 20
MAX_MEMORY = 1 << 40
IMAGE = re.compile(
    r"sha256:[0-9a-f]{64}|"
    r"(?:[a-zA-Z0-9.-]+(?::\d+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?",
    re.ASCII,
)


def name(value: str, where: str = "") -> str:
    at = f"{where}: " if where else ""
    if not value:
        raise BadInput(f"{at}the user name is empty; give a lowercase name such as alice")
    if len(value) > 32:
        raise BadInput(
            f"{at}user name {value[:40]!r} is longer than 32 characters; choose a shorter one"
        )
    if not NAME.fullmatch(value):
        raise BadInput(
            f"{at}user name {value!r} is not allowed; use lowercase letters, digits, '-' and '_', "
            "starting with a letter (e.g. alice)"
        )
    if value in RESERVED:
        raise BadInput(f"{at}user name '{value}' is reserved; choose another name")
    return value


def memory(value: str, where: str = "--memory", low: int = MIN_MEMORY,
           high: int = MAX_MEMORY) -> str:
    """A size such as 512M or 1G, in the canonical form 512M / 1G, from low to high bytes."""
    match = SIZE.fullmatch(str(value).strip())
    if not match:
        raise BadInput(
            f"{where}: {value!r} is not a size; give a number with K, M, G or T (e.g. 512M)"
        )
    number, unit = int(match[1]), match[2].upper()
    size = number << (10 * (UNITS.index(unit) + 1) if unit else 0)
    if not low <= size <= high:
        raise BadInput(f"{where}: {value!r} is outside {size_text(low)} to {size_text(high)}; "
                       "give a size in that range")
    return size_text(size)


def size_text(size: int) -> str:
    """536870912 -> 512M: a byte count in the largest unit that divides it."""
    for exponent in range(len(UNITS), 0, -1):
        if size % (1 << 10 * exponent) == 0:
            return f"{size >> 10 * exponent}{UNITS[exponent - 1]}"
    return str(size)


def image(value: str, where: str = "--image") -> str:
    if not isinstance(value, str) or not IMAGE.fullmatch(value):
        raise BadInput(
            f"{where}: {value!r} is not an image reference; give one like wormhole:latest"
        )
    return value


def port(value: int, host: Host, where: str = "--port") -> int:
    s = host.settings
    if not s.port_min <= value <= s.port_max:
        raise BadInput(
            f"{where}: port {value} is outside the range {s.port_min}-{s.port_max}; "
            "pick one inside it or change port_min/port_max in the config"
        )
    holder = next((p.name for p in host.people if p.port == value), None)
    if holder:
        raise BadInput(f"{where}: port {value} is taken by {holder}; pick another or leave it out")
    return value


def _int(value: object, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadInput(f"{where} = {value!r} is not allowed; give a whole number from {low} to "
                       f"{high}")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise BadInput(f"{where} = {value!r} is not a string; give it in quotes")
    return value


def _known(table: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, 1)
        fix = f"did you mean '{close[0]}'?" if close else "the README lists the keys"
        raise BadInput(f"{where}: unknown key '{unknown[0]}'; {fix}")


def address(value: object, where: str) -> str:
    try:
        return str(ipaddress.ip_address(_str(value, where)))
    except ValueError:
        raise BadInput(f"{where}: {value!r} is not an IP address; give one such as "
                       "10.0.0.5") from None


def _publish(value: object, where: str) -> str:
    if _str(value, where) == "":
        return ""
    try:
        return address(value, where)
    except BadInput:
        raise BadInput(f"{where}: {value!r} is not an IP address; give one such as 0.0.0.0, "
                       "or \"\" for every address") from None


def _pattern(pattern: re.Pattern, what: str, example: str):
    def check(value: object, where: str) -> str:
        if not pattern.fullmatch(_str(value, where)):
            raise BadInput(f"{where}: {value!r} is not {what}; give one such as {example}")
        return value

    return check


class Egress(NamedTuple):
    network: str
    port: int
    proto: str
    version: int


def egress_rule(text: str, where: str) -> Egress:
    """'CIDR:PORT' or 'CIDR:PORT/udp'; an IPv6 network in brackets: '[2001:db8::/32]:443'."""
    fix = "give one such as 10.0.0.0/8:443, 10.0.0.2/32:53/udp or [2001:db8::/32]:443"
    target, proto = _str(text, where), "tcp"
    for suffix in ("/tcp", "/udp"):
        if text.endswith(suffix):
            target, proto = text.removesuffix(suffix), suffix[1:]
    network, _, port = target.rpartition(":")
    try:
        net = ipaddress.ip_network(network.removeprefix("[").removesuffix("]"), strict=False)
        number = int(port)
    except ValueError:
        raise BadInput(f"{where}: {text!r} is not a network and a port; {fix}") from None
    if network.startswith("[") != (net.version == 6) or not 1 <= number <= 65535:
        raise BadInput(f"{where}: {text!r} is not a network and a port; {fix}")
    return Egress(str(net), number, proto, net.version)


def _list(check):
    def each(value: object, where: str) -> tuple:
        if not isinstance(value, list):
            raise BadInput(f"{where} = {value!r} is not a list; give it in [brackets]")
        return tuple(check(item, f"{where}[{n}]") for n, item in enumerate(value))

    return each


def _choice(options: tuple[str, ...]):
    def check(value: object, where: str) -> str:
        if value not in options:
            raise BadInput(f"{where}: {value!r} is not one of {', '.join(options)}; pick one")
        return value

    return check


def cpus(value: object, where: str = "--cpus") -> float:
    """A CPU cap in CPUs, such as 1.5; 0 means no cap."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            value == 0 or 0.01 <= value <= 1024):
        raise BadInput(f"{where}: {value!r} is not a number of CPUs; give one from 0.01 to "
                       "1024 such as 1.5, or 0 for no cap")
    return round(float(value), 2)


def pids(value: object, where: str = "--pids") -> int:
    return _int(value, where, 32, 4_194_304)


TIMESPAN = re.compile(r"(\d+ ?(us|ms|s|sec|min|m|h|d|w)? ?)+", re.ASCII)


def timespan(value: object, where: str = "--idle-stop") -> str:
    return _pattern(TIMESPAN, "a systemd time span", "1h or 30min")(value, where)


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise BadInput(f"{where} = {value!r} is not true or false; give one of them")
    return value


SETTINGS = {
    "image": lambda v, at: image(_str(v, at), at),
    "memory": lambda v, at: memory(_str(v, at), at),
    "cpus": cpus,
    "pids": pids,
    "port_min": lambda v, at: _int(v, at, 1025, 65535),
    "port_max": lambda v, at: _int(v, at, 1025, 65535),
    "publish_address": _publish,
    "host": _pattern(re.compile(r"|[A-Za-z0-9]([A-Za-z0-9.:-]{0,252}[A-Za-z0-9])?", re.ASCII),
                     "a host name", "ws.example.com"),
    "backup_dir": _pattern(re.compile(r"(/[A-Za-z0-9._-]+)+", re.ASCII),
                           "an absolute path of plain names", "/var/lib/wormhole/backups"),
    "backup_keep": lambda v, at: _int(v, at, 1, 1000),
    "backup_schedule": _pattern(re.compile(r"[A-Za-z0-9 ,:*/.~-]{1,100}", re.ASCII),
                                "a systemd calendar event", "daily or *-*-* 03:00"),
    "backup_spread": lambda v, at: timespan(v, at),
    "upgrade_batch": lambda v, at: _int(v, at, 1, 1000),
    "start_lanes": lambda v, at: _int(v, at, 1, 64),
    "on_demand": _bool,
    "idle_stop": timespan,
    "inner_offset": lambda v, at: _int(v, at, 1, 60000),
    "egress": _choice(EGRESS),
    "egress_allow": _list(lambda v, at: (egress_rule(v, at), v)[1]),
    "admin_ports": _list(lambda v, at: _int(v, at, 1, 65535)),
}


def settings(table: dict, where: str) -> Settings:
    """Settings from a config table; missing keys take their defaults."""
    _known(table, set(SETTINGS), where)
    result = Settings(**{key: SETTINGS[key](value, f"{where}: {key}")
                         for key, value in table.items()})
    if result.port_min > result.port_max:
        raise BadInput(
            f"{where}: port_min {result.port_min} is above port_max {result.port_max}; swap them"
        )
    if result.port_max + result.inner_offset > 65535:
        raise BadInput(f"{where}: port_max + inner_offset is above 65535; lower inner_offset")
    return result


def key_lines(lines: object, where: str) -> tuple[PublicKey, ...]:
    if not isinstance(lines, list) or not lines or not all(isinstance(k, str) for k in lines):
        raise BadInput(f"{where}: keys is missing or empty; give keys = [\"ssh-ed25519 AAAA...\"]")
    keys = []
    for number, line in enumerate(lines, 1):
        try:
            keys.append(parse_key(line.strip()))
        except ValueError as problem:
            raise BadInput(f"{where}: key {number}: {problem}") from None
    check_unique(keys, where)
    return tuple(keys)


PERSON = {
    "port": lambda v, at: _int(v, at, 1025, 65535),
    "keys": lambda v, at: key_lines(v, at.rpartition(": keys")[0]),
    "memory": lambda v, at: memory(_str(v, at), at),
    "image": lambda v, at: image(_str(v, at), at),
    "cpus": cpus,
    "pids": pids,
    "on_demand": _bool,
    "idle_stop": timespan,
    "generation": lambda v, at: _int(v, at, 0, 1_000_000),
}


def person(person_name: str, table: dict, where: str) -> Person:
    """A person from a registry or people-file table."""
    name(person_name, where)
    _known(table, set(PERSON), where)
    if "port" not in table:
        raise BadInput(f"{where}: port is missing; give port = N")
    if "keys" not in table:
        key_lines(None, where)
    return Person(person_name, **{key: PERSON[key](value, f"{where}: {key}")
                                  for key, value in table.items()})
