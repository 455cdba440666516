"""Each class of hostile or broken input of the issue "the generator never writes what its
input did not mean", run as users run unitgen (`--root`, no host): one line, exit 2, and the
root and its surroundings byte-identical."""

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import public, snapshot
from tests.test_cli_root import UNITGEN, assert_refused, ok, unitgen

ETC = Path("etc/wormhole")
ZONE = "fe80::1%x\nWORMHOLE_IMAGE=x;reboot"


@pytest.fixture
def scene(tmp_path, session_keygen):
    """A root with alice and bob, a folder beside it, and key files."""
    root, beside = tmp_path / "root", tmp_path / "beside"
    root.mkdir()
    beside.mkdir()
    (beside / "precious").write_text("keep\n")
    keys = {n: public(session_keygen("ed25519", comment=n)) for n in ("alice", "bob", "carol")}
    ok(root, "add", "alice", keys["alice"])
    ok(root, "add", "bob", keys["bob"])
    return root, beside, keys


def refused_unchanged(root: Path, beside: Path, *args: object, parts=()) -> None:
    before = snapshot(root), snapshot(beside)
    assert_refused(unitgen(root, *args), *parts)
    assert (snapshot(root), snapshot(beside)) == before


def config(root: Path, lines: str) -> None:
    """Set keys of the config, as an admin editing it by hand would."""
    path = root / ETC / "wormhole.toml"
    keys = {line.split("=")[0].strip() for line in lines.splitlines()}
    kept = [line for line in path.read_text().splitlines()
            if line.split("=")[0].strip() not in keys]
    path.write_text("\n".join([*kept, lines]) + "\n")


CONFIG_LINES = [
    pytest.param(f"publish_address = {json.dumps(ZONE)}", "is not an IP address", id="zone"),
    pytest.param('publish_address = "fe80::1%eth0"', "is not an IP address", id="zone-plain"),
    pytest.param(f'egress = "allowlist"\negress_allow = [{json.dumps("[" + ZONE + "]:443")}]',
                 "is not a network and a port", id="egress-zone"),
    pytest.param('backup_schedule = "xyz"', "is not a calendar event", id="schedule"),
    pytest.param('backup_schedule = "daily\\nExecStart=/bin/sh"', "is not a calendar event",
                 id="schedule-newline"),
    pytest.param('backup_spread = "99999999999w"', "is not a time span", id="spread-huge"),
    pytest.param('idle_stop = "1h;reboot"', "is not a time span", id="idle-stop"),
    pytest.param('backup_dir = "/.."', "is not a folder of plain names", id="backup-dir-up"),
    pytest.param('backup_dir = "/etc/systemd/system"', "under /var, /srv or /mnt",
                 id="backup-dir-etc"),
    pytest.param('image = "-v/:/host"', "is not an image reference", id="image-dash"),
    pytest.param('image = "--privileged"', "is not an image reference", id="image-option"),
    pytest.param("inner_offset = 1", "port 2201 is held by alice and bob", id="inner-collides"),
]


@pytest.mark.parametrize(("line", "message"), CONFIG_LINES)
def test_a_config_value_that_would_change_a_generated_file_is_refused(scene, line, message):
    root, beside, keys = scene
    ok(root, "set", "alice", "--on-demand")
    config(root, line)
    refused_unchanged(root, beside, "add", "carol", keys["carol"], parts=[message])


def test_the_firewall_of_an_internal_host_takes_no_zone(scene):
    root, beside, _ = scene
    refused_unchanged(root, beside, "firewall", "--internal", "--wormhole-ip", ZONE,
                      parts=["is not an IP address"])


PEOPLE_FILES = [
    pytest.param("defaults = 5\n", "[defaults]: is not a table", id="defaults-not-table"),
    pytest.param("firewall = 5\n", "[firewall]: holds more or less than enabled",
                 id="firewall-not-table"),
    pytest.param("", "holds no [people.NAME] table", id="empty"),
    pytest.param('[admin]\nuser = "x"\n', "holds no [people.NAME] table", id="no-people"),
]


@pytest.mark.parametrize(("text", "message"), PEOPLE_FILES)
def test_a_broken_people_file_is_one_line(scene, tmp_path, text, message):
    root, beside, _ = scene
    (tmp_path / "people.toml").write_text(text)
    refused_unchanged(root, beside, "add", "--from", tmp_path / "people.toml", parts=[message])


def test_an_always_on_port_equal_to_an_inner_port_is_refused(scene):
    root, beside, keys = scene
    ok(root, "set", "bob", "--on-demand")
    refused_unchanged(root, beside, "add", "carol", keys["carol"], "--port", "22201",
                      parts=["outside the range"])
    config(root, "port_max = 40000")
    refused_unchanged(root, beside, "add", "carol", keys["carol"], "--port", "22201",
                      parts=["port 22201 is held by bob and carol"])


def test_two_registry_files_with_one_port_are_refused_until_fixed(scene):
    root, beside, keys = scene
    bob = root / ETC / "people/bob.toml"
    bob.write_text(bob.read_text().replace("port = 2201", "port = 2200"))
    refused_unchanged(root, beside, "add", "carol", keys["carol"],
                      parts=["port 2200 is held by alice and bob", "give each their own port"])
    ok(root, "remove", "bob")
    assert "port 2201" in ok(root, "add", "carol", keys["carol"])


