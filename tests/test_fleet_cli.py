"""`unitgen fleet` as an admin runs it, as a separate process, beside a people file: plan,
ignition and butane (one config per host and one for the gateway, byte-identical, the lock),
ssh-config, and status over a stand-in for ssh (UNITGEN_FLEET_SSH)."""

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fleet_fixture import NAMES, text
from tests.test_cli_root import UNITGEN
from unitgen import placement

HOSTS = {"h1": 10, "h2": 10, "h3": 10}


def fleet(folder: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*UNITGEN, "fleet", *args], capture_output=True, text=True,
                          cwd=folder, timeout=120, env={**os.environ, **(env or {})})


def ok(folder: Path, *args: str, env: dict | None = None) -> str:
    done = fleet(folder, *args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "people.toml").write_text(text(HOSTS, NAMES, extra={"carol": "on_demand = true"}))
    (tmp_path / "out").mkdir()
    return tmp_path


def files_of(config: Path) -> dict[str, str]:
    found = json.loads(config.read_text())
    return {f["path"]: base64.b64decode(f["contents"]["source"].split(",", 1)[1]).decode()
            for f in found["storage"]["files"]}


def test_ignition_writes_a_config_per_host_and_the_gateway_then_the_lock(folder):
    ok(folder, "ignition", "--out", "out")
    assert sorted(p.name for p in (folder / "out").iterdir()) == [
        "gateway.ign", "h1.ign", "h2.ign", "h3.ign"]
    lock = placement.load_lock((folder / "people.lock").read_text(), "people.lock")
    assert sorted(lock) == NAMES
    for host in HOSTS:
        files = files_of(folder / "out" / f"{host}.ign")
        people = sorted(p.removeprefix("/etc/wormhole/people/").removesuffix(".toml")
                        for p in files if p.startswith("/etc/wormhole/people/"))
        assert people == sorted(n for n, at in lock.items() if at.host == host)
        for name in people:
            assert f"port = {lock[name].port}\n" in files[f"/etc/wormhole/people/{name}.toml"]
        rules = files["/etc/wormhole/firewall/rules.v4"]
        assert all(f"-s 10.0.0.1/32 -p tcp --dport {lock[n].port} -j RETURN" in rules
                   for n in people)
        assert 'allow_from = [\n    "10.0.0.1",\n]' in files["/etc/wormhole/wormhole.toml"]
    door = json.loads((folder / "out" / "gateway.ign").read_text())
    assert [u["name"] for u in door["passwd"]["users"]] == ["core", "wormhole"]
    assert sorted(files_of(folder / "out" / "gateway.ign")) == [
        "/etc/hosts", "/etc/ssh/sshd_config.d/40-wormhole-gateway.conf",
        "/etc/wormhole/gateway/authorized_keys"]


def test_the_same_file_gives_byte_identical_configs_and_lock(folder, tmp_path_factory):
    ok(folder, "ignition", "--out", "out")
    first = {p.name: p.read_bytes() for p in (folder / "out").iterdir()}
    lock = (folder / "people.lock").read_bytes()
    elsewhere = tmp_path_factory.mktemp("again")
    shutil.copy(folder / "people.toml", elsewhere / "people.toml")
    (elsewhere / "out").mkdir()
    ok(elsewhere, "ignition", "--out", "out")  # another folder, no lock yet
    ok(folder, "ignition", "--out", "out")     # the same folder, with its lock
    assert {p.name: p.read_bytes() for p in (elsewhere / "out").iterdir()} == first
    assert {p.name: p.read_bytes() for p in (folder / "out").iterdir()} == first
    assert (elsewhere / "people.lock").read_bytes() == lock == \
        (folder / "people.lock").read_bytes()


@pytest.mark.skipif(shutil.which("ignition-validate") is None, reason="no ignition-validate")
def test_every_config_is_valid_ignition(folder):
    ok(folder, "ignition", "--out", "out")
    for config in (folder / "out").iterdir():
        done = subprocess.run(["ignition-validate", str(config)], capture_output=True, text=True)
        assert (done.returncode, done.stdout + done.stderr) == (0, ""), config.name


