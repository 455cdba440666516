"""A workspace end to end on a real systemd host with a real engine, sshd and ssh client."""

import json
import time

import pytest

from tests.lab.host import host_key, ssh, wait

GIB = 1 << 30


@pytest.fixture(scope="module")
def alice(add):
    return add("alice")


def test_add_then_start_gives_a_key_login_as_user(host, alice):
    done = alice.login()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("uid=1000(user) gid=1000(user)")
    assert host.exec("systemctl", "is-enabled", alice.unit).stdout.strip() == "enabled"
    wait(lambda: "Accepted publickey for user" in host.exec(
        "journalctl", "-u", alice.unit, "--no-pager").stdout, 10, "the login in the journal")


def test_home_is_seeded_and_bashrc_shows_the_git_branch(host, alice):
    done = ssh(host.ip, alice.port, alice.key,
               "mkdir -p ~/src && cd ~/src && git init -q && "
               "bash -ic 'echo \"$PS1\" | grep -c __git_ps1; __git_ps1 %s' 2>/dev/null")
    assert done.stdout.split()[:2] == ["1", "main"], done.stdout + done.stderr


def test_other_keys_passwords_and_root_are_refused(host, alice, make_key):
    stranger = make_key("stranger")
    refused = [
        ssh(host.ip, alice.port, stranger, "id"),
        ssh(host.ip, alice.port, alice.key, "id", "-o", "PubkeyAuthentication=no",
            "-o", "PreferredAuthentications=password,keyboard-interactive"),
        ssh(host.ip, alice.port, alice.key, "id", user="root"),
    ]
    for done in refused:
        assert done.returncode == 255
        assert "Permission denied (publickey)" in done.stderr
        assert "uid=" not in done.stdout


def test_nobody_becomes_root_and_nothing_is_forwarded(host, alice):
    done = ssh(host.ip, alice.port, alice.key,
               "command -v sudo; su -c id root </dev/null; echo su=$?; "
               "find / -xdev -perm /6000 -type f 2>/dev/null | wc -l")
    assert "su=1" in done.stdout
    assert done.stdout.split()[-1] == "0"
    forwarded = ssh(host.ip, alice.port, alice.key, "true", "-o", "ExitOnForwardFailure=yes",
                    "-L", "127.0.0.1:0:127.0.0.1:22")
    assert forwarded.returncode == 255


def test_memory_cap_binds_inside_the_workspace(host, alice):
    config = host.container(alice.container)["HostConfig"]
    assert config["Memory"] == 512 << 20
    assert config["MemorySwap"] == 512 << 20
    assert config["PidsLimit"] == 1024
    # tail keeps all of its input when there is no newline: 600 MB in memory.
    hog = ssh(host.ip, alice.port, alice.key, "head -c 600M /dev/zero | tail; echo status=$?")
    assert "status=137" in hog.stdout, hog.stdout + hog.stderr
    assert alice.login(timeout=30).returncode == 0


def test_a_fork_bomb_stops_at_the_pids_limit(host, alice):
    # perl's fork fails at once at the limit where bash would retry for a long time.
    bomb = ("$| = 1; my $n = 0; for (1 .. 1100) { my $pid = fork(); last unless defined $pid;"
            " if ($pid == 0) { sleep 60; exit 0 } $n++ } print qq(started=$n\\n); kill 9, 0;")
    done = ssh(host.ip, alice.port, alice.key, f"perl -e '{bomb}'")
    started = int(done.stdout.split("started=")[1].split()[0])
    assert 900 < started < 1024, done.stdout
    assert alice.login(timeout=30).returncode == 0


def test_systemd_brings_a_killed_workspace_back(host, alice):
    before = host.container(alice.container)["State"]["StartedAt"]
    restarts = int(host.unit(alice.unit, "NRestarts")["NRestarts"])
    host.exec("docker", "kill", alice.container)
    wait(lambda: int(host.unit(alice.unit, "NRestarts")["NRestarts"]) > restarts, 15,
         "systemd restarted the unit")
    wait(lambda: (host.container(alice.container) or {}).get("State", {}).get("StartedAt",
         before) != before, 30, "a new container runs")
    assert alice.login().returncode == 0


