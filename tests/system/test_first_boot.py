"""A fresh host with systemd, Docker and no Python, provisioned by the real Ignition binary
from `unitgen ignition`, then rebooted: every person logs in, the backup timers are listed,
the firewall is active."""

import os
import subprocess
from pathlib import Path

import pytest

from tests.lab.host import Host, run, wait_ssh

IGNITION = "/usr/lib/dracut/modules.d/30ignition/ignition"
APPLY = """
set -e
# Debian's build of Ignition always relabels what it wrote for SELinux, which this host
# does not have (Fedora CoreOS does): give it a policy name and a relabeler that does nothing.
mkdir -p /etc/selinux && printf "SELINUX=disabled\\nSELINUXTYPE=targeted\\n" > /etc/selinux/config
printf '#!/bin/sh\\nexit 0\\n' > /usr/local/sbin/setfiles && chmod 0755 /usr/local/sbin/setfiles
mkdir -p /run/ign && cd /run/ign
IGNITION_CONFIG_FILE=/root/host.ign ignition -platform file -stage fetch-offline \
  -log-to-stdout -config-cache cache.json -state-file state.json -neednet neednet
ignition -platform file -stage files -root / -log-to-stdout -config-cache cache.json \
  -state-file state.json
"""


def public(key: Path) -> str:
    return key.with_suffix(".pub").read_text().strip()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, make_key):
    """The host the config is for: the same systemd + Docker host, without python3."""
    folder = tmp_path_factory.mktemp("provision")
    people = {name: make_key(name) for name in ("ida", "jon")}
    admin = make_key("admin")
    lines = ["[firewall]", "enabled = true", "", "[admin]", f'keys = ["{public(admin)}"]']
    for name, key in people.items():
        lines += ["", f"[people.{name}]", f'keys = ["{public(key)}"]']
    lines += ["on_demand = true"]  # the last person, jon, works on demand
    source = folder / "people.toml"
    source.write_text("\n".join(lines) + "\n")
    config = folder / "host.ign"
    run(str(Path(__file__).parents[2] / ".venv/bin/unitgen"), "ignition", "--from", str(source),
        "--out", str(config))
    host = Host.start(f"wormhole-lab-fresh-{os.getpid()}", image="wormhole-lab/host-base:1")
    try:
        yield host, config, people, admin
    finally:
        host.destroy()


def test_the_config_is_valid_ignition(fresh):
    _, config, _, _ = fresh
    done = subprocess.run(["ignition-validate", str(config)], capture_output=True, text=True)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_ignition_provisions_a_host_that_serves_everyone_after_a_reboot(fresh):
    host, config, people, admin = fresh
    assert host.exec("sh", "-c", "command -v python3", check=False).returncode != 0
    run("docker", "cp", IGNITION, f"{host.name}:/usr/local/bin/ignition")
    run("docker", "cp", str(config), f"{host.name}:/root/host.ign")
    host.sh(APPLY)
    # What a registry pull would do on a real host: this lab has no registry.
    host.load_image()
    host.reboot()

    for name, key in people.items():
        record = host.exec("cat", f"/etc/wormhole/people/{name}.toml").stdout
        port = int(record.split("port = ")[1].split()[0])
        done = wait_ssh(host.ip, port, key, timeout=90)
        assert done.returncode == 0, (name, done.stderr)
        assert done.stdout.startswith("uid=1000(user)")
        assert host.exec("systemctl", "is-active", f"wormhole@{name}").stdout == "active\n"
    assert host.exec("systemctl", "is-active", "wormhole-proxy@jon.socket").stdout == "active\n"
    timers = host.exec("systemctl", "list-timers", "--all", "--no-pager").stdout
    assert all(f"wormhole-backup@{name}.timer" in timers for name in people)
    assert host.exec("systemctl", "is-active", "wormhole-firewall").stdout == "active\n"
    assert "WORMHOLE-FORWARD" in host.exec("iptables", "-S", "DOCKER-USER").stdout
    driver = host.exec("docker", "info", "--format", "{{.CgroupDriver}}").stdout.strip()
    assert driver == "systemd"
    # Ignition keeps its keys in a drop-in that sshd on Fedora CoreOS and Flatcar reads.
    authorized = host.exec("cat", "/home/core/.ssh/authorized_keys.d/ignition").stdout
    assert public(admin) in authorized
