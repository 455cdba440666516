"""Every generated unit passes the real `systemd-analyze verify` with nothing on stderr."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.test_golden import CASES, GOLDEN, generated
from unitgen.names import env_file
from unitgen.render import render_internal

UNIT_DIR = "/etc/systemd/system/"
pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze is not installed")


def units_as_instances(folder: Path, files: dict) -> list[str]:
    """Write each unit, template units once per person they serve (the on-demand entry only
    for people who have its socket), as systemd would load them."""
    everyone = [n for p in files if (n := env_file.of(p))]
    names = []
    for path, artifact in files.items():
        name = path.removeprefix(UNIT_DIR)
        if path.startswith(UNIT_DIR) and ".service.d/" in name:
            (folder / name).parent.mkdir(exist_ok=True)
            (folder / name).write_text(artifact.text)
            continue
        if not path.startswith(UNIT_DIR) or "/" in name:
            continue
        if name == "wormhole-hold@.service":  # a connection's: a hold socket's instances
            (folder / name).write_text(artifact.text)
            names.append(name.replace("@.", "@0."))
            continue
        people = [p for p in everyone if not name.startswith("wormhole-proxy@")
                  or f"{UNIT_DIR}wormhole-proxy@{p}.socket" in files]
        for instance in [name.replace("@.", f"@{p}.") for p in people] if "@." in name else [name]:
            (folder / instance).write_text(artifact.text)
            names.append(instance)
    return names


def verify(folder: Path, names: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", *names], cwd=folder,
                          capture_output=True, text=True)


@pytest.mark.parametrize("case", CASES, ids=[p.stem for p in CASES])
def test_generated_units_verify_cleanly(tmp_path, case):
    names = units_as_instances(tmp_path, generated(case))
    assert any(n.startswith("wormhole@") and not n.startswith("wormhole@.") for n in names)
    done = verify(tmp_path, names)
    assert (done.returncode, done.stderr) == (0, "")


def test_the_check_catches_an_unknown_key(tmp_path):
    names = units_as_instances(tmp_path, generated(GOLDEN / "one-person-files.toml"))
    unit = tmp_path / "wormhole@alice.service"
    unit.write_text(unit.read_text().replace("[Service]\n", "[Service]\nRestartt=always\n"))
    assert "Unknown key 'Restartt'" in verify(tmp_path, names).stderr


def test_the_internal_firewall_unit_verifies_cleanly(tmp_path):
    name = "wormhole-internal-firewall.service"
    (tmp_path / name).write_text(render_internal("10.1.2.3")[name])
    done = verify(tmp_path, [name])
    assert (done.returncode, done.stderr) == (0, "")
