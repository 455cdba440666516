"""A host as close to Fedora CoreOS as this machine allows (no Python, /usr/local in /var,
dockerd with Fedora's flags and live-restore), provisioned by the real Ignition binary from
`unitgen ignition --variant fcos` and rebooted. Then day two as the admin has it there: every
command at a login shell, through the wrapper that Ignition installed, which runs unitgen
from its CLI image."""

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.lab import backup
from tests.lab.host import PREFIX, Host, build_workspace_image, run, ssh, wait_ssh

TOP = Path(__file__).parents[2]
UNITGEN = str(TOP / ".venv/bin/unitgen")
FCOS_IMAGE = "wormhole-lab/fcos:1"
CLI_IMAGE = f"{PREFIX}unitgen:test"
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
    """The host the config is for, provisioned and rebooted: ida always on, jon on demand."""
    folder = tmp_path_factory.mktemp("provision")
    people = {name: make_key(name) for name in ("ida", "jon")}
    admin = make_key("admin")
    lines = ["[defaults]", f'cli_image = "{CLI_IMAGE}"', 'update_window = "Sun 03:00 2h"', "",
             "[firewall]", "enabled = true", "", "[admin]", f'keys = ["{public(admin)}"]']
    for name, key in people.items():
        lines += ["", f"[people.{name}]", f'keys = ["{public(key)}"]']
    lines += ["on_demand = true"]  # the last person, jon, works on demand
    source = folder / "people.toml"
    source.write_text("\n".join(lines) + "\n")
    config = folder / "host.ign"
    run(UNITGEN, "ignition", "--variant", "fcos", "--from", str(source), "--out", str(config))
    run(UNITGEN, "image", "build", "--cli", "--tag", CLI_IMAGE, timeout=900)
    build_workspace_image()
    backup.build_images()
    host = Host.start(f"{PREFIX}fcos-{os.getpid()}", image=FCOS_IMAGE)
    try:
        assert host.exec("sh", "-c", "command -v python3", check=False).returncode != 0
        run("docker", "cp", IGNITION, f"{host.name}:/usr/local/bin/ignition")
        run("docker", "cp", str(config), f"{host.name}:/root/host.ign")
        host.sh(APPLY)
        # What a registry pull would do on a real host: this lab has no registry.
        host.load_image()
        host.load_image(CLI_IMAGE)
        backup.load_backup_image(host)
        host.reboot()
        yield host, config, people, admin
    finally:
        host.destroy()


def admin(host: Host, command: str, check: bool = True) -> subprocess.CompletedProcess:
    """A command at the admin's login shell, in their home."""
    return host.exec("bash", "-lc", f"cd /root && {command}", check=check)


def port_of(host: Host, name: str) -> int:
    return json.loads(admin(host, f"unitgen show {name} --json").stdout)["port"]


def test_the_config_is_valid_ignition(fresh):
    _, config, _, _ = fresh
    done = subprocess.run(["ignition-validate", str(config)], capture_output=True, text=True)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_the_first_boot_serves_everyone(fresh):
    host, _, people, admin_key = fresh
    for name, key in people.items():
        record = host.exec("cat", f"/etc/wormhole/people/{name}.toml").stdout
        port = int(record.split("port = ")[1].split()[0])
        done = wait_ssh(host.ip, port, key, timeout=90)
        assert done.returncode == 0, (name, done.stderr)
        assert done.stdout.startswith("uid=1000(user)")
        assert host.exec("systemctl", "is-active", f"wormhole@{name}").stdout == "active\n"
    assert host.exec("systemctl", "is-active", "wormhole-proxy@jon.socket").stdout == "active\n"
    timers = host.exec("systemctl", "list-timers", "--all", "--no-pager").stdout
    assert [name for name in people if f"wormhole-backup@{name}.timer" not in timers] == []
    assert host.exec("systemctl", "is-active", "wormhole-firewall").stdout == "active\n"
    assert "WORMHOLE-FORWARD" in host.exec("iptables", "-S", "DOCKER-USER").stdout
    # Ignition keeps its keys in a drop-in that sshd on Fedora CoreOS and Flatcar reads.
    authorized = host.exec("cat", "/home/core/.ssh/authorized_keys.d/ignition").stdout
    assert public(admin_key) in authorized


