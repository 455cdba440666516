"""A fleet: N independent hosts, each provisioned and run exactly as one host is, and one
front door. unitgen compiles the people file and its lock into a placement (unitgen.placement)
with a port per person that is theirs across the fleet, each host's own description (through
the one admission), the gateway's files and each person's ssh config. Pure.

The front door is the gateway host's own OpenSSH. A jump user's authorized_keys lets each
person's keys open one connection only, to `NAME.wormhole:PORT`; the gateway's /etc/hosts
maps that name to the host the person is on now. People reach their workspace with
`ProxyJump`, so their ssh config never changes when they move, and the workspace hosts take
ssh to the workspaces from the gateway only (allow_from in their firewall)."""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from unitgen import admission, names, placement
from unitgen.admission import Wanted
from unitgen.errors import BadInput
from unitgen.model import Artifact, Host, Person, Workspace, size_bytes
from unitgen.placement import Locked, Move, Placement
from unitgen.registry import GATEWAY, FleetTables, PeopleFile
from unitgen.render import environment

SUFFIX = "wormhole"  # a person's stable name is NAME.wormhole
JUMP_USER = "wormhole"  # the gateway's jump user (a reserved name, so never a person's)
GATEWAY_FILE = GATEWAY  # DIR/gateway.ign: no host may take the name
HOSTS = "/etc/hosts"
JUMP_KEYS = f"{names.ETC}/gateway/authorized_keys"
SSHD_DROPIN = "/etc/ssh/sshd_config.d/40-wormhole-gateway.conf"


def lock_path(source: Path) -> Path:
    """people.toml -> people.lock, beside it."""
    return source.with_suffix(".lock")


def tables(people: PeopleFile, where: str) -> FleetTables:
    if people.fleet is None:
        raise BadInput(f"{where} describes one host, not a fleet; give [hosts.NAME] tables and "
                       "[gateway] (or use unitgen ignition for one host)")
    return people.fleet


@dataclass(frozen=True)
class Compiled:
    """A people file and its lock, compiled: where everyone goes, with which port, and the
    moves since the lock. `after` is the lock once every move is made."""

    people: PeopleFile
    placement: Placement
    before: dict[str, Locked]
    after: dict[str, Locked]

    @property
    def fleet(self) -> FleetTables:
        return self.people.fleet

    @property
    def moves(self) -> tuple[Move, ...]:
        return self.placement.moves

    @cached_property
    def wanted(self) -> dict[str, Wanted]:
        return {w.person.name: w for w in self.people.wanted}

    def address(self, host: str) -> str:
        return next(h.address for h in self.fleet.hosts if h.name == host)

    def base(self) -> Host:
        """Every workspace host's settings, firewall on, without people."""
        return self.people.host.with_settings(allow_from=self.fleet.gateway.allow_from)

    def person(self, name: str) -> Person:
        """The person as their host registers them: their own values and their fleet port."""
        return replace(self.wanted[name].person, port=self.after[name].port)

    def workspace(self, name: str) -> Workspace:
        return self.base().workspace(self.person(name))

    def host(self, name: str) -> Host:
        """The host's own description: its people, with their fleet ports, through the one
        admission every host uses."""
        people = [Wanted(self.person(n), self.wanted[n].where)
                  for n, at in self.after.items() if at.host == name]
        # The host's snapshots carry its fleet name: a move or a lost host finds them by it.
        return admission.admit(self.base().with_settings(host=name), people)

    def hosts(self) -> dict[str, Host]:
        return {h.name: self.host(h.name) for h in self.fleet.hosts}


def compile_fleet(people: PeopleFile, lock: Mapping[str, Locked], rebalance: bool = False,
                  where: str = "people file") -> Compiled:
    """The placement of the people file against its lock, with everyone's port."""
    fleet = tables(people, where)
    check_shared_keys(people.wanted, where)
    settings = people.host.settings
    result = placement.place(fleet.hosts, fleet.people, {n: at.host for n, at in lock.items()},
                             rebalance=rebalance, unit=size_bytes(settings.memory), where=where)
    ports = fleet_ports(people, lock, where)
    after = {name: Locked(at, ports[name]) for name, at in result.assignment}
    compiled = Compiled(people, result, dict(lock), after)
    compiled.hosts()  # each host admits its people, or the one line why not
    return compiled


def check_shared_keys(wanted: list[Wanted], where: str) -> None:
    """The gateway maps a key to one workspace, so in a fleet nobody shares a key."""
    holders: dict[str, str] = {}
    for w in sorted(wanted, key=lambda w: w.person.name):
        for key in w.person.keys:
            other = holders.setdefault(key.fingerprint, w.person.name)
            if other != w.person.name:
                raise BadInput(f"{where}: key {key.fingerprint} is held by {other} and "
                               f"{w.person.name}; the gateway lets a key into one workspace, "
                               "so give each person their own key")


