"""Access policies: the hardware-key check, the key options rendered per forwarding
policy, and the ceiling sshd_config sets for them."""

import base64
import struct
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from tests.helpers import assert_message, public
from unitgen import access
from unitgen.errors import BadInput
from unitgen.keys import parse_key, parse_keys
from unitgen.model import Host, Person
from unitgen.render import _template, render

TOP = Path(__file__).parents[1]
FIXTURES = TOP / "tests/fixtures"
SSHD_CONFIG = TOP / "image/rootfs/etc/ssh/sshd_config"
LOOPBACK = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
KEYS = "/etc/wormhole/keys/ann/authorized_keys"


def fields(line: str) -> list[bytes]:
    blob, found = base64.b64decode(line.split()[1]), []
    while blob:
        (size,) = struct.unpack(">I", blob[:4])
        found.append(blob[4 : 4 + size])
        blob = blob[4 + size :]
    return found


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text().strip()


def software(keygen, kind: str = "ed25519", bits: int | None = None) -> str:
    return public(keygen(kind, bits=bits)).read_text().strip()


@pytest.mark.parametrize(("name", "expected"), [
    ("sk-ed25519.pub", [b"sk-ssh-ed25519@openssh.com", 32, b"ssh:"]),
    ("sk-ecdsa.pub", [b"sk-ecdsa-sha2-nistp256@openssh.com", b"nistp256", 65, b"ssh:"]),
])
def test_the_hardware_fixtures_are_security_key_lines_that_ssh_keygen_reads(name, expected):
    line = fixture(name)
    found = [len(f) if isinstance(e, int) else f for f, e in
             zip(fields(line), expected, strict=True)]
    assert found == expected
    [key] = parse_keys(line, name)
    assert access.is_hardware(key)
    listed = subprocess.run(["ssh-keygen", "-l", "-f", str(FIXTURES / name)],
                            capture_output=True, text=True, check=True).stdout.split()
    assert listed[1] == key.fingerprint and listed[-1] in ("(ED25519-SK)", "(ECDSA-SK)")


@pytest.mark.parametrize(("kind", "bits"), [("ed25519", None), ("ecdsa", 256), ("rsa", 2048)])
def test_software_keys_are_not_hardware(keygen, kind, bits):
    assert not access.is_hardware(parse_key(software(keygen, kind, bits)))


def test_the_any_policy_takes_every_accepted_key(keygen):
    keys = [parse_key(software(keygen)), parse_key(fixture("sk-ed25519.pub"))]
    assert access.check_key_policy(keys, "any") is None


def test_the_hardware_policy_takes_security_keys_only(keygen):
    hardware = [parse_key(fixture("sk-ed25519.pub")), parse_key(fixture("sk-ecdsa.pub"))]
    assert access.check_key_policy(hardware, "hardware", "ann.pub") is None
    plain = parse_key(software(keygen))
    with pytest.raises(BadInput) as refused:
        access.check_key_policy([*hardware, plain], "hardware", "ann.pub")
    assert_message(str(refused.value), f"ann.pub: key {plain.fingerprint} (ssh-ed25519)",
                   'key_policy is "hardware"', "ssh-keygen -t ed25519-sk")


def test_an_unknown_key_policy_is_refused():
    with pytest.raises(BadInput, match="'yubikey' is not a key policy; give one of: any, hard"):
        access.check_key_policy([], "yubikey", "key_policy")


def test_holdouts_names_the_people_a_hardware_policy_would_lock_out(keygen):
    plain, sk = parse_key(software(keygen)), parse_key(fixture("sk-ed25519.pub"))
    people = [("ann", "hardware", [plain, sk]), ("ben", "hardware", [sk]),
              ("cy", "any", [plain])]
    assert access.holdouts(people) == {"ann": [plain.fingerprint]}


def authorized_keys(keygen, forwarding: str) -> list[str]:
    keys = (parse_key(software(keygen)), parse_key(fixture("sk-ed25519.pub")))
    host = Host(people=(Person("ann", 2200, keys),))
    workspace = replace(host.workspaces()[0], forwarding=forwarding)
    text = _template("authorized_keys.j2", host, w=workspace)
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert [line.split(" ", 1)[1] for line in lines] == [key.line for key in keys]
    return [line.split(" ", 1)[0] for line in lines]


def test_render_writes_the_none_options_by_default(keygen):
    key = parse_key(software(keygen))
    text = render(Host(people=(Person("ann", 2200, (key,)),)))[KEYS].text
    assert text.splitlines()[-1] == f"restrict,pty {key.line}"


def test_none_restricts_every_key(keygen):
    assert authorized_keys(keygen, "none") == ["restrict,pty"] * 2


