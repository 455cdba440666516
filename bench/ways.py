"""The ways of running the same workspaces, each with how it is set up, started,
checked for failed starts, and thinned to one running workspace."""

import json
import statistics
import time
from abc import ABC, abstractmethod

from bench.lab import REMOTE, probe
from tests.lab.host import Host
from unitgen.model import Settings

PEOPLE = f"{REMOTE}/people"
FIRST_PORT = 2200
UNIT_DIR = "/etc/systemd/system"
STATUS_RUNS = 5
SHOW_TRIES = 6
SHOW_PAUSE = 10  # s
PUBLISH = 'publish_address = "127.0.0.1"\n'
LANES = Settings().start_lanes

# Each person's key file and port, for the seed loop and the attached units.
WRITE_PEOPLE = """
set -e
mkdir -p "$1/env"
while read -r name port; do
  mkdir -p "$1/keys/$name"
  printf '%s\\n' "$2" >"$1/keys/$name/authorized_keys"
  echo "PORT=$port" >"$1/env/$name.env"
  echo "$name $port" >>"$1/list"
done
"""

Person = tuple[str, int]


def people(n: int) -> list[Person]:
    """p001... (wider past 999, so that name order stays port order), ports 2200 up."""
    width = max(3, len(str(n)))
    return [(f"p{i:0{width}d}", FIRST_PORT + i - 1) for i in range(1, n + 1)]


def write_people(host: Host, everyone: list[Person], key: str) -> None:
    lines = "".join(f"{name} {port}\n" for name, port in everyone)
    host.exec("sh", "-c", WRITE_PEOPLE, "sh", PEOPLE, key, input=lines)


def people_file(everyone: list[Person], key: str, extra: str = "") -> str:
    """unitgen's people file: one [people.NAME] table each, with the `extra` lines;
    unitgen allocates the ports."""
    return "".join(f'[people.{name}]\nkeys = ["{key}"]\n{extra}\n' for name, _ in everyone)


def register(host: Host, everyone: list[Person], key: str, config: str,
             extra: str = "") -> dict:
    """Write the config, then time `unitgen add --from` with everyone (each table with the
    `extra` lines), and check that unitgen gave them ports 2200 up in name order."""
    host.put("/etc/wormhole/wormhole.toml", config)
    host.put(f"{PEOPLE}/people.toml", people_file(everyone, key, extra))
    added = probe(host, "time", "--", "unitgen", "add", "--from", f"{PEOPLE}/people.toml",
                  timeout=600 + 2 * len(everyone))["runs"][0]
    if added["status"]:
        raise RuntimeError(f"unitgen add --from failed: {added['stderr']}")
    rows = listed(host.unitgen("list", "--json").stdout)
    ports = sorted((row["user"], row["port"]) for row in rows)
    if ports != everyone:
        raise RuntimeError(f"unitgen allocated other ports than 2200 up: {ports}")
    return {"add_seconds": added["seconds"]}


def units(prefix: str, everyone: list[Person]) -> list[str]:
    return [f"{prefix}{name}.service" for name, _ in everyone]


def show_units(host: Host, names: list[str]) -> str:
    """`systemctl show` of the units, asked again while systemd is too busy to answer its
    bus within the client's timeout (seen with 500 attached clients starting at once)."""
    command = ["systemctl", "show", "--property=Id,ActiveState,NRestarts", "--", *names]
    for _ in range(SHOW_TRIES - 1):
        done = host.exec(*command, check=False)
        if done.returncode == 0:
            return done.stdout
        time.sleep(SHOW_PAUSE)
    return host.exec(*command).stdout


def unit_failures(host: Host, prefix: str, everyone: list[Person]) -> list[str]:
    """People whose unit is not active, or was restarted by systemd at least once (a start
    that timed out, or a workspace that died during the start)."""
    text = show_units(host, units(prefix, everyone))
    failed = []
    for block in text.strip().split("\n\n"):
        values = dict(line.split("=", 1) for line in block.splitlines())
        if values["ActiveState"] != "active" or values["NRestarts"] != "0":
            failed.append(values["Id"].removeprefix(prefix).removesuffix(".service"))
    return failed


def listed(text: str) -> list:
    """The workspaces in the JSON of `unitgen status` ({"workspaces": [...], ...}) or of
    `unitgen list` ([...])."""
    found = json.loads(text)
    return found["workspaces"] if isinstance(found, dict) else found


