"""Fixtures for the system layer: one real systemd + Docker host shared by the session."""

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.lab import backup
from tests.lab.host import PREFIX, Host, build_wheels, build_workspace_image, wait_ssh


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.system)


@pytest.fixture(scope="session")
def host(tmp_path_factory) -> Host:
    wheels = build_wheels(tmp_path_factory.mktemp("wheels"))
    build_workspace_image()
    backup.build_images()
    lab = Host.start(f"{PREFIX}test-{os.getpid()}")
    try:
        lab.load_image()
        backup.load_backup_image(lab)
        lab.install_unitgen(wheels)
        yield lab
    finally:
        lab.destroy()


@pytest.fixture(scope="session")
def make_key(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")

    def make(name: str) -> Path:
        key = folder / name
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name,
                            "-f", str(key)], check=True)
        return key

    return make


@dataclass
class Workspace:
    host: Host
    name: str
    key: Path
    port: int

    @property
    def unit(self) -> str:
        return f"wormhole@{self.name}.service"

    @property
    def container(self) -> str:
        return f"wormhole-{self.name}"

    def login(self, timeout: float = 60) -> subprocess.CompletedProcess:
        return wait_ssh(self.host.ip, self.port, self.key, timeout)


@pytest.fixture(scope="session")
def add(host, make_key):
    """Add a person the way the README says, `unitgen add NAME KEY && systemctl start ...`."""

    def add_person(name: str, *options: str, start: bool = True) -> Workspace:
        key = make_key(name)
        host.put(f"/root/{name}.pub", key.with_suffix(".pub").read_text())
        host.unitgen("add", name, f"/root/{name}.pub", *options)
        if start:
            host.exec("systemctl", "start", f"wormhole@{name}")
        port = json.loads(host.unitgen("show", name, "--json").stdout)["port"]
        return Workspace(host, name, key, port)

    return add_person