def test_the_first_boot_made_each_persons_disk(fresh):
    """Always on or on demand, each person's disk was made at boot, and a running
    workspace's is mounted."""
    host = fresh[0]
    made = host.exec("ls", "/var/lib/wormhole/disks").stdout.split()
    assert {"ida.img", "jon.img"} <= set(made)
    assert host.exec("mountpoint", "-q", "/var/lib/wormhole/disks/ida",
                     check=False).returncode == 0
    rows = {r["user"]: r for r in json.loads(admin(host, "unitgen status --json").stdout)[
        "workspaces"]}
    assert rows["ida"]["disk_cap"] == rows["jon"]["disk_cap"] == 10 << 30
    assert rows["jon"]["disk"] is not None  # read from the image through the wrapper


def test_the_engine_runs_as_fedora_coreos_runs_it(fresh):
    host = fresh[0]
    info = json.loads(host.exec("docker", "info", "--format", "{{json .}}").stdout)
    assert (info["CgroupDriver"], info["LoggingDriver"], info["LiveRestoreEnabled"]) == (
        "systemd", "journald", True)
    assert json.loads(host.exec("cat", "/etc/docker/daemon.json").stdout) == {
        "userland-proxy": False}


def test_the_wrapper_the_cli_image_and_the_update_window_arrived(fresh):
    host = fresh[0]
    assert host.exec("readlink", "/usr/local").stdout.strip() == "../var/usrlocal"
    assert host.exec("test", "-x", "/usr/local/bin/unitgen", check=False).returncode == 0
    assert host.exec("systemctl", "is-active", "wormhole-cli").stdout == "active\n"
    assert f"WORMHOLE_CLI_IMAGE={CLI_IMAGE}" in host.exec("cat", "/etc/wormhole/cli.env").stdout
    zincati = host.exec("cat", "/etc/zincati/config.d/55-wormhole-updates.toml").stdout
    assert 'strategy = "periodic"' in zincati and 'days = ["Sun"]' in zincati
    assert 'start_time = "03:00"' in zincati and "length_minutes = 120" in zincati


def test_day_two_add_then_start_gives_a_login(fresh, make_key):
    host = fresh[0]
    key = make_key("carol")
    host.put("/root/carol.pub", public(key) + "\n")
    admin(host, "unitgen add carol carol.pub && systemctl start wormhole@carol")
    done = wait_ssh(host.ip, port_of(host, "carol"), key, timeout=90)
    assert done.returncode == 0 and done.stdout.startswith("uid=1000(user)"), done.stderr


def test_day_two_views_work_as_on_a_host_with_python(fresh):
    host = fresh[0]
    rows = json.loads(admin(host, "unitgen status --json").stdout)
    carol = next(r for r in rows["workspaces"] if r["user"] == "carol")
    assert (carol["unit"], carol["container"]) == ("active (running)", "running")
    assert carol["memory"] and carol["pids"]  # the host's cgroup files, read from the image
    assert [r["user"] for r in json.loads(admin(host, "unitgen list --json").stdout)] == [
        "carol", "ida", "jon"]
    assert "ssh -p" in admin(host, "unitgen show carol").stdout
    assert "Started" in admin(host, "unitgen logs carol").stdout
    checks = json.loads(admin(host, "unitgen doctor --json", check=False).stdout)
    assert [c for c in checks if c["level"] == "fail"] == []


def test_day_two_keys_rotate_without_a_restart(fresh, make_key):
    host = fresh[0]
    old, new = make_key("carol"), make_key("carol2")
    host.put("/root/carol2.pub", public(new) + "\n")
    admin(host, "unitgen key add carol /root/carol2.pub")
    port = port_of(host, "carol")
    assert ssh(host.ip, port, new, "id").returncode == 0
    fingerprint = admin(host, "unitgen key list carol").stdout.split()[0]
    admin(host, f"unitgen key remove carol {fingerprint}")
    assert ssh(host.ip, port, old, "id").returncode != 0
    assert ssh(host.ip, port, new, "id").returncode == 0


