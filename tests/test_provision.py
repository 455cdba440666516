"""The provisioning sinks: every Ignition config passes the real ignition-validate, output is
byte-identical for the same input, the Butane config carries exactly the same files, and a
bad people file is refused with its file, line and reason, writing nothing."""

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w
import yaml

from tests.test_golden import CASES, FAILURES
from tests.test_golden import case as split

UNITGEN = [sys.executable, "-m", "unitgen"]
ADMIN = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOF5axSyZPaF1zAuAeOFnTArJae1M1tYRi4Th/FSTY1v admin"


def unitgen(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*UNITGEN, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.fixture
def admin_key(tmp_path) -> Path:
    key = tmp_path / "admin.pub"
    key.write_text(ADMIN + "\n")
    return key


def people_file(case: Path, folder: Path) -> Path:
    """A golden case as a plain people file (its [expect] tables dropped)."""
    path = folder / f"{case.stem}.toml"
    path.write_text(tomli_w.dumps(split(case)[1]))
    return path


@pytest.mark.skipif(shutil.which("ignition-validate") is None, reason="no ignition-validate")
@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_every_config_passes_ignition_validate(tmp_path, admin_key, case):
    out = tmp_path / "host.ign"
    done = unitgen("ignition", "--from", people_file(case, tmp_path), "--admin-key", admin_key,
                   "--out", out)
    assert done.returncode == 0, done.stderr
    check = subprocess.run(["ignition-validate", str(out)], capture_output=True, text=True)
    assert (check.returncode, check.stdout + check.stderr) == (0, "")


def test_the_same_input_gives_byte_identical_output(tmp_path, admin_key):
    source = people_file(CASES[-1], tmp_path)
    runs = [unitgen(kind, "--from", source, "--admin-key", admin_key).stdout
            for kind in ("ignition", "ignition", "butane", "butane")]
    assert runs[0] == runs[1] and runs[2] == runs[3] and runs[0] and runs[2]


def from_butane(text: str) -> dict:
    """The files, links and keys a Butane config describes."""
    config = yaml.safe_load(text)
    files = {f["path"]: (f["mode"], f["contents"]["inline"]) for f in config["storage"]["files"]}
    links = {link["path"]: link["target"] for link in config["storage"]["links"]}
    return {"files": files, "links": links,
            "keys": config["passwd"]["users"][0]["ssh_authorized_keys"]}


def from_ignition(text: str) -> dict:
    config = json.loads(text)
    files = {f["path"]: (f["mode"], base64.b64decode(
        f["contents"]["source"].removeprefix("data:;base64,")).decode())
        for f in config["storage"]["files"]}
    links = {link["path"]: link["target"] for link in config["storage"]["links"]}
    return {"files": files, "links": links,
            "keys": config["passwd"]["users"][0]["sshAuthorizedKeys"]}


@pytest.mark.parametrize("variant", ["fcos", "flatcar"])
def test_butane_and_ignition_carry_the_same_files(tmp_path, admin_key, variant):
    source = people_file(CASES[-1], tmp_path)
    bu = unitgen("butane", "--variant", variant, "--from", source, "--admin-key", admin_key)
    ign = unitgen("ignition", "--variant", variant, "--from", source, "--admin-key", admin_key)
    assert from_butane(bu.stdout) == from_ignition(ign.stdout)
    header = yaml.safe_load(bu.stdout)
    assert (header["variant"], header["version"]) == (variant, {"fcos": "1.4.0",
                                                                "flatcar": "1.0.0"}[variant])
    files = from_ignition(ign.stdout)["files"]
    assert "/etc/docker/daemon.json" in files
    assert {"fcos": "/usr/local/bin/unitgen", "flatcar": "/opt/bin/unitgen"}[variant] in files


@pytest.mark.parametrize("path", FAILURES, ids=[p.stem for p in FAILURES])
def test_a_bad_people_file_writes_nothing(tmp_path, admin_key, path):
    out = tmp_path / "host.ign"
    done = unitgen("ignition", "--from", path.name, "--admin-key", admin_key, "--out", out,
                   cwd=path.parent)
    expected = path.read_text().splitlines()[0].removeprefix("## error: ")
    assert done.returncode == 2
    assert done.stderr == f"unitgen: error: {expected.replace('people.toml', path.name)}\n"
    assert not out.exists()


def test_a_host_without_an_admin_key_is_refused(tmp_path):
    done = unitgen("ignition", "--from", people_file(CASES[-1], tmp_path))
    assert done.returncode == 2
    assert "give --admin-key KEYFILE" in done.stderr


def test_the_registry_of_a_root_is_a_source_too(tmp_path, admin_key):
    root = tmp_path / "root"
    root.mkdir()
    key = tmp_path / "ann.pub"
    key.write_text(ADMIN.replace("admin", "ann") + "\n")
    assert unitgen("--root", root, "add", "ann", key).returncode == 0
    config = from_ignition(unitgen("--root", root, "ignition", "--admin-key",
                                   admin_key).stdout)
    assert config["links"]["/etc/systemd/system/wormhole.target.wants/wormhole@ann.service"] \
        == "/etc/systemd/system/wormhole@.service"
    assert config["keys"] == [ADMIN]


@pytest.mark.parametrize(("variant", "wrapper", "window", "says"), [
    ("fcos", "/usr/local/bin/unitgen", "/etc/zincati/config.d/55-wormhole-updates.toml",
     ['strategy = "periodic"', 'days = ["Sat", "Sun"]', 'start_time = "03:00"',
      "length_minutes = 120"]),
    ("flatcar", "/opt/bin/unitgen", "/etc/flatcar/update.conf",
     ["REBOOT_STRATEGY=reboot", 'LOCKSMITHD_REBOOT_WINDOW_START="03:00"',
      "LOCKSMITHD_REBOOT_WINDOW_LENGTH=120m"]),
])
def test_butane_carries_the_wrapper_the_cli_image_and_the_update_window(
        tmp_path, admin_key, variant, wrapper, window, says):
    days = "Sat,Sun" if variant == "fcos" else "*"
    source = tmp_path / "people.toml"
    source.write_text(f'[defaults]\ncli_image = "registry.example.com/t/unitgen:7"\n'
                      f'update_window = "{days} 03:00 2h"\n[people.ann]\nkeys = ["{ADMIN}"]\n')
    files = from_butane(unitgen("butane", "--variant", variant, "--from", source,
                                "--admin-key", admin_key).stdout)["files"]
    assert files[wrapper][0] == 0o755 and files[wrapper][1].startswith("#!/bin/sh\n")
    assert "registry.example.com/t/unitgen:7" in files[wrapper][1]
    assert files["/etc/wormhole/cli.env"][1].splitlines()[-1] == \
        "WORMHOLE_CLI_IMAGE=registry.example.com/t/unitgen:7"
    assert "/etc/systemd/system/wormhole-cli.service" in files
    assert [line for line in says if line not in files[window][1].splitlines()] == []


def test_flatcar_takes_one_day_or_every_day(tmp_path, admin_key):
    source = tmp_path / "people.toml"
    source.write_text(f'[defaults]\nupdate_window = "Sat,Sun 03:00 2h"\n'
                      f'[people.ann]\nkeys = ["{ADMIN}"]\n')
    done = unitgen("butane", "--variant", "flatcar", "--from", source, "--admin-key", admin_key)
    assert done.returncode == 2
    assert "Flatcar's reboot window has one day or every day" in done.stderr
