"""Backups in the lab: the backup image as `unitgen image build --backup` builds it, and a
remote restic repository served by `rclone serve restic` behind HTTP basic auth, in a
container of the test's own on a network of the test's own, which lab hosts join.

    server = RepoServer(PREFIX).start()      # then server.connect(host)
    host.put("/etc/wormhole/restic/repository", server.url + "\\n")

Every container, network and image is named from the prefix (WORMHOLE_LAB_PREFIX, default
"wormhole-lab-"); `destroy()` removes the server, its data and its network. `Runner` runs
the backup unit's restic containers on the outer engine against a server, for the
benchmarks.
"""

import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from tests.lab.host import PREFIX, TOP, Host, one_builder, run
from unitgen import names, render, restic

USER = "wormhole"
PORT = 8000
BACKUP_IMAGE = f"{PREFIX}backup:test"  # on the outer engine
REPO_IMAGE = f"{PREFIX}repo:test"
HOST_BACKUP_IMAGE = "wormhole-backup:latest"  # the config's default, inside a lab host


def build_images() -> None:
    """The backup image as an admin builds it, and the repository server's."""
    with one_builder():
        run(str(TOP / ".venv/bin/unitgen"), "image", "build", "--backup", "--tag", BACKUP_IMAGE,
            timeout=900)
        run("docker", "build", "-q", "-t", REPO_IMAGE, str(TOP / "tests/lab/repo"),
            timeout=900)


def load_backup_image(host: Host) -> None:
    """Into a lab host's own engine, under the tag the config names by default."""
    host.load_image(BACKUP_IMAGE)
    host.exec("docker", "tag", BACKUP_IMAGE, HOST_BACKUP_IMAGE)