def test_configs_wait_while_placed_people_would_move(folder):
    ok(folder, "ignition", "--out", "out")
    before = {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    source = folder / "people.toml"
    lock = placement.load_lock((folder / "people.lock").read_text(), "people.lock")
    other = next(h for h in HOSTS if h != lock["alice"].host)
    source.write_text(source.read_text().replace("[people.alice]\n",
                                                 f'[people.alice]\nhost = "{other}"\n'))
    done = fleet(folder, "ignition", "--out", "out")
    assert done.returncode == 2
    assert done.stderr == (f"unitgen: error: people.toml: 1 placed people would move (alice: "
                           f"{lock['alice'].host} to {other}); run unitgen fleet apply first, "
                           "then write the configs\n")
    after = {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert {k: v for k, v in after.items() if k != "people.toml"} == \
        {k: v for k, v in before.items() if k != "people.toml"}
    assert "alice" in ok(folder, "plan").splitlines()[-1]


def test_butane_gives_the_same_configs_as_yaml(folder):
    ok(folder, "butane", "--out", "out", "--variant", "flatcar")
    names = sorted(p.name for p in (folder / "out").iterdir())
    assert names == ["gateway.bu", "h1.bu", "h2.bu", "h3.bu"]
    door = (folder / "out" / "gateway.bu").read_text()
    assert "variant: flatcar" in door
    assert '    - name: "wormhole"\n      system: true\n      shell: "/usr/sbin/nologin"' in door
    assert "/opt/bin/unitgen" in (folder / "out" / "h1.bu").read_text()


def test_plan_lists_everyone_and_ssh_config_waits_for_the_lock(folder):
    lines = ok(folder, "plan").splitlines()
    assert lines[0].split() == ["PERSON", "HOST", "PORT"]
    assert [line.split()[0] for line in lines[1:7]] == NAMES
    assert lines[8] == "6 move(s) since people.lock; make them with: unitgen fleet apply"
    done = fleet(folder, "ssh-config", "alice")
    assert done.returncode == 2 and "alice is not in the lock yet" in done.stderr
    ok(folder, "ignition", "--out", "out")
    assert "Host alice.wormhole\n" in ok(folder, "ssh-config", "alice")


FAKE_SSH = """\
import json, sys
target, remote = sys.argv[1], sys.argv[3]
if target.endswith("10.0.0.12"):
    sys.exit("ssh: connect to host 10.0.0.12 port 22: Connection timed out")
if remote.endswith("status --json"):
    rows = [{"user": n, "unit": "active (running)", "container": "running"}
            for n in sys.argv[4:] or []]
    print(json.dumps({"workspaces": rows, "summary": {"running": 0, "idle": 0, "failed": 0,
                                                      "stopped": 0, "memory": 0}}))
else:
    sys.exit("cat: no such file")
"""


def test_status_goes_over_the_ssh_command_given_and_a_silent_host_is_a_row(folder):
    ok(folder, "ignition", "--out", "out")
    script = folder / "fake-ssh.py"
    script.write_text(FAKE_SSH)
    env = {"UNITGEN_FLEET_SSH": f"{sys.executable} {script}"}
    lines = ok(folder, "status", env=env).splitlines()
    assert [line.split()[0] for line in lines] == ["HOST", "h1", "h2", "h3", "gateway"]
    assert "did not answer: ssh: connect to host 10.0.0.12 port 22: Connection timed out" \
        in lines[2]
    assert "did not answer: reading /etc/hosts on 10.0.0.1: cat: no such file" in lines[4]
    found = json.loads(ok(folder, "status", "--json", env=env))
    assert [h["answered"] for h in found["hosts"]] == [True, False, True]
    assert found["seconds"] < 30