def test_day_two_set_backup_restore_and_firewall(fresh, make_key):
    host, key = fresh[0], make_key("carol2")
    admin(host, "unitgen set carol --memory 1G --restart")
    limit = host.exec("docker", "inspect", "--format", "{{.HostConfig.Memory}}",
                      "wormhole-carol").stdout.strip()
    assert limit == str(1 << 30)
    port = port_of(host, "carol")
    assert ssh(host.ip, port, key, "echo kept > ~/note").returncode == 0
    # restic through the wrapper: the backup unit, then unitgen's own restic containers.
    said = admin(host, "unitgen backup carol").stdout.strip().splitlines()[-1]
    assert said.startswith("[1/1] carol: snapshot "), said
    snapshot = said.split()[-1]
    modes = host.sh("stat -c '%a %U' /etc/wormhole/restic /etc/wormhole/restic/password").stdout
    assert modes.split("\n")[:2] == ["700 root", "600 root"]
    listed = json.loads(admin(host, "unitgen snapshots carol --json").stdout)
    assert [s["short_id"] for s in listed] == [snapshot]
    assert ssh(host.ip, port, key, "rm ~/note").returncode == 0
    restored = admin(host, "unitgen restore carol").stdout
    assert f"restored carol from snapshot {snapshot}" in restored
    assert wait_ssh(host.ip, port, key).returncode == 0
    assert ssh(host.ip, port, key, "cat ~/note").stdout == "kept\n"
    assert "firewall on" in admin(host, "unitgen firewall").stdout


def test_day_two_upgrade_to_a_new_image_tag(fresh, make_key):
    host = fresh[0]
    host.exec("docker", "tag", "wormhole:latest", "wormhole:2")
    admin(host, "unitgen upgrade carol --image wormhole:2")
    image = host.exec("docker", "inspect", "--format", "{{.Config.Image}}",
                      "wormhole-carol").stdout.strip()
    assert image == "wormhole:2"
    assert wait_ssh(host.ip, port_of(host, "carol"), make_key("carol2")).returncode == 0


def test_day_two_bad_input_is_one_line_and_changes_nothing(fresh):
    host = fresh[0]
    host.put("/root/bad.pub", "ssh-ed25519 not*base64 bad@x\n")
    state = "find /etc/wormhole /etc/systemd/system -printf '%p %s %T@\\n' | sort; docker ps -aq"
    before = host.sh(state).stdout
    done = admin(host, "unitgen add zed bad.pub", check=False)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == "unitgen: error: bad.pub:1: the key data is not valid base64; copy " \
                          "the whole line from the .pub file\n"
    assert host.sh(state).stdout == before


def test_two_wrapper_runs_at_once_take_turns_on_the_hosts_lock(fresh):
    host = fresh[0]
    host.sh("cp /root/carol2.pub /root/dee.pub && sed -i 's/carol2/dee/' /root/dee.pub")
    spans = {}

    def timed(name: str, command: str) -> None:
        started = time.monotonic()
        done = admin(host, command, check=False)
        spans[name] = (started, time.monotonic(), done.returncode)

    # While the host's own flock holds / (the lock unitgen takes), no wrapper run proceeds.
    holder = subprocess.Popen(["docker", "exec", host.name, "flock", "/", "sleep", "4"])
    time.sleep(0.5)
    runs = [threading.Thread(target=timed, args=(n, c)) for n, c in (
        ("list", "unitgen list --json"), ("set", "unitgen set carol --pids 512"))]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join()
    holder.wait()
    assert [code for _, _, code in spans.values()] == [0, 0]
    assert min(end for _, end, _ in spans.values()) - min(s for s, _, _ in spans.values()) > 3


def test_day_two_remove_purge(fresh):
    host = fresh[0]
    out = admin(host, "unitgen remove carol --purge --yes").stdout
    assert "removed carol" in out and "deleted: /var/lib/wormhole/disks/carol" in out
    assert not [e for e in host.exec("ls", "/var/lib/wormhole/disks").stdout.split()
                if e.startswith("carol")]