def fleet_ports(people: PeopleFile, lock: Mapping[str, Locked], where: str) -> dict[str, int]:
    """Each person's port, unique across the fleet: the one in the file, else the locked one,
    else the lowest free one in name order. Ports of people who left the file stay taken
    until `fleet apply` removes them."""
    s = people.host.settings
    held = {at.port: name for name, at in lock.items()}
    ports: dict[str, int] = {}
    for w in sorted(people.wanted, key=lambda w: w.person.name):
        name, given, locked = w.person.name, w.person.port, lock.get(w.person.name)
        if given and locked and given != locked.port:
            raise BadInput(f"{w.where}: port {given} is not {name}'s locked port {locked.port}; "
                           "a person's port is their ssh line, so drop port or give "
                           f"{locked.port}")
        port = given or (locked.port if locked else 0)
        if not port:
            continue
        if held.get(port, name) != name:
            raise BadInput(f"{w.where}: port {port} is {held[port]}'s; give another or leave it "
                           "out")
        held[port], ports[name] = name, port
    free = (n for n in range(s.port_min, s.port_max + 1) if n not in held)
    for w in sorted(people.wanted, key=lambda w: w.person.name):
        if w.person.name not in ports:
            ports[w.person.name] = next(free, 0)
            if not ports[w.person.name]:
                raise BadInput(f"{where}: no free port left in {s.port_min}-{s.port_max} for "
                               f"{len(people.wanted)} people; widen port_min/port_max in "
                               "[defaults]")
    return ports


# ---- the front door --------------------------------------------------------------------

def _template(template: str, kind: str, **context: object) -> str:
    return environment("butane", kind).get_template(f"fleet/{template}").render(
        source=f"butane/fleet/{template}", suffix=SUFFIX, **context)


def gateway_files(compiled: Compiled, state: Mapping[str, Locked]) -> dict[str, Artifact]:
    """The gateway's files for everyone as `state` places them: /etc/hosts and the jump
    user's keys, which `fleet apply` rewrites as people move, and the sshd drop-in."""
    placed = {n: at for n, at in sorted(state.items())
              if n in compiled.wanted and at.host in {h.name for h in compiled.fleet.hosts}}
    keys = [(n, at.port, key.line) for n, at in placed.items()
            for key in compiled.wanted[n].person.keys]
    return {
        HOSTS: Artifact(_template("hosts", "rules", entries=[
            (n, compiled.address(at.host)) for n, at in placed.items()])),
        JUMP_KEYS: Artifact(_template("authorized_keys", "keys", entries=keys)),
        SSHD_DROPIN: Artifact(_template("40-wormhole-gateway.conf", "script", user=JUMP_USER,
                                        keys=JUMP_KEYS)),
    }


def ssh_config(compiled: Compiled, name: str) -> str:
    """The person's ~/.ssh/config block, the same wherever they are placed."""
    if name not in compiled.before:
        raise BadInput(f"{name} is not in the lock yet, so their port is not final; run unitgen "
                       "fleet apply (or fleet ignition for new hosts) first")
    if name not in compiled.wanted:
        raise BadInput(f"{name} is not in the people file; see: unitgen fleet plan")
    gateway = compiled.fleet.gateway.address
    return _template("ssh_config", "env", name=name, port=compiled.before[name].port,
                     user=JUMP_USER, gateway=f"[{gateway}]" if ":" in gateway else gateway)


# ---- the plan --------------------------------------------------------------------------

def plan_lines(compiled: Compiled, lock_name: str) -> list[str]:
    """`fleet plan`: each person's host and port, then the moves since the lock."""
    lines = [f"{'PERSON':<20} {'HOST':<16} {'PORT':>5}"]
    lines += [f"{n:<20} {at.host:<16} {at.port:>5}" for n, at in sorted(compiled.after.items())]
    counts = {h.name: 0 for h in compiled.fleet.hosts}
    for at in compiled.after.values():
        counts[at.host] += 1
    lines.append("people per host: " + ", ".join(f"{h} {n}" for h, n in counts.items()))
    if not compiled.moves:
        lines.append(f"no moves since {lock_name}")
        return lines
    lines.append(f"{len(compiled.moves)} move(s) since {lock_name}; make them with: unitgen "
                 "fleet apply")
    lines.append(f"{'PERSON':<20} {'FROM':<16} {'TO':<16} REASON")
    lines += [f"{m.person:<20} {m.source or '-':<16} {m.target or '-':<16} {m.reason}"
              for m in compiled.moves]
    return lines


def placed_moves(compiled: Compiled) -> list[Move]:
    """The moves of people the lock has placed already: what `fleet ignition` must leave to
    `fleet apply`."""
    return [m for m in compiled.moves if m.source is not None]
