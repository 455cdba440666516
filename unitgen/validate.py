"""Checks of everything that comes from outside: names, sizes, ports, images, tables.

Each check returns the canonical value or raises BadInput with one line that names
the problem and the fix, prefixed with where the value came from.
"""

import difflib
import ipaddress
import re
from typing import NamedTuple

from unitgen import access, timespec
from unitgen.errors import BadInput
from unitgen.keys import PublicKey, check_unique, parse_key
from unitgen.model import EGRESS, SIZE_UNITS, Host, Person, Settings, size_text

NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
RESERVED = frozenset((
    "root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc "
    "gnats nobody nogroup sshd messagebus systemd-network systemd-resolve systemd-timesync "
    "core docker dockremap user admin wormhole all default none"
).split())
SIZE = re.compile(r"(\d+)([kmgt]?)", re.IGNORECASE | re.ASCII)
MIN_MEMORY = 64 << 20
MAX_MEMORY = 1 << 40
# A disk below 256M keeps too little for files (1 KiB blocks, a 16 MiB journal); an image
# of 16T cannot be made on an ext4 /var (Flatcar's), so 8T at the most.
MIN_DISK = 256 << 20
MAX_DISK = 8 << 40
IMAGE = re.compile(
    r"sha256:[0-9a-f]{64}|"
    r"(?:[a-zA-Z0-9][a-zA-Z0-9.-]*(?::\d+)?/)?"
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


def _size(value: str, where: str, low: int, high: int, example: str) -> str:
    """A size such as 512M or 1G from `low` to `high`, in the canonical form 512M / 1G."""
    match = SIZE.fullmatch(str(value).strip())
    if not match:
        raise BadInput(
            f"{where}: {value!r} is not a size; give a number with K, M, G or T (e.g. {example})"
        )
    number, unit = int(match[1]), match[2].upper()
    size = number << (10 * (SIZE_UNITS.index(unit) + 1) if unit else 0)
    if not low <= size <= high:
        raise BadInput(f"{where}: {value!r} is outside {size_text(low)} to {size_text(high)}; "
                       "give a size in that range")
    return size_text(size)


def memory(value: str, where: str = "--memory", low: int = MIN_MEMORY,
           high: int = MAX_MEMORY) -> str:
    return _size(value, where, low, high, "512M")


def disk(value: str, where: str = "--disk") -> str:
    """A disk cap such as 10G, from 256M to 8T."""
    return _size(value, where, MIN_DISK, MAX_DISK, "10G")


def image(value: str, where: str = "--image") -> str:
    if not isinstance(value, str) or len(value) > 255 or not IMAGE.fullmatch(value):
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


def _table(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise BadInput(f"{where}: is not a table; give it as a [table] of key = value lines")
    return value


def _known(table: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, 1)
        fix = f"did you mean '{close[0]}'?" if close else "the README lists the keys"
        raise BadInput(f"{where}: unknown key '{unknown[0]}'; {fix}")


def address(value: object, where: str) -> str:
    try:
        if "%" in _str(value, where):
            raise ValueError("a zone")
        return str(ipaddress.ip_address(value))
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
        if "%" in network:
            raise ValueError("a zone")
        net = ipaddress.ip_network(network.removeprefix("[").removesuffix("]"), strict=False)
        number = int(port)
    except ValueError:
        raise BadInput(f"{where}: {text!r} is not a network and a port; {fix}") from None
    if network.startswith("[") != (net.version == 6) or not 1 <= number <= 65535:
        raise BadInput(f"{where}: {text!r} is not a network and a port; {fix}")
    return Egress(str(net), number, proto, net.version)


def source(value: object, where: str) -> str:
    """An address or network allowed to reach the workspace ports, such as 10.0.0.1 or
    10.0.0.0/24; never with a zone."""
    text = _str(value, where)
    try:
        if "%" in text:
            raise ValueError("a zone")
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise BadInput(f"{where}: {value!r} is not an address or network; give one such as "
                       "10.0.0.1 or 10.0.0.0/24") from None
    return text


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


def timespan(value: object, where: str = "--idle-stop", least: float = 1) -> str:
    """A systemd time span from `least` seconds to a year, such as 1h or 30min."""
    if not timespec.span(_str(value, where), least):
        raise BadInput(f"{where}: {value!r} is not a time span from {least:g}s to a year; give "
                       "one such as 1h or 30min")
    return value


def calendar(value: object, where: str) -> str:
    if not timespec.calendar(_str(value, where)):
        raise BadInput(f"{where}: {value!r} is not a calendar event unitgen accepts; give one "
                       "such as daily, Sun 03:00 or *-*-* 03:00")
    return value


BACKUP_ROOTS = ("/var/", "/srv/", "/mnt/")
PLAIN_PATH = re.compile(r"(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+", re.ASCII)


def backup_dir(value: object, where: str) -> str:
    """An absolute folder of plain names under /var, /srv or /mnt, never above or elsewhere."""
    text = _str(value, where)
    if not PLAIN_PATH.fullmatch(text) or ".." in text.split("/") or \
            not text.startswith(BACKUP_ROOTS):
        raise BadInput(f"{where}: {value!r} is not a folder of plain names under /var, /srv or "
                       "/mnt; give one such as /var/lib/wormhole/backups")
    return text


REMOTE = re.compile(r"(sftp|rest|s3):[A-Za-z0-9._~:/@=+,-]+", re.ASCII)
CREDENTIALS = re.compile(r"rest:https?://[^/@]*@")


def repository(value: object, where: str) -> str:
    """Where restic keeps the backups: "" (a local repository in backup_dir), an absolute
    folder of plain names under /var, /srv or /mnt, or a remote one (sftp:, rest:, s3:)
    without credentials, which belong in the root-only secrets folder."""
    text = _str(value, where)
    if text == "" or text.startswith("/"):
        return backup_dir(text, where) if text else text
    if CREDENTIALS.match(text):
        raise BadInput(f"{where}: {_shown(text)!r} carries credentials, and the config is "
                       "readable by anyone on the host; give the URL without them and put the "
                       "whole URL in /etc/wormhole/restic/repository (root only)")
    if not REMOTE.fullmatch(text):
        raise BadInput(f"{where}: {value!r} is no restic repository unitgen takes; give an "
                       "absolute folder, or a location starting sftp:, rest: or s3: of plain "
                       "characters, such as rest:https://backup.example.com:8000/ws1")
    return text


def _shown(text: str) -> str:
    """A location with a URL's password hidden."""
    return re.sub(r"(?<=://)([^/@:]*):[^/@]*@", r"\1:***@", text)


def update_window(value: object, where: str) -> str:
    if _str(value, where) and timespec.window(value) is None:
        raise BadInput(f"{where}: {value!r} is not a maintenance window; give DAYS HH:MM LENGTH "
                       "such as Sun 03:00 2h (LENGTH from 30min to 24h, * for every day), or "
                       "\"\" for the system's own")
    return value


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise BadInput(f"{where} = {value!r} is not true or false; give one of them")
    return value


SETTINGS = {
    "image": lambda v, at: image(_str(v, at), at),
    "memory": lambda v, at: memory(_str(v, at), at),
    "disk": lambda v, at: disk(_str(v, at), at),
    "cpus": cpus,
    "pids": pids,
    "port_min": lambda v, at: _int(v, at, 1025, 65535),
    "port_max": lambda v, at: _int(v, at, 1025, 65535),
    "publish_address": _publish,
    "host": _pattern(re.compile(r"|[A-Za-z0-9]([A-Za-z0-9.:-]{0,252}[A-Za-z0-9])?", re.ASCII),
                     "a host name", "ws.example.com"),
    "backup_dir": backup_dir,
    "backup_repository": repository,
    "backup_image": lambda v, at: image(_str(v, at), at),
    "backup_keep": lambda v, at: _int(v, at, 1, 1000),
    "backup_keep_weekly": lambda v, at: _int(v, at, 0, 1000),
    "backup_keep_monthly": lambda v, at: _int(v, at, 0, 1000),
    "backup_schedule": calendar,
    "backup_spread": lambda v, at: timespan(v, at, least=0),
    "backup_forget_schedule": calendar,
    "backup_check_schedule": calendar,
    "upgrade_batch": lambda v, at: _int(v, at, 1, 1000),
    "start_lanes": lambda v, at: _int(v, at, 1, 64),
    "on_demand": _bool,
    "idle_stop": timespan,
    "inner_offset": lambda v, at: _int(v, at, 1, 60000),
    "egress": _choice(EGRESS),
    "egress_allow": _list(lambda v, at: (egress_rule(v, at), v)[1]),
    "admin_ports": _list(lambda v, at: _int(v, at, 1, 65535)),
    "allow_from": _list(source),
    "cli_image": lambda v, at: image(_str(v, at), at),
    "update_window": update_window,
    "forwarding": _choice(access.FORWARDING),
    "key_policy": _choice(access.KEY_POLICIES),
}


def settings(table: dict, where: str) -> Settings:
    """Settings from a config table; missing keys take their defaults."""
    _table(table, where)
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
    "forwarding": _choice(access.FORWARDING),
    "key_policy": _choice(access.KEY_POLICIES),
    "disk": lambda v, at: disk(_str(v, at), at),
    "generation": lambda v, at: _int(v, at, 0, 1_000_000),
    "on_volumes": _bool,
}


def person(person_name: str, table: dict, where: str, port_required: bool = True) -> Person:
    """A person from a registry table, or a people-file table (where a missing port is 0:
    the lowest free one)."""
    name(person_name, where)
    _table(table, where)
    _known(table, set(PERSON), where)
    if "port" not in table and port_required:
        raise BadInput(f"{where}: port is missing; give port = N")
    if "keys" not in table:
        key_lines(None, where)
    return Person(person_name, **{"port": 0, **{key: PERSON[key](value, f"{where}: {key}")
                                               for key, value in table.items()}})


def forwarding(value: object, where: str = "--forwarding") -> str:
    return _choice(access.FORWARDING)(value, where)


def key_policy(value: object, where: str = "--key-policy") -> str:
    return _choice(access.KEY_POLICIES)(value, where)


def limits(**given: object) -> dict[str, object]:
    """The limits `unitgen set` was given (those not None), each checked."""
    checks = {"memory": memory, "cpus": cpus, "pids": pids, "idle_stop": timespan,
              "on_demand": bool, "forwarding": forwarding, "key_policy": key_policy,
              "disk": disk}
    found = {key: checks[key](value) for key, value in given.items() if value is not None}
    if not found:
        raise BadInput("give --memory, --disk, --cpus, --pids, --on-demand/--always-on, "
                       "--idle-stop, --forwarding or --key-policy; see: unitgen set --help")
    return found


def conflicts(host: Host) -> list[str]:
    """What keeps the host's people from running side by side: a port held twice (inner
    ports of people on demand included) or an inner port above 65535. One line each."""
    found, holders = [], {}
    for port, holder in host.held_ports():
        if port > 65535:
            found.append(f"{holder}'s inner port {port} is above 65535; lower inner_offset or "
                         f"give {holder} a lower port")
        elif port in holders and holders[port] != holder:
            found.append(f"port {port} is held by {holders[port]} and {holder}; give each "
                         "their own port in /etc/wormhole/people/NAME.toml")
        holders.setdefault(port, holder)
    return found


def shared_keys(host: Host, names: set[str] | None = None) -> list[str]:
    """Keys that more than one person holds (of those named, or anyone's), one line each: a
    key is a login, so whoever holds it reaches each of their workspaces."""
    holders: dict[str, list[str]] = {}
    for person in host.people:
        for key in person.keys:
            holders.setdefault(key.fingerprint, []).append(person.name)
    return [f"key {fingerprint} is held by {', '.join(people)}: whoever holds it logs in to "
            "each of their workspaces" for fingerprint, people in holders.items()
            if len(people) > 1 and (names is None or names & set(people))]


def host(described: Host) -> Host:
    """The host, if its people can run side by side."""
    problems = conflicts(described)
    if problems:
        raise BadInput(problems[0])
    return described
