"""The fleet's operations on live hosts, each over the admin's own ssh: status, backups into
the fleet's restic repository, and apply, which makes the plan's moves one person at a time.

Nothing runs on the hosts but what one host runs today: unitgen (the wrapper on a host
without Python), systemctl, and plain file writes with sudo. A move is five steps, each with
its undo (see `move_steps`); a failure at any step before the front door switches undoes the
steps done, so the person works where they were."""

import json
import os
import shlex
import subprocess
import time
import tomllib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import tomli_w

from unitgen import registry
from unitgen.errors import BadInput, Failed, UnitgenError
from unitgen.fleet import HOSTS, JUMP_KEYS, Compiled, gateway_files
from unitgen.model import Workspace
from unitgen.names import proxy, proxy_socket, unit
from unitgen.placement import Locked, Move

Say = Callable[[str], None]
SSH_VARIABLE = "UNITGEN_FLEET_SSH"
SSH = "ssh -o BatchMode=yes -o ConnectTimeout=10"
# The wrapper is /usr/local/bin/unitgen on Fedora CoreOS and /opt/bin/unitgen on Flatcar,
# whose sudo does not search /opt/bin.
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/bin"
ABSENT = "there is no workspace named"  # what unitgen says of a person a host does not have
INCOMING = "/var/lib/wormhole/fleet"  # where a host receives a one-person people file
# A file written whole or not at all: a temporary name in the same folder, then a rename.
# Folders it makes are made with umask $4 (sshd reads the gateway's keys as the jump user).
WRITE = ('umask "$4" && mkdir -p "$1" && umask 077 && cat > "$1/.$2.partial" && '
         'chmod "$3" "$1/.$2.partial" && mv -f "$1/.$2.partial" "$1/$2" && '
         '{ command -v restorecon >/dev/null 2>&1 && restorecon "$1/$2" || true; }')


# ---- the transport: the admin's own ssh --------------------------------------------------

