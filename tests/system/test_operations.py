"""Operating many workspaces on the real host: status, doctor, keys rotated without a
restart, limits changed, logs."""

import json
import time

import pytest

from tests.lab.host import ssh, wait


def status(host, *names: str) -> dict:
    found = json.loads(host.unitgen("status", *names, "--json").stdout)
    return {row["user"]: row for row in found["workspaces"]} | {"": found["summary"]}


def doctor(host) -> tuple[int, dict[str, list[dict]]]:
    done = host.unitgen("doctor", "--json", check=False)
    checks: dict[str, list[dict]] = {}
    for check in json.loads(done.stdout):
        checks.setdefault(check["what"], []).append(check)
    return done.returncode, checks


@pytest.fixture(scope="module")
def board(host, add):
    """One workspace OOM-killed inside, one stopped, one failed (its image is missing)."""
    kim, lee = add("kim"), add("lee", start=False)
    hog = ssh(host.ip, kim.port, kim.key, "head -c 600M /dev/zero | tail; echo status=$?")
    assert "status=137" in hog.stdout
    max_ = add("max", "--image", "wormhole:missing", start=False)
    host.exec("systemctl", "start", "--no-block", "wormhole@max")
    wait(lambda: host.exec("systemctl", "is-failed", "wormhole@max", check=False).stdout
         == "failed\n", 90, "max failed")
    return kim, lee, max_


def test_status_shows_each_state_and_the_oom_kill(host, board):
    rows = status(host, "kim", "lee", "max")
    kim, lee, max_ = rows["kim"], rows["lee"], rows["max"]
    assert (kim["unit"], kim["container"]) == ("active (running)", "running")
    assert kim["oom_kills"] >= 1 and kim["memory_cap"] == 512 << 20
    assert 0 < kim["memory"] < kim["memory_cap"] and kim["pids"] >= 1 and 0 <= kim["uptime"] < 900
    assert kim["last_login"] and time.time() - kim["last_login"] < 600
    assert (lee["unit"], lee["container"], lee["memory"]) == ("inactive (dead)", "none", None)
    assert max_["unit"] == "failed (failed)"
    assert rows[""]["disk"] > 0  # what the three disks hold, in all
    assert rows[""] | {"memory": 0, "disk": 0} == {"running": 1, "idle": 0, "failed": 1,
                                                   "stopped": 1, "memory": 0, "disk": 0}
    table = host.unitgen("status", "kim", "lee", "max").stdout.splitlines()
    assert table[0].split()[:4] == ["USER", "PORT", "UNIT", "CONTAINER"]
    summary = [line for line in table if not line.startswith("backups: ")][-1]
    assert summary.startswith("1 running, 0 idle, 1 failed, 1 stopped; memory in use ")


def test_status_of_everyone_answers_in_one_call_per_source(host, board):
    started = time.monotonic()
    rows = status(host)
    assert {"kim", "lee", "max"} <= set(rows)
    assert time.monotonic() - started < 10  # the bound that counts is in bench/, at 500


def test_doctor_names_the_failed_workspace_and_the_missing_image(host, board):
    code, checks = doctor(host)
    assert code == 1
    assert "wormhole@max.service" in checks["workspaces"][0]["detail"]
    assert "reset-failed" in checks["workspaces"][0]["fix"]
    assert "wormhole:missing" in checks["images"][0]["detail"]
    assert checks["images"][0]["fix"] == \
        "run: unitgen image build (--backup for the backup image), or docker pull the image"
    assert checks["files"][0]["level"] == "ok"


def test_doctor_says_how_to_start_a_stopped_engine(host, board):
    host.exec("systemctl", "stop", "docker.socket", "docker.service")
    try:
        code, checks = doctor(host)
    finally:
        host.exec("systemctl", "start", "docker.socket", "docker.service", "wormhole.target")
    assert code == 1
    assert checks["engine"][0]["level"] == "fail"
    assert "start it with: systemctl start docker" in checks["engine"][0]["fix"]


def test_doctor_is_content_once_the_problems_are_gone(host, board):
    host.unitgen("remove", "max", "--no-backup")
    host.sh("echo '# edited' >> /etc/systemd/system/wormhole.slice")
    code, checks = doctor(host)
    assert code == 1 and "1 edited by hand" in checks["files"][0]["detail"]
    host.unitgen("upgrade")
    code, checks = doctor(host)
    assert [c for found in checks.values() for c in found if c["level"] == "fail"] == []
    assert code == 0


def test_keys_rotate_without_a_restart(host, add, make_key):
    ned = add("ned")
    started = host.container(ned.container)["State"]["StartedAt"]
    new = make_key("ned-new")
    host.put("/root/ned-new.pub", new.with_suffix(".pub").read_text())
    host.unitgen("key", "add", "ned", "/root/ned-new.pub")
    old = json.loads(host.unitgen("key", "list", "ned", "--json").stdout)[0]["fingerprint"]
    host.unitgen("key", "remove", "ned", old)
    assert ssh(host.ip, ned.port, ned.key, "id").returncode == 255
    assert ssh(host.ip, ned.port, new, "id").stdout.startswith("uid=1000(user)")
    assert host.container(ned.container)["State"]["StartedAt"] == started


def test_a_lower_memory_cap_applies_at_once_with_restart(host, add):
    oli = add("oli")
    done = host.unitgen("set", "oli", "--memory", "256M", "--cpus", "0.5", "--restart")
    assert "restarted" in done.stdout
    config = host.container(oli.container)["HostConfig"]
    assert (config["Memory"], config["NanoCpus"]) == (256 << 20, 500_000_000)
    hog = ssh(host.ip, oli.port, oli.key, "head -c 300M /dev/zero | tail; echo status=$?")
    assert "status=137" in hog.stdout
    assert oli.login().returncode == 0


def test_logs_show_the_logins(host, add):
    pia = add("pia")
    assert pia.login().returncode == 0
    wait(lambda: "Accepted publickey for user" in host.unitgen("logs", "pia").stdout, 15,
         "the login in unitgen logs")