class Way(ABC):
    name = ""
    supervisor = ""  # the prefix of the units whose processes supervise a workspace
    start: tuple[str, ...] = ()

    def prepare(self, host: Host, everyone: list[Person], key: str) -> dict:
        """Set the way up for everyone, without starting anything; return figures."""
        return {}

    @abstractmethod
    def failures(self, host: Host, everyone: list[Person], output: str) -> list[str]:
        """The people whose start failed, from the host and the start command's output."""

    @abstractmethod
    def keep_one(self, host: Host, everyone: list[Person]) -> None:
        """Stop every workspace but the first."""

    def figures(self, host: Host, everyone: list[Person]) -> dict:
        """The way's own figures, taken with everyone running."""
        return {}


class Supervised(Way):
    """A way whose workspaces are systemd units named SUPERVISOR + NAME + .service."""

    def failures(self, host: Host, everyone: list[Person], output: str) -> list[str]:
        return unit_failures(host, self.supervisor, everyone)

    def keep_one(self, host: Host, everyone: list[Person]) -> None:
        host.exec("systemctl", "stop", *units(self.supervisor, everyone[1:]), timeout=1800)


class Unitgen(Supervised):
    name = "unitgen"
    supervisor = "wormhole@"
    start = ("systemctl", "start", "wormhole.target")

    def prepare(self, host: Host, everyone: list[Person], key: str) -> dict:
        # The admin's config: publish on 127.0.0.1, as the seed loop does. Then the hold
        # sockets listen, as sockets.target has them at boot before the workspaces start.
        figures = register(host, everyone, key, PUBLISH)
        host.exec("systemctl", "start", "sockets.target")
        return figures

    def figures(self, host: Host, everyone: list[Person]) -> dict:
        """The wall time of `unitgen status --json`, or of `unitgen list --json` while
        unitgen has no status command."""
        has_status = host.unitgen("status", "--help", check=False).returncode == 0
        command = ["unitgen", "status" if has_status else "list", "--json"]
        runs = probe(host, "time", "--repeat", str(STATUS_RUNS), "--", *command)["runs"]
        for done in runs:
            if done["status"] or len(listed(done["stdout"])) != len(everyone):
                raise RuntimeError(f"{' '.join(command)} failed: {done['stderr']}")
        seconds = [done["seconds"] for done in runs]
        return {"status": {"command": " ".join(command), "runs_s": seconds,
                           "median_s": statistics.median(seconds)}}


class UnitgenVolumes(Unitgen):
    """unitgen as before disk caps: every home and host key on two Docker volumes (each
    person recorded with on_volumes = true), so that the cost of the disks shows beside
    the unitgen way, whose people each have a disk."""

    name = "unitgen-volumes"

    def prepare(self, host: Host, everyone: list[Person], key: str) -> dict:
        figures = register(host, everyone, key, PUBLISH, extra="on_volumes = true\n")
        host.exec("systemctl", "start", "sockets.target")
        return figures


class Seed(Way):
    name = "seed"
    start = ("sh", "-c", f"sh {REMOTE}/seed.sh <{PEOPLE}/list")

    def failures(self, host: Host, everyone: list[Person], output: str) -> list[str]:
        """Runs that failed, and containers not running or restarted by the engine."""
        shown = host.sh("docker ps --all --quiet | xargs --no-run-if-empty docker inspect "
                        "--format '{{.Name}} {{.State.Running}} {{.RestartCount}}'").stdout
        healthy = {name.lstrip("/").removeprefix("wormhole-")
                   for name, running, restarts in map(str.split, shown.splitlines())
                   if running == "true" and restarts == "0"}
        return sorted(set(output.split()) | {n for n, _ in everyone if n not in healthy})

    def keep_one(self, host: Host, everyone: list[Person]) -> None:
        host.exec("docker", "rm", "--force", *(f"wormhole-{name}" for name, _ in everyone[1:]),
                  timeout=1800)


class Parallel(Seed):
    """The seed's runs, LANES at a time and still without systemd: what the engine and the
    cores give when nothing supervises and nothing waits."""

    name = "parallel"
    start = ("sh", "-c", f"xargs -P {LANES} -L 1 sh {REMOTE}/seed.sh <{PEOPLE}/list")


class Attached(Supervised):
    name = "attached"
    supervisor = "bench-attached@"
    start = ("systemctl", "start", "bench-attached.target")

    def prepare(self, host: Host, everyone: list[Person], key: str) -> dict:
        host.exec("cp", f"{REMOTE}/bench-attached@.service", f"{REMOTE}/bench-attached.target",
                  f"{UNIT_DIR}/")
        host.exec("systemctl", "enable", *units(self.supervisor, everyone))
        return {}


WAYS = {way.name: way for way in (Unitgen(), Seed(), Parallel(), Attached(),
                                   UnitgenVolumes())}
DEFAULT = ("unitgen", "seed", "parallel", "attached")  # unitgen-volumes when asked for
