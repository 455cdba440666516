"""The CLI as users run it, as a separate process, on throwaway --root directories."""

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w

from tests.helpers import public, snapshot
from unitgen import registry
from unitgen.files import Root
from unitgen.keys import parse_keys
from unitgen.ops import load

_SCRIPT = Path(sys.executable).with_name("unitgen")
UNITGEN = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "unitgen"]
ETC = Path("etc/wormhole")
WANTS = Path("etc/systemd/system/wormhole.target.wants")


def unitgen(root: Path, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run([*UNITGEN, "--root", str(root), *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def ok(root: Path, *args: object) -> str:
    done = unitgen(root, *args)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return done.stdout


def person_paths(name: str) -> list[Path]:
    return [ETC / "people" / f"{name}.toml", ETC / "env" / f"{name}.env",
            ETC / "keys" / name / "authorized_keys", WANTS / f"wormhole@{name}.service"]


def assert_refused(done: subprocess.CompletedProcess, *parts: str) -> None:
    """Exit status 2 and one line on stderr that says what is wrong."""
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("unitgen: error: "), done.stderr
    for part in parts:
        assert part in lines[0]


@pytest.fixture(scope="session")
def keys(session_keygen) -> dict[str, str]:
    """Key files by role: alice, bob, carol (ed25519), weak (RSA 1024), private."""
    made = {name: session_keygen("ed25519", comment=f"{name}@laptop")
            for name in ("alice", "bob", "carol")}
    return {**{name: str(public(key)) for name, key in made.items()},
            "weak": str(public(session_keygen("rsa", bits=1024))),
            "private": str(made["carol"])}


@pytest.fixture(scope="session")
def template(tmp_path_factory, keys) -> Path:
    root = tmp_path_factory.mktemp("template")
    ok(root, "add", "alice", keys["alice"])
    ok(root, "add", "bob", keys["bob"], "--memory", "1g", "--disk", "20g")
    return root


@pytest.fixture
def populated(tmp_path, template) -> Path:
    """A root with alice on port 2200 and bob on 2201."""
    return Path(shutil.copytree(template, tmp_path / "root", symlinks=True))


@pytest.fixture
def empty(tmp_path) -> Path:
    root = tmp_path / "empty"
    root.mkdir()
    return root


# ---- add, show, list --------------------------------------------------------------------

def test_add_writes_the_person_files(empty, keys):
    out = ok(empty, "add", "alice", keys["alice"])
    assert out.splitlines() == ["added alice: port 2200, memory 512M, disk 10G, enabled at boot",
                                "start it with: systemctl start wormhole@alice.service"]
    for path in person_paths("alice"):
        assert (empty / path).exists() or (empty / path).is_symlink()
    key_line = Path(keys["alice"]).read_text().strip()
    assert f"restrict,pty {key_line}" in (
        empty / ETC / "keys/alice/authorized_keys").read_text().splitlines()
    assert (empty / ETC / "wormhole.toml").is_file()


def test_show_text(populated, keys):
    [key] = parse_keys(Path(keys["alice"]).read_text(), keys["alice"])
    lines = ok(populated, "show", "alice").splitlines()
    assert lines[:5] == ["user     alice", "port     2200", "state    unknown", "memory   512M",
                         "disk     10G (made at the first start)"]
    assert f"key      {key.fingerprint} ssh-ed25519 alice@laptop" in lines
    assert lines[-1].startswith("ssh      ssh -p 2200 user@")


def test_show_json(populated):
    info = json.loads(ok(populated, "show", "bob", "--json"))
    assert {k: info[k] for k in ("user", "port", "memory", "state", "disk", "home",
                                 "disk_used")} == {
        "user": "bob", "port": 2201, "memory": "1G", "state": "unknown", "disk": "20G",
        "home": "disk", "disk_used": None}
    assert [k["comment"] for k in info["keys"]] == ["bob@laptop"]


def test_list_text(populated):
    header, *rows = ok(populated, "list").splitlines()
    assert header.split() == ["USER", "PORT", "STATE", "MEMORY", "DISK", "IMAGE"]
    assert [r.split() for r in rows] == [
        ["alice", "2200", "unknown", "512M", "10G", "wormhole:latest"],
        ["bob", "2201", "unknown", "1G", "20G", "wormhole:latest"]]


def test_set_disk_records_the_cap_for_the_next_start(populated):
    assert ok(populated, "set", "alice", "--disk", "20g").splitlines() == [
        "alice: disk: 20G from the workspace's next start"]
    assert "WORMHOLE_DISK_SIZE=20G" in (populated / ETC / "env/alice.env").read_text()
    assert_refused(unitgen(populated, "set", "alice", "--disk", "100M"),
                   "--disk: '100M' is outside 256M to 8T")


def test_list_json(populated, empty):
    rows = json.loads(ok(populated, "list", "--json"))
    assert [(r["user"], r["port"], r["state"]) for r in rows] == [
        ("alice", 2200, "unknown"), ("bob", 2201, "unknown")]
    assert json.loads(ok(empty, "list", "--json")) == []


def test_read_commands_change_nothing(populated):
    before = snapshot(populated)
    ok(populated, "list")
    ok(populated, "show", "alice", "--json")
    assert snapshot(populated) == before


def test_add_with_limits(empty, keys):
    ok(empty, "add", "alice", keys["alice"], "--memory", "1024m", "--image", "ghcr.io/o/ws:1")
    info = json.loads(ok(empty, "show", "alice", "--json"))
    assert (info["memory"], info["image"]) == ("1G", "ghcr.io/o/ws:1")


# ---- ports ------------------------------------------------------------------------------

def test_ports_go_to_the_lowest_free_one_skipping_taken_ones(empty, keys):
    ok(empty, "add", "alice", keys["alice"], "--port", "2201")
    ok(empty, "add", "bob", keys["bob"])
    ok(empty, "add", "carol", keys["carol"])
    ports = {r["user"]: r["port"] for r in json.loads(ok(empty, "list", "--json"))}
    assert ports == {"alice": 2201, "bob": 2200, "carol": 2202}


def test_a_freed_port_is_given_out_again(populated, keys):
    ok(populated, "remove", "alice")
    assert "port 2200" in ok(populated, "add", "carol", keys["carol"])


def test_ports_follow_the_configured_range(empty, keys):
    (empty / ETC).mkdir(parents=True)
    (empty / ETC / "wormhole.toml").write_text("port_min = 3000\nport_max = 3001\n")
    ok(empty, "add", "alice", keys["alice"])
    ok(empty, "add", "bob", keys["bob"])
    before = snapshot(empty)
    assert_refused(unitgen(empty, "add", "carol", keys["carol"]),
                   "no free port left in 3000-3001", "widen port_min/port_max")
    assert snapshot(empty) == before
    assert [r["port"] for r in json.loads(ok(empty, "list", "--json"))] == [3000, 3001]


# ---- remove -----------------------------------------------------------------------------

def test_remove_deletes_only_that_persons_files(populated):
    bob = {k: v for k, v in snapshot(populated).items() if "bob" in k}
    out = ok(populated, "remove", "alice")
    assert out.splitlines()[0] == "removed alice"
    assert "kept alice's home and host key" in out
    for path in person_paths("alice"):
        assert not (populated / path).exists() and not (populated / path).is_symlink()
    assert not (populated / ETC / "keys/alice").exists()
    assert {k: v for k, v in snapshot(populated).items() if "bob" in k} == bob
    assert [r["user"] for r in json.loads(ok(populated, "list", "--json"))] == ["bob"]


def test_removing_everyone_prunes_their_folders_and_keeps_the_rest(populated):
    ok(populated, "remove", "alice")
    ok(populated, "remove", "bob")
    assert sorted(p.name for p in (populated / ETC).iterdir()) == [
        "cli.env", "generated.json", "libexec", "wormhole.toml"]
    assert not (populated / WANTS).exists()
    assert (populated / "etc/systemd/system/wormhole@.service").is_file()


def test_adding_a_person_again_as_registered_changes_nothing(populated, keys):
    before = snapshot(populated)
    assert "added alice: port 2200" in ok(populated, "add", "alice", keys["alice"])
    assert snapshot(populated) == before


def test_add_after_remove_gives_the_same_files(populated, template, keys):
    ok(populated, "remove", "alice")
    ok(populated, "add", "alice", keys["alice"])
    assert snapshot(populated) == snapshot(template)


# ---- bad input changes nothing ----------------------------------------------------------

REFUSED = [
    pytest.param(["add", "alice", "{bob}"],
                 ["alice exists already (port 2200), with other values",
                  "run: unitgen remove alice"], id="exists"),
    pytest.param(["add", "alice", "{alice}", "--memory", "1G"],
                 ["alice exists already (port 2200), with other values"], id="exists-other-memory"),
    pytest.param(["add", "carol", "{carol}", "--port", "2201"],
                 ["--port: port 2201 is taken by bob", "pick another"], id="port-taken"),
    pytest.param(["add", "carol", "{carol}", "--port", "3000"],
                 ["port 3000 is outside the range 2200-2999", "pick one inside it"],
                 id="port-outside"),
    pytest.param(["add", "carol", "{carol}", "--port", "80"], ["outside the range"],
                 id="port-low"),
    pytest.param(["add", "carol", "{carol}", "--start"],
                 ["--start needs the live host", "leave out --root"], id="start-with-root"),
    pytest.param(["add", "Carol", "{carol}"], ["user name 'Carol' is not allowed"],
                 id="bad-name"),
    pytest.param(["add", "root", "{carol}"], ["user name 'root' is reserved"], id="reserved"),
    pytest.param(["add", "carol", "/nonexistent/carol.pub"],
                 ["cannot read public key file /nonexistent/carol.pub: No such file or directory",
                  "give the path of a public key file"], id="no-key-file"),
    pytest.param(["add", "carol", "/"], ["cannot read public key file /: Is a directory"],
                 id="key-file-dir"),
    pytest.param(["add", "carol", "{weak}"], [":1: RSA key of 1024 bits is too weak"],
                 id="weak-key"),
    pytest.param(["add", "carol", "{private}"], ["is a private key", "ssh-keygen -y"],
                 id="private-key"),
    pytest.param(["add", "carol", "{carol}", "{carol}"],
                 ["is given twice", "give each key once"], id="key-twice"),
    pytest.param(["add", "carol", "{carol}", "--memory", "63M"],
                 ["--memory: '63M' is outside 64M to 1T"], id="memory-small"),
    pytest.param(["add", "carol", "{carol}", "--memory", "1.5G"], ["'1.5G' is not a size"],
                 id="memory-bad"),
    pytest.param(["add", "carol", "{carol}", "--image", "Bad"],
                 ["--image: 'Bad' is not an image reference"], id="image-bad"),
    pytest.param(["remove", "zed"], ["there is no workspace named zed", "see: unitgen list"],
                 id="remove-unknown"),
    pytest.param(["remove", "Zed"], ["user name 'Zed' is not allowed"], id="remove-bad-name"),
    pytest.param(["remove", "alice", "--purge"],
                 ["--purge deletes alice's home and host key for good", "add --yes to confirm"],
                 id="purge-without-yes"),
    pytest.param(["remove", "alice", "--purge", "--yes"],
                 ["--purge deletes volumes in the engine", "leave out --root to purge"],
                 id="purge-with-root"),
    pytest.param(["show", "zed"], ["there is no workspace named zed"], id="show-unknown"),
    pytest.param(["image", "build"], ["leave out --root"], id="image-build-with-root"),
]


@pytest.mark.parametrize(("args", "parts"), REFUSED)
def test_bad_input_is_refused_and_changes_nothing(populated, keys, args, parts):
    before = snapshot(populated)
    assert_refused(unitgen(populated, *(a.format(**keys) for a in args)), *parts)
    assert snapshot(populated) == before


@pytest.mark.parametrize("args", [
    pytest.param(["add", "alice", "{alice}", "--start"], id="start-with-root"),
    pytest.param(["remove", "alice"], id="remove-unknown"),
    pytest.param(["show", "alice"], id="show-unknown"),
    pytest.param(["add", "alice", "{weak}"], id="weak-key"),
])
def test_bad_input_on_an_empty_root_creates_nothing(empty, keys, args):
    assert_refused(unitgen(empty, *(a.format(**keys) for a in args)))
    assert snapshot(empty) == {}


def test_a_broken_config_is_refused_and_changes_nothing(populated, keys):
    (populated / ETC / "wormhole.toml").write_text("port_min = 3000\nport_max = 2500\n")
    before = snapshot(populated)
    assert_refused(unitgen(populated, "add", "carol", keys["carol"]),
                   "/etc/wormhole/wormhole.toml: port_min 3000 is above port_max 2500",
                   "swap them")
    assert snapshot(populated) == before


def test_a_people_file_key_with_a_newline_is_refused(populated, keys):
    line = Path(keys["alice"]).read_text().strip()
    smuggled = f'{line}\ncommand="/bin/sh" {line.rsplit(" ", 1)[0]}'
    (populated / ETC / "people/alice.toml").write_text(
        tomli_w.dumps({"port": 2200, "keys": [smuggled]}))
    before = snapshot(populated)
    assert_refused(unitgen(populated, "add", "carol", keys["carol"]), "alice.toml")
    assert snapshot(populated) == before


def test_a_missing_root_is_bad_input(tmp_path, keys):
    done = unitgen(tmp_path / "missing", "add", "alice", keys["alice"])
    assert done.returncode == 2
    assert done.stderr.startswith("unitgen: error: --root ")
    assert not (tmp_path / "missing").exists()


USAGE_ERRORS = [
    pytest.param(["--bogus"], id="top-level"),
    pytest.param(["add", "--bogus", "carol", "{carol}"], id="add"),
    pytest.param(["list", "--bogus"], id="list"),
    pytest.param(["remove", "alice", "--force"], id="remove"),
    pytest.param(["add", "carol", "{carol}", "--port", "abc"], id="port-not-a-number"),
    pytest.param(["add", "carol"], id="missing-key-file"),
]


@pytest.mark.parametrize("args", USAGE_ERRORS)
def test_usage_errors_exit_2_and_change_nothing(populated, keys, args):
    before = snapshot(populated)
    done = unitgen(populated, *(a.format(**keys) for a in args))
    assert (done.returncode, done.stdout) == (2, "")
    assert snapshot(populated) == before


@pytest.mark.parametrize("args", USAGE_ERRORS)
def test_usage_errors_are_one_line(populated, keys, args):
    assert_refused(unitgen(populated, *(a.format(**keys) for a in args)))


# ---- concurrency ------------------------------------------------------------------------

def test_concurrent_adds_all_succeed_with_distinct_ports(empty, keygen):
    key_files = [public(keygen("ed25519", comment=f"user{n}")) for n in range(8)]
    runs = [subprocess.Popen([*UNITGEN, "--root", str(empty), "add", f"user{n}", str(key)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for n, key in enumerate(key_files)]
    results = [(*run.communicate(timeout=120), run.returncode) for run in runs]
    assert all(code == 0 and err == "" for _, err, code in results), results
    people = sorted((empty / ETC / "people").glob("*.toml"))
    assert [p.stem for p in people] == [f"user{n}" for n in range(8)]
    for path in people:
        registry.load_person(path.stem, path.read_text(), str(path))
        assert tomllib.loads(path.read_text())["keys"]
    host = load(Root(empty))
    assert sorted(p.port for p in host.people) == list(range(2200, 2208))
    leftovers = [p for p in empty.rglob("*") if "transaction" in p.name or "unitgen-new" in p.name]
    assert leftovers == []
    manifest = json.loads((empty / ETC / "generated.json").read_text())
    assert all(f"/{path}" in manifest for n in range(8) for path in person_paths(f"user{n}"))


@pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="systemd runs here")
def test_the_live_root_without_systemd_is_a_clear_error(keys):
    done = subprocess.run([*UNITGEN, "add", "carol", keys["carol"]], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == ("unitgen: error: systemd is not running on this machine; run "
                           "unitgen on a systemd host, or give --root DIR to only write files\n")
    assert not Path("/etc/wormhole").exists()
