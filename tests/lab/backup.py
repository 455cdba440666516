"""Backups in the lab: the backup image as `unitgen image build --backup` builds it, and a
remote restic repository served by `rclone serve restic` behind HTTP basic auth, in a
container of the test's own on a network of the test's own, which lab hosts join.

    server = RepoServer(PREFIX).start()      # then server.connect(host)
    host.put("/etc/wormhole/restic/repository", server.url + "\\n")

Every container, network and image is named from the prefix (WORMHOLE_LAB_PREFIX, default
"wormhole-lab-"); `destroy()` removes the server, its data and its network.
"""

import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from tests.lab.host import PREFIX, TOP, Host, run

USER = "wormhole"
PORT = 8000
BACKUP_IMAGE = f"{PREFIX}backup:test"  # on the outer engine
REPO_IMAGE = f"{PREFIX}repo:test"
HOST_BACKUP_IMAGE = "wormhole-backup:latest"  # the config's default, inside a lab host


def build_images() -> None:
    """The backup image as an admin builds it, and the repository server's."""
    run(str(TOP / ".venv/bin/unitgen"), "image", "build", "--backup", "--tag", BACKUP_IMAGE,
        timeout=900)
    run("docker", "build", "-q", "-t", REPO_IMAGE, str(TOP / "tests/lab/repo"), timeout=900)


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
        self.subnet = f"10.{200 + os.getpid() % 50}.{os.getpid() % 250}.0/24"
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
        run("docker", "network", "create", "--subnet", self.subnet, self.network)
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