def test_loopback_adds_local_forwards_to_the_loopback_only(keygen):
    options = [o.split(",") for o in authorized_keys(keygen, "loopback")]
    permits = [f'permitopen="{entry}"' for entry in LOOPBACK]
    assert options == [["restrict", "pty", "port-forwarding", *permits]] * 2


def test_an_unknown_forwarding_policy_renders_nothing(keygen):
    with pytest.raises(UndefinedError):
        authorized_keys(keygen, "anywhere")


def sshd() -> dict[str, list[str]]:
    settings = {}
    for line in SSHD_CONFIG.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            keyword, *values = line.split()
            settings[keyword] = values
    return settings


def test_sshd_config_allows_no_more_than_the_loopback_policy():
    settings = sshd()
    assert {k: settings[k] for k in (
        "DisableForwarding", "AllowTcpForwarding", "AllowStreamLocalForwarding",
        "AllowAgentForwarding", "X11Forwarding", "PermitTunnel", "GatewayPorts",
        "PermitListen", "PermitUserRC")} == {
        "DisableForwarding": ["no"], "AllowTcpForwarding": ["local"],
        "AllowStreamLocalForwarding": ["local"], "AllowAgentForwarding": ["no"],
        "X11Forwarding": ["no"], "PermitTunnel": ["no"], "GatewayPorts": ["no"],
        "PermitListen": ["none"], "PermitUserRC": ["no"]}
    assert settings["PermitOpen"] == LOOPBACK


def test_one_source_cannot_reach_the_shared_start_up_limit():
    settings = sshd()
    start = int(settings["MaxStartups"][0].split(":")[0])
    assert 1 < int(settings["PerSourceMaxStartups"][0]) < start
    assert settings["PerSourceNetBlockSize"] == ["32:64"]


# ---- the policies at the command line, on a --root ------------------------------------------

def cli_keys(tmp_path, keygen) -> dict[str, Path]:
    hardware = tmp_path / "hw.pub"
    hardware.write_text(fixture("sk-ed25519.pub") + "\n")
    return {"hardware": hardware, "software": public(keygen("ed25519")),
            "other": public(keygen("ed25519"))}


def test_a_hardware_host_refuses_every_other_key_with_one_line(tmp_path, keygen):
    from tests.helpers import snapshot
    from tests.test_cli_root import assert_refused, ok, unitgen

    keys = cli_keys(tmp_path, keygen)
    root = tmp_path / "root"
    root.mkdir()
    ok(root, "add", "ann", keys["hardware"], "--key-policy", "hardware")
    before = snapshot(root)
    assert_refused(unitgen(root, "add", "ben", keys["software"], "--key-policy", "hardware"),
                   'key_policy is "hardware"', "ssh-keygen -t ed25519-sk")
    assert_refused(unitgen(root, "key", "add", "ann", keys["software"]),
                   'key_policy is "hardware"')
    people = tmp_path / "people.toml"
    people.write_text('[people.cy]\nkey_policy = "hardware"\nkeys = ["'
                      + keys["other"].read_text().strip() + '"]\n')
    assert_refused(unitgen(root, "add", "--from", people), "[people.cy]", "hardware")
    assert snapshot(root) == before


def test_switching_someone_to_hardware_never_locks_them_out_silently(tmp_path, keygen):
    from tests.test_cli_root import ok, unitgen

    keys = cli_keys(tmp_path, keygen)
    root = tmp_path / "root"
    root.mkdir()
    ok(root, "add", "ann", keys["software"])
    done = unitgen(root, "set", "ann", "--key-policy", "hardware")
    assert done.returncode == 0
    assert done.stdout == "ann: key policy hardware, from the next login\n"
    assert done.stderr.startswith("warning: ann still has 1 key(s) that are not hardware")
    assert keys["software"].read_text().split()[1] in (
        root / "etc/wormhole/keys/ann/authorized_keys").read_text()


def test_forwarding_switches_at_the_next_login_without_a_restart(tmp_path, keygen):
    from tests.test_cli_root import ok

    keys = cli_keys(tmp_path, keygen)
    root = tmp_path / "root"
    root.mkdir()
    ok(root, "add", "ann", keys["software"])
    assert ok(root, "set", "ann", "--forwarding", "loopback") == \
        "ann: forwarding loopback, from the next login\n"
    text = (root / KEYS.lstrip("/")).read_text()
    assert 'port-forwarding,permitopen="127.0.0.1:*"' in text
    ok(root, "set", "ann", "--forwarding", "none")
    assert "port-forwarding" not in (root / KEYS.lstrip("/")).read_text()