@dataclass(frozen=True)
class Done:
    code: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")

    def why(self) -> str:
        """The last line the remote command said, for a one-line message."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return (lines[-1] if lines else f"exit status {self.code}").removeprefix(
            "unitgen: error: ")


class Transport(Protocol):
    def run(self, address: str, argv: list[str], data: bytes | None = None,
            sudo: bool = True, timeout: float = 600) -> Done: ...


class Ssh:
    """argv run on a host as its admin (`ssh ADMIN@ADDRESS`), through sudo unless the admin
    is root. The ssh command comes from UNITGEN_FLEET_SSH (split as sh would), default
    `ssh -o BatchMode=yes -o ConnectTimeout=10`."""

    def __init__(self, user: str, command: list[str] | None = None) -> None:
        self.user = user
        self.command = command or shlex.split(os.environ.get(SSH_VARIABLE) or SSH)

    def run(self, address: str, argv: list[str], data: bytes | None = None,
            sudo: bool = True, timeout: float = 600) -> Done:
        remote = (["sudo", "-n"] if sudo and self.user != "root" else []) + argv
        try:
            done = subprocess.run([*self.command, f"{self.user}@{address}", "--",
                                   shlex.join(remote)], input=data, capture_output=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return Done(255, b"", f"no answer within {timeout:g}s")
        except OSError as problem:
            raise Failed(f"cannot run {self.command[0]}: {problem.strerror}; install the "
                         f"OpenSSH client or set {SSH_VARIABLE}") from None
        return Done(done.returncode, done.stdout, done.stderr.decode(errors="replace"))


# ---- the fleet's hosts, as apply and status act on them ----------------------------------

class Remote:
    """Each action on one of the fleet's machines, as commands over the transport."""

    def __init__(self, transport: Transport, compiled: Compiled, wait: float = 60) -> None:
        self.transport, self.compiled, self.wait = transport, compiled, wait

    def call(self, address: str, argv: list[str], what: str, data: bytes | None = None,
             sudo: bool = True) -> Done:
        done = self.transport.run(address, argv, data, sudo)
        if done.code:
            raise Failed(f"{what} on {address}: {done.why()}")
        return done

    def unitgen(self, address: str, *args: str) -> Done:
        return self.call(address, ["env", f"PATH={PATH}", "unitgen", *args],
                         f"unitgen {args[0]}")

    def write(self, address: str, path: str, data: bytes, mode: int = 0o600) -> None:
        """`path` on the host, written whole or not at all; its folder, if made, is private
        unless the file is readable by all."""
        folder, _, name = path.rpartition("/")
        self.call(address, ["sh", "-c", WRITE, "sh", folder, name, f"{mode:o}",
                            "022" if mode & 0o004 else "077"],
                  f"writing {path}", data)

    def read(self, address: str, path: str) -> bytes:
        return self.call(address, ["cat", "--", path], f"reading {path}").stdout

    def stop(self, address: str, w: Workspace) -> None:
        units = [proxy_socket(w.name), proxy(w.name), unit(w.name)] if w.on_demand \
            else [unit(w.name)]
        self.call(address, ["systemctl", "stop", *units], f"stopping {w.name}")

    def start(self, address: str, w: Workspace) -> None:
        self.call(address, ["systemctl", "start", w.entry], f"starting {w.name}")

    def add(self, address: str, name: str) -> None:
        """Register the person on the host as the people file has them, with their fleet
        port: a one-person people file, then `unitgen add --from`."""
        person = tomllib.loads(registry.dump_person(self.compiled.person(name)))
        path = f"{INCOMING}/{name}.toml"
        self.write(address, path, tomli_w.dumps({"people": {name: person}}).encode())
        self.unitgen(address, "add", "--from", path)

    def remove(self, address: str, name: str, purge: bool, final_backup: bool) -> None:
        self.unitgen(address, "remove", name, *([] if final_backup else ["--no-backup"]),
                     *(["--purge", "--yes"] if purge else []))

    def clear(self, address: str, name: str, purge: bool = True) -> None:
        """Take the person off a host the lock does not place them on, if they are there: what
        an interrupted or undone move left (the data there is older than their backup), or a
        newcomer whose arrival failed (their data kept)."""
        done = self.transport.run(address, ["env", f"PATH={PATH}", "unitgen", "remove", name,
                                            "--no-backup", *(["--purge", "--yes"] if purge
                                                              else [])])
        if done.code and not (done.code == 2 and ABSENT in done.stderr):
            raise Failed(f"clearing {name} from {address}: {done.why()}")

    def host_key(self, address: str, port: int) -> str | None:
        """The workspace's ed25519 host key (type and base64), as the gateway sees it."""
        done = self.transport.run(self.compiled.fleet.gateway.address,
                                  ["ssh-keyscan", "-T", "5", "-t", "ed25519", "-p", str(port),
                                   address], sudo=False, timeout=30)
        for line in done.text.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "ssh-ed25519":
                return f"{parts[1]} {parts[2]}"
        return None

    def answers(self, address: str, port: int, expected: str | None) -> None:
        """Until the workspace answers the gateway, with the host key it had, or `wait`."""
        deadline, found = time.monotonic() + self.wait, None
        while True:
            found = self.host_key(address, port)
            if found is not None and expected in (None, found):
                return
            if time.monotonic() > deadline:
                break
            time.sleep(1)
        if found is None:
            raise Failed(f"the workspace on {address}:{port} did not answer the gateway within "
                         f"{self.wait:g}s")
        raise Failed(f"the workspace on {address}:{port} answers with another host key than "
                     "its backup's")

    def switch(self, state: Mapping[str, Locked]) -> None:
        """The front door as `state` places everyone: the names and the jump user's keys,
        each written when it differs from the gateway's."""
        files, address = gateway_files(self.compiled, state), self.compiled.fleet.gateway.address
        for path in (HOSTS, JUMP_KEYS):
            wanted = files[path].text.encode()
            if self.transport.run(address, ["cat", "--", path]).stdout != wanted:
                self.write(address, path, wanted, 0o644)


# ---- the backups: the fleet's one restic repository ----------------------------------------

@dataclass(frozen=True)
class Backup:
    """A person's last backup: their snapshot, the fleet host whose snapshots hold it, and
    the workspace's public host key in it."""

    person: str
    snapshot: str
    host: str
    host_key: str


class Repository(Protocol):
    """Where the fleet's backups live, for moves and lost hosts."""

    def take(self, remote: Remote, address: str, people: list[str]) -> dict[str, Backup]: ...

    def latest(self, remote: Remote, address: str, person: str, host: str) -> Backup: ...

    def deliver(self, remote: Remote, backup: Backup, address: str) -> None: ...