class RepoServer:
    """`rclone serve restic` on a network of its own; `size` (e.g. "300m") keeps its data in
    a tmpfs that small, a remote that fills up."""

    def __init__(self, name: str, size: str | None = None) -> None:
        self.name = f"{PREFIX}{name}"
        self.network = f"{self.name}-net"
        self.size = size
        self.subnet = ""  # chosen by start()
        self.password = secrets.token_urlsafe(16)
        self.folder = Path(tempfile.mkdtemp(prefix="wormhole-repo-"))

    def start(self) -> "RepoServer":
        htpasswd = run("docker", "run", "--rm", "--entrypoint", "htpasswd", REPO_IMAGE, "-nbB",
                       USER, self.password).stdout
        (self.folder / "htpasswd").write_text(htpasswd)
        (self.folder / "data").mkdir()
        run("docker", "network", "rm", self.network, check=False)
        # A subnet no lab host's own engine picks (172.17-31/16, 192.168/20), so that the
        # host can join the network without a clash with its inner bridges.
        # Another lab network may hold a subnet (the system layer's two runs): the next.
        second, third = 200 + os.getpid() % 50, os.getpid() % 250
        for step in range(250):
            self.subnet = f"10.{second}.{(third + step) % 250}.0/24"
            made = run("docker", "network", "create", "--subnet", self.subnet, self.network,
                       check=False)
            if made.returncode == 0 or "overlap" not in made.stderr:
                break
        if made.returncode:
            raise RuntimeError(f"docker network create {self.network}: {made.stderr}")
        storage = (["--tmpfs", f"/srv/restic:size={self.size}"] if self.size else
                   ["-v", f"{self.folder / 'data'}:/srv/restic"])
        run("docker", "rm", "-f", self.name, check=False)
        run("docker", "run", "-d", "--name", self.name, "--network", self.network, *storage,
            "-v", f"{self.folder / 'htpasswd'}:/etc/rclone/htpasswd:ro", REPO_IMAGE)
        self.wait()
        return self

    def wait(self, starts: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while run("docker", "logs", self.name).stderr.count("Serving restic REST API") < starts:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start serving")
            time.sleep(0.2)

    @property
    def ip(self) -> str:
        return run("docker", "inspect", "--format",
                   f'{{{{(index .NetworkSettings.Networks "{self.network}").IPAddress}}}}',
                   self.name).stdout.strip()

    @property
    def location(self) -> str:
        """What the config names: the URL without its credentials."""
        return f"rest:http://{self.ip}:{PORT}/"

    @property
    def url(self) -> str:
        """What the root-only repository file holds: the URL with its credentials."""
        return f"rest:http://{USER}:{self.password}@{self.ip}:{PORT}/"

    def connect(self, host: Host) -> None:
        run("docker", "network", "connect", self.network, host.name)

    def exec(self, script: str, check: bool = True):
        return run("docker", "exec", self.name, "sh", "-c", script, check=check)

    def stop(self) -> None:
        run("docker", "stop", "--time", "1", self.name)

    def restart(self, starts: int) -> None:
        run("docker", "start", self.name)
        self.wait(starts)

    def destroy(self) -> None:
        run("docker", "rm", "-f", self.name, check=False)
        run("docker", "network", "rm", self.network, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def configure(host: Host, server: RepoServer) -> None:
    """Point a lab host's backups at the server: the config's location and the root-only
    repository file with the credentials (unitgen writes the password at first use)."""
    host.sh(f"mkdir -p /etc/wormhole && touch /etc/wormhole/wormhole.toml && "
            f"sed -i '/^backup_repository = /d' /etc/wormhole/wormhole.toml && "
            f"echo 'backup_repository = \"{server.location}\"' >> /etc/wormhole/wormhole.toml")
    host.sh("install -d -m 0700 /etc/wormhole/restic")
    host.put("/etc/wormhole/restic/repository", server.url + "\n")
    host.sh("chmod 0600 /etc/wormhole/restic/repository")


# The cgroup counters of the container the command ran in (v1, else v2), printed last on
# stderr: what the benchmarks read as a run's CPU time and peak memory.
MEASURED = (
    '/bin/sh /opt/wormhole/wormhole-restic run "$@"; s=$?\n'
    "if [ -r /sys/fs/cgroup/cpuacct/cpuacct.usage ]; then\n"
    "  cpu=$(cat /sys/fs/cgroup/cpuacct/cpuacct.usage)\n"
    "  mem=$(cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes)\n"
    "else\n"
    "  cpu=$(($(sed -n 's/^usage_usec //p' /sys/fs/cgroup/cpu.stat) * 1000))\n"
    "  mem=$(cat /sys/fs/cgroup/memory.peak 2>/dev/null || echo 0)\n"
    "fi\n"
    'echo "cgroup cpu_ns=$cpu mem_max=$mem" >&2\n'
    "exit $s\n"
)


def cgroup_figures(stderr: str) -> dict:
    """The CPU seconds and peak memory MEASURED printed."""
    line = [s for s in stderr.splitlines() if s.startswith("cgroup cpu_ns=")][-1]
    values = dict(part.split("=") for part in line.split()[1:])
    return {"cpu_s": int(values["cpu_ns"]) / 1e9, "mem_max_mib": int(values["mem_max"]) / 2**20}


class Runner:
    """restic containers on the outer engine, against a RepoServer, with the flags that
    wormhole-backup@.service and units/include/restic-run.j2 give them (network, read-only
    root, capabilities, CPU and memory caps, secrets, script): what bench/backup_size.py and
    bench/restic_snapshots.py time without a lab host around them. Each run prints its
    cgroup's CPU time and peak memory (MEASURED)."""

    def __init__(self, server: RepoServer) -> None:
        self.server = server
        self.folder = server.folder
        self.secrets = self.folder / "secrets"
        self.secrets.mkdir(mode=0o700)
        self.write_secret("password", restic.new_password())
        self.write_secret("repository", server.url)
        (self.folder / "libexec").mkdir()
        (self.folder / "libexec" / "wormhole-restic").write_text(render.restic_script())

    def write_secret(self, name: str, value: str) -> None:
        (self.secrets / name).write_text(value + "\n")
        (self.secrets / name).chmod(0o600)

    def flags(self, name: str | None = None, cache: str = "folder") -> list[str]:
        """`cache`: "folder", one kept between runs and shared, as the units keep it;
        "tmpfs", empty at each run; a path, that folder; "" or "none", no /cache at all."""
        env = [f"--env={k}={v}" for k, v in restic.ENVIRONMENT.items()]
        return ["--rm", *(["--name", name] if name else []), "--label", f"{PREFIX}bench=1",
                "--network", self.server.network, "--read-only",
                "--security-opt", "no-new-privileges", "--tmpfs", "/tmp:size=256m",
                *self.cache_flags(cache), "--cpu-shares", "256", "--memory", "512M",
                "--cap-drop", "ALL", "--cap-add", "DAC_READ_SEARCH",
                "--mount", f"type=bind,src={self.secrets},dst={restic.MOUNTED},readonly",
                "--mount", f"type=bind,src={self.folder / 'libexec'},dst=/opt/wormhole,readonly",
                *env]

    def cache_flags(self, cache: str) -> list[str]:
        if cache == "tmpfs":
            return ["--tmpfs", "/cache:size=64m"]
        if cache == "folder":
            cache = str(self.folder / "cache")
            Path(cache).mkdir(mode=0o700, exist_ok=True)
        if cache in ("", "none"):
            return []
        return ["--mount", f"type=bind,src={cache},dst=/cache"]

    def measured(self, *args: str, mounts: tuple[str, ...] = (), name: str | None = None,
                 cache: str = "folder", timeout: float = 900) -> dict:
        """restic ARGS through the units' script: its cgroup figures and its output."""
        done = run("docker", "run", *self.flags(name, cache), *mounts, "--entrypoint",
                   "/bin/sh", BACKUP_IMAGE, "-c", MEASURED, "sh", *args, timeout=timeout)
        return {**cgroup_figures(done.stderr), "stdout": done.stdout}

    def backup(self, user: str, trees: Path, host: str = "bench", cache: str = "folder",
               extra: tuple[str, ...] = ()) -> dict:
        """The backup unit's run for `user`, whose folder `trees` holds home/, hostkeys/
        and person.toml, mounted read-only where the unit mounts them."""
        mounts = tuple(f"--mount=type=bind,src={trees / part},dst="
                       f"{names.backup_path(user, part)},readonly"
                       for part in (*restic.TREES, restic.RECORD))
        figures = self.measured(*restic.backup_command(user, host), *extra, mounts=mounts,
                                name=f"{self.server.name}-backup-{user}", cache=cache)
        del figures["stdout"]
        return figures

    def snapshots(self, *args: str) -> list[restic.Snapshot]:
        listing = self.measured("snapshots", "--json", *args)["stdout"]
        return restic.snapshots(json.loads(listing))