def test_stop_stops_the_container_and_start_keeps_home_and_host_key(host, alice):
    assert ssh(host.ip, alice.port, alice.key, "echo kept > ~/note").returncode == 0
    fingerprint = host_key(host.ip, alice.port)
    host.exec("systemctl", "stop", alice.unit)
    assert host.container(alice.container) is None
    assert host.exec("systemctl", "is-active", alice.unit, check=False).stdout.strip() == \
        "inactive"
    host.exec("systemctl", "start", alice.unit)
    assert alice.login().returncode == 0
    assert host_key(host.ip, alice.port) == fingerprint
    assert ssh(host.ip, alice.port, alice.key, "cat ~/note").stdout == "kept\n"


def test_a_stale_container_does_not_block_the_next_start(host, alice):
    host.exec("systemctl", "stop", alice.unit)
    host.exec("docker", "run", "--detach", "--name", alice.container, "--entrypoint", "sleep",
              "wormhole:latest", "600")
    host.exec("systemctl", "start", alice.unit)
    assert alice.login().returncode == 0


def test_workspaces_come_back_after_the_engine_restarts(host, alice, add):
    bob = add("bob")
    host.exec("systemctl", "restart", "docker")
    for person in (alice, bob):
        wait(lambda p=person: host.exec("systemctl", "is-active", p.unit,
                                        check=False).stdout.strip() == "active", 60,
             f"{person.unit} active")
        assert person.login().returncode == 0


def test_the_target_starts_every_enabled_workspace(host, alice, add):
    carol = add("carol", start=False)
    host.exec("systemctl", "start", "wormhole.target")
    assert carol.login().returncode == 0
    host.exec("systemctl", "stop", "wormhole.target")
    # The target stops first (it is ordered after what it wants); its workspaces follow.
    wait(lambda: host.exec("docker", "ps", "--quiet", "--filter",
                           "label=wormhole.user").stdout == "", 30, "every workspace stopped")
    host.exec("systemctl", "start", "wormhole.target")
    for person in (alice, carol):
        assert person.login().returncode == 0


def active(host, unit: str) -> bool:
    return host.exec("systemctl", "is-active", unit, check=False).stdout.strip() == "active"


def test_a_login_before_the_workspace_is_up_is_held_and_starts_it(host, add):
    """The hold socket listens from boot (sockets.target) until the workspace takes its port
    over: a login that comes first is held, not refused, and starts the workspace."""
    hana = add("hana", start=False)
    hold = f"wormhole-hold@{hana.name}.socket"
    try:
        host.exec("systemctl", "start", "sockets.target")
        assert active(host, hold) and not active(host, hana.unit)
        began = time.monotonic()
        done = ssh(host.ip, hana.port, hana.key, "id -un")
        took = time.monotonic() - began
        assert (done.returncode, done.stdout) == (0, "user\n"), done.stderr
        print(f"a held login: {took:.1f}s, the workspace started with it")
        assert active(host, hana.unit) and not active(host, hold)
        # the engine has the port now; the next login goes straight to sshd
        assert ssh(host.ip, hana.port, hana.key, "true").returncode == 0
        assert "a login to hana came before their workspace was up" in host.exec(
            "journalctl", "--no-pager", "-t", "wormhole-hold").stdout
    finally:
        host.unitgen("remove", hana.name)