class ResticSnapshots:
    """The repository every host of the fleet backs up into (its settings are the fleet's),
    each host's snapshots under its fleet name: `take` is the backup on the person's host,
    `latest` their newest snapshot of a host (a lost one, asked through another), `deliver`
    the restore of the snapshot on the target host. The host key comes from the snapshot
    itself (restic dump, by unitgen host-key); nothing passes through the admin's machine."""

    def __init__(self, compiled: Compiled) -> None:
        self.names = {h.address: h.name for h in compiled.fleet.hosts}

    def take(self, remote: Remote, address: str, people: list[str]) -> dict[str, Backup]:
        done = remote.unitgen(address, "backup", *people)
        made = {}
        for line in done.text.splitlines():
            count, _, rest = line.partition("] ")
            name, _, said = rest.partition(": snapshot ")
            if count.startswith("[") and name in people and said:
                made[name] = self._backup(remote, address, name, self.names[address],
                                          said.strip())
        missing = sorted(set(people) - set(made))
        if missing:
            raise Failed(f"unitgen backup on {address} printed no snapshot for "
                         f"{', '.join(missing)}")
        return made

    def latest(self, remote: Remote, address: str, person: str, host: str) -> Backup:
        return self._backup(remote, address, person, host, None)

    @staticmethod
    def _backup(remote: Remote, address: str, person: str, host: str,
                snapshot: str | None) -> Backup:
        done = remote.unitgen(address, "host-key", person, *([snapshot] if snapshot else []),
                              "--from-host", host)
        words = done.text.split()
        if len(words) != 3:
            raise Failed(f"unitgen host-key on {address} printed {done.text.strip()!r}, not a "
                         "snapshot and a host key")
        return Backup(person, words[0], host, " ".join(words[1:]))

    def deliver(self, remote: Remote, backup: Backup, address: str) -> None:
        remote.unitgen(address, "restore", backup.person, backup.snapshot, "--from-host",
                       backup.host, "--no-backup")


