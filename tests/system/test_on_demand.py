"""On-demand workspaces on the real host: nothing runs until the first ssh connection,
which starts the workspace; it stops by itself after the idle time with no session open,
and keeps its home and host key for the next one."""

import json
import subprocess
import time

import pytest

from tests.lab.host import host_key, ssh, ssh_args, wait, wait_ssh

IDLE = 12  # seconds of --idle-stop, short for the test


def running(host, name: str) -> bool:
    return (host.container(f"wormhole-{name}") or {}).get("State", {}).get("Running", False)


def unit_state(host, name: str) -> str:
    return host.exec("systemctl", "is-active", f"wormhole@{name}", check=False).stdout.strip()




@pytest.fixture(scope="module")
def zoe(host, add):
    return add("zoe", "--on-demand", "--idle-stop", f"{IDLE}s", start=False)


def test_nothing_runs_after_add_but_the_socket(host, zoe):
    assert not running(host, "zoe")
    assert host.exec("systemctl", "is-active", "wormhole-proxy@zoe.socket").stdout == "active\n"
    assert host.exec("systemctl", "is-enabled", "wormhole-proxy@zoe.socket").stdout == \
        "enabled\n"
    row = json.loads(host.unitgen("status", "zoe", "--json").stdout)
    assert row["workspaces"][0]["mode"] == "on-demand" and row["summary"]["idle"] == 1


def test_the_first_login_starts_it_and_a_second_one_shares_it(host, zoe):
    started = time.monotonic()
    first = ssh(host.ip, zoe.port, zoe.key, "echo kept > ~/note; id -un")
    print(f"cold start to a finished ssh command: {time.monotonic() - started:.2f}s")
    assert first.stdout == "user\n", first.stderr
    container = host.container("wormhole-zoe")["Id"]
    session = subprocess.Popen([*ssh_args(host.ip, zoe.port, zoe.key), "sleep 6; echo done"],
                               stdout=subprocess.PIPE, text=True)
    assert ssh(host.ip, zoe.port, zoe.key, "cat ~/note").stdout == "kept\n"
    assert host.container("wormhole-zoe")["Id"] == container
    assert session.communicate(timeout=30)[0] == "done\n"


def test_an_open_session_keeps_it_up_however_quiet(host, zoe):
    session = subprocess.Popen([*ssh_args(host.ip, zoe.port, zoe.key), f"sleep {IDLE * 2}"])
    try:
        time.sleep(IDLE * 1.5)
        assert running(host, "zoe")
    finally:
        session.wait(timeout=IDLE * 3)


def test_it_stops_after_the_idle_time_and_comes_back_the_same(host, zoe):
    fingerprint = host_key(host.ip, zoe.port)  # this connection starts it, if stopped
    took = wait(lambda: not running(host, "zoe"), IDLE + 60, "zoe stopped when idle")
    assert took >= IDLE - 2
    # The container ends before the unit's ExecStopPost has removed it.
    wait(lambda: unit_state(host, "zoe") != "deactivating", 30, "wormhole@zoe done stopping")
    assert unit_state(host, "zoe") == "inactive"
    row = json.loads(host.unitgen("status", "zoe", "--json").stdout)["workspaces"][0]
    assert row["last_activity"] and time.time() - row["last_activity"] < 120
    assert wait_ssh(host.ip, zoe.port, zoe.key).returncode == 0
    assert host_key(host.ip, zoe.port) == fingerprint
    assert ssh(host.ip, zoe.port, zoe.key, "cat ~/note").stdout == "kept\n"


def test_a_backup_works_while_it_is_stopped(host, zoe):
    wait(lambda: not running(host, "zoe"), IDLE + 60, "zoe stopped when idle")
    snapshot = host.unitgen("backup", "zoe").stdout.split()[-1]
    taken = json.loads(host.unitgen("snapshots", "zoe", "--json").stdout)
    assert snapshot in [s["short_id"] for s in taken if "/wormhole/zoe/home" in s["paths"]]
    assert not running(host, "zoe")


def test_the_firewall_lets_the_port_in_and_keeps_the_inner_port_out(host, zoe):
    host.unitgen("firewall")
    try:
        inner = zoe.port + 20000
        rules = host.exec("iptables", "-S", "WORMHOLE-FORWARD").stdout
        assert "--ctorigdst 127.0.0.0/8 -j DROP" in rules
        assert wait_ssh(host.ip, zoe.port, zoe.key).returncode == 0
        outside = subprocess.run(["timeout", "3", "bash", "-c", f"</dev/tcp/{host.ip}/{inner}"],
                                 capture_output=True)
        assert outside.returncode != 0
    finally:
        host.unitgen("firewall", "--off")


def test_set_switches_between_always_on_and_on_demand(host, zoe):
    host.unitgen("set", "zoe", "--always-on")
    assert wait_ssh(host.ip, zoe.port, zoe.key).returncode == 0
    assert host.exec("systemctl", "is-enabled", "wormhole@zoe").stdout == "enabled\n"
    assert host.exec("systemctl", "is-active", "wormhole-proxy@zoe.socket",
                     check=False).stdout != "active\n"
    host.unitgen("set", "zoe", "--on-demand")
    assert not running(host, "zoe")
    assert wait_ssh(host.ip, zoe.port, zoe.key).returncode == 0