def test_a_held_login_starts_its_workspace_ahead_of_the_queue(host, add):
    """A start job waiting for another unit (as in the boot's start lanes) is taken out of
    the order by the held login: the workspace is up while the one before it still runs."""
    ivo = add("ivo", start=False)
    slow = "lab-slow.service"
    host.put(f"/etc/systemd/system/{slow}",
             "[Service]\nType=oneshot\nExecStart=/bin/sleep 120\n")
    host.put(f"/etc/systemd/system/{ivo.unit}.d/90-lab-queue.conf", f"[Unit]\nAfter={slow}\n")
    try:
        host.exec("systemctl", "daemon-reload")
        host.exec("systemctl", "start", "sockets.target")
        host.exec("systemctl", "start", "--no-block", slow, ivo.unit)
        wait(lambda: f"{ivo.unit} start waiting" in " ".join(
            host.exec("systemctl", "list-jobs", "--no-legend").stdout.split()), 10,
             "ivo's start waits in the queue")
        done = ssh(host.ip, ivo.port, ivo.key, "id -un")
        assert (done.returncode, done.stdout) == (0, "user\n"), done.stderr
        assert active(host, ivo.unit)
        assert host.exec("systemctl", "is-active", slow, check=False).stdout.strip() == \
            "activating"
    finally:
        host.exec("systemctl", "stop", slow)
        host.exec("rm", "-rf", f"/etc/systemd/system/{slow}",
                  f"/etc/systemd/system/{ivo.unit}.d/90-lab-queue.conf")
        host.exec("systemctl", "daemon-reload")
        host.unitgen("remove", ivo.name)


def test_show_reports_state_port_memory_and_ssh_line(host, alice):
    info = json.loads(host.unitgen("show", "alice", "--json").stdout)
    assert info["state"] == "active (running)"
    assert (info["port"], info["memory"]) == (alice.port, "512M")
    assert info["ssh"].startswith(f"ssh -p {alice.port} user@")
    listed = host.unitgen("list").stdout.splitlines()
    assert listed[0].split() == ["USER", "PORT", "STATE", "MEMORY", "DISK", "IMAGE"]
    assert any(line.split()[:3] == ["alice", str(alice.port), "active"] for line in listed)


def test_every_generated_unit_passes_systemd_analyze_verify(host, alice):
    units = ["wormhole@alice.service", "wormhole-data@alice.service", "wormhole.target",
             "wormhole.slice"]
    done = host.exec("systemd-analyze", "verify", *units, check=False)
    assert (done.returncode, done.stderr) == (0, "")


def test_remove_keeps_the_data_and_purge_deletes_it(host, add):
    dave = add("dave")
    assert ssh(host.ip, dave.port, dave.key, "echo mine > ~/work").returncode == 0
    fingerprint = host_key(host.ip, dave.port)
    host.unitgen("remove", "dave")
    assert host.container(dave.container) is None
    assert host.exec("systemctl", "is-enabled", dave.unit, check=False).returncode != 0
    assert host.exec("test", "-e", "/etc/wormhole/people/dave.toml", check=False).returncode
    assert "dave.img" in host.exec("ls", "/var/lib/wormhole/disks").stdout.split()

    again = add("dave")
    assert host_key(host.ip, again.port) == fingerprint
    assert ssh(host.ip, again.port, again.key, "cat ~/work").stdout == "mine\n"

    said = host.unitgen("remove", "dave", "--purge", "--yes").stdout
    assert "deleted: /var/lib/wormhole/disks/dave, /var/lib/wormhole/disks/dave.img" in said
    disks = host.exec("ls", "/var/lib/wormhole/disks").stdout.split()
    assert not [e for e in disks if e == "dave" or e.startswith("dave.")]


def test_a_stopped_engine_is_a_clear_error_that_changes_nothing(host, make_key):
    key = make_key("erin")
    host.put("/root/erin.pub", key.with_suffix(".pub").read_text())
    before = host.sh("find /etc/wormhole /etc/systemd/system -print0 | sort -z | "
                     "xargs -0 ls -ld --time-style=+%s.%N").stdout
    host.exec("systemctl", "stop", "docker.socket", "docker.service")
    try:
        done = host.unitgen("add", "erin", "/root/erin.pub", check=False)
    finally:
        host.exec("systemctl", "start", "docker.socket", "docker.service", "wormhole.target")
    assert done.returncode == 1
    assert done.stderr.startswith("unitgen: error: the Docker engine is not reachable")
    assert "systemctl start docker" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    after = host.sh("find /etc/wormhole /etc/systemd/system -print0 | sort -z | "
                    "xargs -0 ls -ld --time-style=+%s.%N").stdout
    assert after == before