# ---- apply -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One step of a change on live hosts. `undo` takes back what `do` did, also when `do`
    failed half-way, so it must be safe to run after any part of `do`."""

    name: str
    do: Callable[[], object]
    undo: Callable[[], object] | None = None


@dataclass
class Applied:
    """What apply did: the lock as it left it, and what it could not tidy up."""

    state: dict[str, Locked]
    leftovers: list[str] = field(default_factory=list)


def run_steps(person: str, steps: list[Step], say: Say, then: str) -> None:
    """Each step in turn; on a failure, the undo of the failed step and of every step done
    before it, last first. `then` says where that leaves the person."""
    done: list[Step] = []
    for step in steps:
        try:
            step.do()
        except UnitgenError as problem:
            for back in [step, *reversed(done)]:
                if back.undo is not None:
                    try:
                        back.undo()
                    except UnitgenError as also:
                        say(f"{person}: undoing {back.name} failed too: {also}")
            raise Failed(f"{person}: {step.name} failed ({problem}); {then}; fix it and run "
                         "unitgen fleet apply again") from None
        say(f"{person}: {step.name}: done")
        done.append(step)


def order(moves: tuple[Move, ...]) -> list[Move]:
    """People leaving first, then moves, then newcomers; by name within each."""
    rank = {"remove": 0, "move": 1, "add": 2}
    return sorted(moves, key=lambda m: (rank[m.kind], m.person))


class Apply:
    """`fleet apply`: the plan's moves, one person at a time, the lock written after each."""

    def __init__(self, compiled: Compiled, remote: Remote, repository: Repository,
                 write_lock: Callable[[dict[str, Locked]], None], say: Say) -> None:
        self.compiled, self.remote, self.repository = compiled, remote, repository
        self.write_lock, self.say = write_lock, say
        self.result = Applied(dict(compiled.before))

    def run(self) -> Applied:
        # The front door as the lock says first: it completes a switch that an interrupted
        # apply wrote to the lock but not yet to the gateway.
        self.remote.switch(self.result.state)
        for move in order(self.compiled.moves):
            {"remove": self.leave, "move": self.move, "add": self.arrive}[move.kind](move)
        return self.result

    def address(self, host: str | None) -> str | None:
        return next((h.address for h in self.compiled.fleet.hosts if h.name == host), None)

    def _place(self, name: str, at: Locked | None) -> None:
        if at is None:
            self.result.state.pop(name, None)
        else:
            self.result.state[name] = at
        self.write_lock(dict(self.result.state))

    def switch_step(self, name: str, to: Locked | None, back: Locked | None) -> Step:
        """The lock, then the gateway; undone the same way."""
        def go(at: Locked | None) -> None:
            self._place(name, at)
            self.remote.switch(self.result.state)
        return Step("switch the front door", lambda: go(to), lambda: go(back))

    def move(self, move: Move) -> None:
        name, steps = move.person, self.move_steps(move)
        if self.address(move.source) is None:
            run_steps(name, steps, self.say, f"{name} stays in the lock on {move.source}, "
                      "which is gone")
            return
        run_steps(name, steps[:-1], self.say, f"{name} works on {move.source} as before")
        self.cleanup(name, steps[-1])

    def move_steps(self, move: Move) -> list[Step]:
        """1 the last backup (the workspace stopped first, so that it is the last), 2 the
        restore on the target with keys, home and host key, 3 the check that it answers the
        gateway with its host key, 4 the front door switched, 5 the source's copy removed.
        A source that is not in the people file any more is lost: its people come back from
        their last backup in the repository, and there is nothing to stop or remove."""
        name, c, remote = move.person, self.compiled, self.remote
        w, port = c.workspace(name), c.after[name].port
        source, target = self.address(move.source), self.address(move.target)
        taken: dict[str, Backup] = {}

        def last_backup() -> None:
            if source is not None:
                remote.stop(source, w)
                taken.update(self.repository.take(remote, source, [name]))
                return
            try:
                taken[name] = self.repository.latest(remote, target, name, move.source)
            except UnitgenError as problem:
                raise BadInput(f"{move.source} is gone and no backup of {name} could be read "
                               f"({problem}); see: unitgen fleet backup") from None

        def restore() -> None:
            remote.clear(target, name)
            remote.add(target, name)
            self.repository.deliver(remote, taken[name], target)
            remote.start(target, w)

        return [
            Step("last backup", last_backup,
                 (lambda: remote.start(source, w)) if source is not None else None),
            Step("restore on the target", restore, lambda: remote.clear(target, name)),
            Step("check it answers", lambda: remote.answers(target, port,
                                                            taken[name].host_key)),
            self.switch_step(name, Locked(move.target, port), c.before[name]),
            *([Step("remove from the source", lambda: remote.remove(
                source, name, purge=True, final_backup=False))] if source is not None else []),
        ]

    def cleanup(self, name: str, step: Step) -> None:
        """After the switch the person works on the target: a failure to tidy the source is
        reported, and their data there is kept."""
        try:
            step.do()
        except UnitgenError as problem:
            self.say(f"{name}: {step.name} failed ({problem}); they work on their new host, "
                     "and their copy on the old one is still there")
            self.result.leftovers.append(f"{name}: {problem}")
            return
        self.say(f"{name}: {step.name}: done")

    def arrive(self, move: Move) -> None:
        """A newcomer: added on their host and started, checked, then let in at the door."""
        name, c, remote = move.person, self.compiled, self.remote
        target, port = self.address(move.target), c.after[move.person].port
        w = c.workspace(name)

        def add() -> None:
            remote.add(target, name)
            remote.start(target, w)

        run_steps(name, [
            Step("add on the target", add, lambda: remote.clear(target, name, purge=False)),
            Step("check it answers", lambda: remote.answers(target, port, None)),
            self.switch_step(name, c.after[name], None),
        ], self.say, f"{name} is not let in yet")

    def leave(self, move: Move) -> None:
        """Someone who left the file: out of the door first, then removed from their host
        with a final backup, their data kept there (unitgen remove)."""
        name, source = move.person, self.address(move.source)
        run_steps(name, [self.switch_step(name, None, self.compiled.before[name])], self.say,
                  f"{name} keeps their place on {move.source}")
        if source is not None:
            self.cleanup(name, Step("remove from the host", lambda: self.remote.remove(
                source, name, purge=False, final_backup=True)))


# ---- backups and status over the fleet ---------------------------------------------------

def backup(compiled: Compiled, remote: Remote, repository: Repository, people: list[str],
           say: Say) -> dict[str, Backup]:
    """A backup of each person now, on their host, into the repository; hosts at once."""
    unknown = sorted(set(people) - set(compiled.before))
    if unknown:
        raise BadInput(f"{unknown[0]} is not in the lock; see: unitgen fleet plan")
    hosts = {h.name for h in compiled.fleet.hosts}
    gone = sorted(n for n in people if compiled.before[n].host not in hosts)
    if gone:
        raise BadInput(f"{gone[0]}'s host {compiled.before[gone[0]].host} is not in the people "
                       "file, so it cannot be reached; run unitgen fleet apply to restore them")
    chosen = people or sorted(n for n, at in compiled.before.items() if at.host in hosts)
    by_host: dict[str, list[str]] = {}
    for name in chosen:
        by_host.setdefault(compiled.before[name].host, []).append(name)
    made: dict[str, Backup] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(by_host))) as pool:
        found = {host: pool.submit(repository.take, remote, compiled.address(host), names)
                 for host, names in sorted(by_host.items())}
    problems = []
    for host, future in found.items():
        try:
            made.update(future.result())
        except UnitgenError as problem:
            problems.append(f"{host}: {problem}")
    for name, taken in sorted(made.items()):
        say(f"{name}: snapshot {taken.snapshot} of {taken.host}")
    if problems:
        raise Failed(f"the backup failed on {'; '.join(problems)}")
    return made