@pytest.mark.parametrize("source", ["/dev/zero", "fifo", "big", "dir"])
def test_a_key_file_that_is_no_plain_small_file_is_refused_at_once(scene, tmp_path, source):
    root, beside, _ = scene
    if source == "fifo":
        os.mkfifo(tmp_path / "fifo")
    elif source == "big":
        (tmp_path / "big").write_text("#" * (100 << 10))
    elif source == "dir":
        (tmp_path / "dir").mkdir()
    path = source if source.startswith("/") else tmp_path / source
    refused_unchanged(root, beside, "add", "carol", path, parts=["give the path of a public key"])


def test_a_byte_order_mark_before_a_key_is_dropped(scene, tmp_path):
    root, _, keys = scene
    (tmp_path / "bom.pub").write_bytes(b"\xef\xbb\xbf" + keys["carol"].read_bytes())
    assert "added carol" in ok(root, "add", "carol", tmp_path / "bom.pub")


@pytest.mark.parametrize("target", ["/dev/null", "fifo", "dir", "link"])
def test_out_writes_only_a_new_or_plain_file(scene, tmp_path, target):
    root, beside, keys = scene
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(beside / "precious")
    path = target if target.startswith("/") else tmp_path / target
    refused_unchanged(root, beside, "ignition", "--admin-key", keys["carol"], "--out", path,
                      parts=["is not a plain file"])
    assert Path("/dev/null").is_char_device()


@pytest.mark.parametrize("linked", ["etc/wormhole/keys/alice", "etc/systemd/system",
                                    "etc/wormhole/people"])
def test_a_link_under_the_root_is_never_followed(scene, linked):
    root, beside, keys = scene
    shutil.rmtree(root / linked)
    (root / linked).symlink_to(beside)
    for args in (["add", "carol", keys["carol"]], ["key", "add", "alice", keys["carol"]],
                 ["remove", "alice"]):
        refused_unchanged(root, beside, *args, parts=["is a symbolic link"])


def test_a_link_to_a_file_where_keys_belong_leaves_every_command_working(scene):
    root, beside, keys = scene
    shutil.rmtree(root / ETC / "keys/alice")
    (root / ETC / "keys/alice").symlink_to(beside / "precious")
    refused_unchanged(root, beside, "key", "add", "alice", keys["carol"],
                      parts=["is a symbolic link"])
    assert [r["user"] for r in json.loads(ok(root, "list", "--json"))] == ["alice", "bob"]


@pytest.mark.parametrize("entry", ["/../../tmp/x", "/etc/fstab"])
def test_a_manifest_entry_outside_unitgens_paths_is_never_deleted(scene, entry):
    root, _, keys = scene
    victim = Path(os.path.normpath(root / entry.lstrip("/")))
    victim.parent.mkdir(parents=True, exist_ok=True)
    victim.write_text("mine\n")
    manifest = root / ETC / "generated.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), entry: "x"}))
    ok(root, "add", "carol", keys["carol"])
    assert victim.read_text() == "mine\n"


@pytest.mark.parametrize(("damage", "message"), [
    (lambda p: p.write_bytes(b"\xff\xfe"), "not UTF-8"),
    (lambda p: p.write_text("[1]"), "is damaged"),
    (lambda p: (p.unlink(), p.mkdir()), "is not a plain file"),
])
@pytest.mark.parametrize("file", ["generated.json", "wormhole.toml", "people/alice.toml"])
def test_a_corrupt_state_file_is_one_line_for_every_command_that_reads_it(
        scene, file, damage, message):
    root, beside, keys = scene
    if file != "generated.json" and message == "is damaged":
        damage, message = (lambda p: p.write_text("[x"), "not valid TOML")
    damage(root / ETC / file)
    readers = [["add", "carol", keys["carol"]], ["remove", "bob"]]
    for args in readers if file == "generated.json" else [["list"], *readers]:
        refused_unchanged(root, beside, *args, parts=[message])


def test_remove_without_a_manifest_removes_the_person(scene):
    root, _, _ = scene
    (root / ETC / "generated.json").unlink()
    ok(root, "remove", "alice")
    assert not (root / ETC / "people/alice.toml").exists()
    assert not (root / ETC / "env/alice.env").exists()
    assert not (root / "etc/systemd/system/wormhole.target.wants/wormhole@alice.service"
                ).is_symlink()
    assert [r["user"] for r in json.loads(ok(root, "list", "--json"))] == ["bob"]


def test_a_key_given_to_two_people_is_said(scene):
    root, _, keys = scene
    done = unitgen(root, "add", "carol", keys["alice"])
    assert done.returncode == 0
    assert done.stderr.startswith("warning: key SHA256:") and "held by alice, carol" in done.stderr


def test_butane_quotes_every_scalar(scene, tmp_path):
    import yaml

    root, _, keys = scene
    people = tmp_path / "people.toml"
    line = keys["carol"].read_text().strip()
    people.write_text(f'[admin]\nuser = "null"\nkeys = ["{line}"]\n[people.ann]\n'
                      f'keys = ["{keys["alice"].read_text().strip()}"]\n')
    done = unitgen(root, "butane", "--from", people)
    assert done.returncode == 0, done.stderr
    parsed = yaml.safe_load(done.stdout)
    assert parsed["passwd"]["users"][0]["name"] == "null"
    assert all(isinstance(f["path"], str) for f in parsed["storage"]["files"])


def test_the_script_entry_runs(scene):
    assert Path(UNITGEN[0]).exists() or UNITGEN[1] == "-m"