def host_status(remote: Remote, compiled: Compiled, host: str) -> dict:
    """One host's `unitgen status --json`, or why it did not answer."""
    address = compiled.address(host)
    expected = sorted(n for n, at in compiled.before.items() if at.host == host)
    row = {"host": host, "address": address, "answered": False, "error": None,
           "expected": len(expected), "summary": None, "workspaces": [], "missing": [],
           "unexpected": []}
    done = remote.transport.run(address, ["env", f"PATH={PATH}", "unitgen", "status",
                                          "--json"], timeout=60)
    try:
        found = json.loads(done.stdout) if done.code == 0 else None
    except ValueError:
        found = None
    if found is None:
        row["error"] = done.why() if done.code else "unitgen status printed no JSON"
        return row
    names = sorted(w["user"] for w in found["workspaces"])
    row.update(answered=True, summary=found["summary"], workspaces=found["workspaces"],
               missing=sorted(set(expected) - set(names)),
               unexpected=sorted(set(names) - set(expected)))
    return row


def gateway_status(remote: Remote, compiled: Compiled) -> dict:
    """Whether the gateway's names and keys are those the lock gives."""
    address = compiled.fleet.gateway.address
    want = gateway_files(compiled, compiled.before)
    row = {"host": "gateway", "address": address, "answered": False, "error": None,
           "in_step": None}
    try:
        found = {path: remote.read(address, path).decode(errors="replace")
                 for path in (HOSTS, JUMP_KEYS)}
    except UnitgenError as problem:
        row["error"] = str(problem)
        return row
    row.update(answered=True, in_step=all(found[p] == want[p].text for p in found))
    return row


def status(compiled: Compiled, remote: Remote) -> dict:
    """Every host's status and the gateway's, asked at once."""
    hosts = [h.name for h in compiled.fleet.hosts]
    with ThreadPoolExecutor(max_workers=len(hosts) + 1) as pool:
        rows = [pool.submit(host_status, remote, compiled, h) for h in hosts]
        door = pool.submit(gateway_status, remote, compiled)
        return {"hosts": [r.result() for r in rows], "gateway": door.result()}


def _mib(size: int | None) -> str:
    return "-" if size is None else f"{size / (1 << 20):.0f}M"


def status_lines(found: dict, lock_name: str) -> list[str]:
    lines = [f"{'HOST':<16} {'ADDRESS':<24} {'PEOPLE':>6} {'RUNNING':>7} {'IDLE':>4} "
             f"{'FAILED':>6} {'STOPPED':>7} {'MEMORY':>7}  NOTE"]
    for row in found["hosts"]:
        head = f"{row['host']:<16} {row['address']:<24}"
        if not row["answered"]:
            lines.append(f"{head} {'-':>6} {'-':>7} {'-':>4} {'-':>6} {'-':>7} {'-':>7}  "
                         f"did not answer: {row['error']}")
            continue
        s = row["summary"]
        notes = ([f"not there: {', '.join(row['missing'])}"] if row["missing"] else []) + \
            ([f"not in {lock_name}: {', '.join(row['unexpected'])}"] if row["unexpected"]
             else [])
        lines.append(f"{head} {len(row['workspaces']):>6} {s['running']:>7} {s['idle']:>4} "
                     f"{s['failed']:>6} {s['stopped']:>7} {_mib(s['memory']):>7}  "
                     + ("; ".join(notes) or "as locked"))
    door = found["gateway"]
    state = (f"did not answer: {door['error']}" if not door["answered"] else
             f"in step with {lock_name}" if door["in_step"] else
             "out of step with the lock; run: unitgen fleet apply")
    lines.append(f"{'gateway':<16} {door['address']:<24} {'':>6} {'':>7} {'':>4} {'':>6} "
                 f"{'':>7} {'':>7}  {state}")
    return lines
