"""Backups with restic, without restic: unitgen.ops over a fake edge whose repository is plain
data (backup, restore from a snapshot, restore --all of a lost host, removal), the root-only
secrets, the repository setting, and what provisioning carries. The files under a throwaway
root are real."""

import json
import os
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fake_edge import FakeEdge
from tests.helpers import assert_message, snapshot
from tests.test_ops import KEY, crew, person, wanted
from unitgen import credentials, names, ops, provision, restic, validate
from unitgen.disk import Need
from unitgen.errors import BadInput, Failed
from unitgen.files import Root
from unitgen.keys import parse_key
from unitgen.model import Host, Settings
from unitgen.render import render_provisioned, restic_script

OTHER = parse_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOF5axSyZPaF1zAuAeOFnTArJae1M1tYRi4Th/"
                  "FSTY1v other")
SAID: list[str] = []


@pytest.fixture
def root(tmp_path: Path) -> Root:
    SAID.clear()
    return Root(tmp_path)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---- the secrets -----------------------------------------------------------------------

def test_the_secrets_are_made_once_root_only_and_never_overwritten(root):
    told = credentials.ensure(root, Settings(backup_repository="rest:https://r.example:8000/"))
    folder = root(names.SECRETS)
    assert mode(folder) == 0o700
    assert [mode(folder / n) for n in ("password", "repository")] == [0o600, 0o600]
    assert (folder / "repository").read_text() == "rest:https://r.example:8000/\n"
    assert len(told) == 2 and "keep a copy away from this host" in told[0]
    assert "add its credentials there" in told[1]
    password = (folder / "password").read_text()
    assert len(password.strip()) >= 43
    (folder / "repository").write_text("rest:https://u:pw@r.example:8000/\n")
    assert credentials.ensure(root, Settings()) == []
    assert (folder / "password").read_text() == password
    assert "u:pw@" in (folder / "repository").read_text()
    assert sorted(os.listdir(folder)) == ["password", "repository"]


def test_a_local_repository_needs_no_word_about_credentials(root):
    told = credentials.ensure(root, Settings())
    assert len(told) == 1
    assert root(names.REPOSITORY_FILE).read_text() == \
        "/var/lib/wormhole/backups/restic.repo\n"


def test_a_link_in_place_of_the_secrets_folder_is_refused(root, tmp_path):
    root("/etc/wormhole").mkdir(parents=True)
    root(names.SECRETS).symlink_to(tmp_path)
    with pytest.raises(BadInput, match="is a symbolic link"):
        credentials.ensure(root, Settings())
    assert not (tmp_path / "password").exists()


def test_problems_name_what_the_units_would_miss(root):
    assert "does not exist" in credentials.problems(root, Settings())[0]
    credentials.ensure(root, Settings())
    assert credentials.problems(root, Settings()) == []
    root(names.PASSWORD).write_text("")
    os.chmod(root(names.SECRETS), 0o755)
    root(names.REPOSITORY_FILE).write_text("rest:http://u:p@elsewhere:8000/\n")
    found = credentials.problems(root, Settings())
    assert len(found) == 3
    assert "readable by others" in found[0] and "password is missing or empty" in found[1]
    assert "names rest:http://elsewhere:8000/, the config" in found[2]
    assert "u:p@" not in " ".join(found)


# ---- the repository setting --------------------------------------------------------------

@pytest.mark.parametrize("value", ["", "/srv/backups/restic", "sftp:b@store.example:/srv/r",
                                   "rest:https://backup.example.com:8000/ws1",
                                   "s3:s3.example.com/bucket/ws1"])
def test_repositories_accepted(value):
    assert validate.repository(value, "x") == value


@pytest.mark.parametrize(("value", "message"), [
    ("rest:https://user:s3cret@backup.example.com/", "carries credentials"),
    ("/etc/restic", "under /var, /srv or /mnt"),
    ("ftp://x", "no restic repository unitgen takes"),
    ("rest:https://host/$(id)", "no restic repository unitgen takes"),
    ("rest:https://host/\nExecStart=x", "no restic repository unitgen takes"),
])
def test_repositories_refused(value, message):
    with pytest.raises(BadInput) as refused:
        validate.repository(value, "wormhole.toml: backup_repository")
    assert_message(str(refused.value), message)
    assert "s3cret" not in str(refused.value)


# ---- backup ------------------------------------------------------------------------------

def test_the_first_add_makes_the_secrets_and_says_so_once(root):
    edge = FakeEdge()
    first = ops.add(root, edge, wanted(person("al")), start=False)
    assert len(first.notes) == 1 and "keep a copy away from this host" in first.notes[0]
    assert first.missing_images == ["wormhole-backup:latest"]
    assert ops.add(root, edge, wanted(person("bo")), start=False).notes == []
    assert root(names.PASSWORD).is_file()


def test_backup_says_each_snapshot(root):
    edge = FakeEdge()
    crew(root, edge, "al", "bo")
    made = ops.backup(root, edge, ops.load(root), ["al", "bo"], SAID.append)
    assert [f"[1/2] al: snapshot {made['al']}", f"[2/2] bo: snapshot {made['bo']}"] == SAID
    assert ("start", names.backup_unit("al"), names.backup_unit("bo")) in edge.calls


def test_a_failed_backup_is_named_and_fails_the_command(root):
    edge = FakeEdge()
    crew(root, edge, "al", "bo")
    edge.failing_backups = {"bo"}
    with pytest.raises(Failed) as failed:
        ops.backup(root, edge, ops.load(root), ["al", "bo"], SAID.append)
    assert_message(str(failed.value), "the backup of bo failed",
                   "journalctl -u wormhole-backup@bo.service -u wormhole-repository.service")
    assert SAID[-1] == "[2/2] bo: backup FAILED, see: journalctl -u wormhole-backup@bo.service"


def test_repair_rebuilds_the_index_then_rereads_every_file_and_clears_the_flag(root):
    edge = FakeEdge()
    crew(root, edge, "al")
    seen: list[bool] = []
    edge.saved = lambda people, since: seen.append(root(names.REREAD).exists()) or {"al": "1"}
    edge.calls.clear()
    ops.backup(root, edge, ops.load(root), ["al"], SAID.append, repair=True)
    assert edge.calls.index(("rebuild-index",)) < edge.calls.index(
        ("start", names.backup_unit("al")))
    assert seen == [True] and not root(names.REREAD).exists()
    assert "every backup reads each file again" in SAID[-2]


def test_a_failed_repair_leaves_no_flag_behind(root):
    edge = FakeEdge()
    crew(root, edge, "al")
    edge.failing_backups = {"al"}
    with pytest.raises(Failed):
        ops.backup(root, edge, ops.load(root), ["al"], SAID.append, repair=True)
    assert not root(names.REREAD).exists()


def test_held_backups_are_refused_before_any_starts(root):
    edge = FakeEdge()
    crew(root, edge, "al")
    credentials.ensure(root, Settings())
    root(names.HOLD).write_text("held\n")
    edge.calls.clear()
    with pytest.raises(BadInput, match="run unitgen restore --all"):
        ops.backup(root, edge, ops.load(root), ["al"], SAID.append)
    assert edge.calls == []


def test_remove_leaves_the_marker_after_the_final_backup(root):
    edge = FakeEdge()
    crew(root, edge, "al")
    ops.remove(root, edge, "al", purge=False, final_backup=True, say=SAID.append)
    assert SAID[0].startswith("final backup: snapshot ") and SAID[1] == "removed al"
    assert ("mark-removed", "al", "lab") in edge.calls


# ---- restore from a snapshot ---------------------------------------------------------------

def test_restore_takes_the_newest_snapshot_onto_a_new_disk(root):
    edge = FakeEdge()
    host = crew(root, edge, "al")
    edge.add_snapshot("al", 1, 1, person=host.need("al"))
    newest = edge.add_snapshot("al", 2, 2, person=host.need("al"))
    edge.add_snapshot("al", 3, 3, host="elsewhere")
    used = ops.restore(root, edge, "al", None, restic.Pick(), None, True, SAID.append)
    assert used == f"snapshot {newest[:8]} of 2026-12-01 02:00 UTC"
    assert ("restore-snapshot", "al", newest[:8], names.disk_image("al", 1)) in edge.calls
    assert ("make-disk", names.disk_image("al", 1), names.disk_aside("al"), "10G") in edge.calls
    assert SAID[0].startswith("backed up the current data first: al snapshot ")
    assert ops.load(root).need("al").generation == 1
    assert set(edge.disks) == {names.disk_image("al", 1)} and edge.mounted == {}


def test_a_snapshot_larger_than_the_disk_is_refused_before_anything_changes(root):
    edge = FakeEdge()
    crew(root, edge, "al")
    ops.set_limits(root, edge, "al", {"disk": "256M"}, restart=False)
    sid = edge.add_snapshot("al", 1, 1)
    edge.needs[sid] = Need(240 << 20, 100)
    before, calls = state(root, edge), len(edge.calls)
    with pytest.raises(BadInput) as refused:
        ops.restore(root, edge, "al", None, restic.Pick(), None, True, SAID.append)
    assert_message(str(refused.value), f"snapshot {sid[:8]} of 2026-12-01 01:00 UTC takes "
                   "240M, more than a 256M disk holds (220M)",
                   "give al a larger disk first: unitgen set al --disk SIZE")
    assert state(root, edge) == before
    assert [c[0] for c in edge.calls[calls:]] == ["snapshot-need"]


def test_a_failed_snapshot_restore_deletes_the_new_disk_and_changes_nothing(root):
    edge = FakeEdge(failing={"restore"})
    host = crew(root, edge, "al")
    edge.add_snapshot("al", 1, 1)
    with pytest.raises(Failed, match="restore failed"):
        ops.restore(root, edge, "al", None, restic.Pick(), None, False, SAID.append)
    assert ops.load(root) == host and edge.disks == {} and edge.mounted == {}


def test_restore_by_id_and_as_of(root):
    edge = FakeEdge()
    crew(root, edge, "al")
    first = edge.add_snapshot("al", 1, 1)
    edge.add_snapshot("al", 5, 2)
    ops.restore(root, edge, "al", None, restic.Pick(first[:8]), None, False, SAID.append)
    assert [c[2] for c in edge.calls if c[0] == "restore-snapshot"] == [first[:8]]
    edge.calls.clear()
    ops.restore(root, edge, "al", None, restic.Pick(as_of=restic.when("2026-12-01T03:00")),
                None, False, SAID.append)
    assert [c[2] for c in edge.calls if c[0] == "restore-snapshot"] == [first[:8]]


def test_host_key_names_the_snapshot_a_restore_would_take_and_its_key(root):
    edge = FakeEdge()
    crew(root, edge, "al")
    edge.add_snapshot("al", 1, 1, host="h1")
    newest = edge.add_snapshot("al", 5, 2, host="h1")
    host = ops.load(root)
    assert ops.host_key(edge, host, "al", restic.Pick(host="h1")) == \
        (newest, f"ssh-ed25519 KEY{newest[:8]}")
    edge.keyless.add(newest)
    with pytest.raises(BadInput) as refused:
        ops.host_key(edge, host, "al", restic.Pick(host="h1"))
    assert_message(str(refused.value), f"snapshot {newest[:8]} of al holds no host key")
    with pytest.raises(BadInput, match="no snapshot of al from host lab"):
        ops.host_key(edge, host, "al", restic.Pick())


def state(root: Root, edge: FakeEdge) -> tuple:
    return snapshot(root.path), sorted(edge.volumes)


def test_a_wrong_password_is_one_line_and_changes_nothing(root):
    edge = FakeEdge()
    crew(root, edge, "al")
    edge.add_snapshot("al", 1, 1)
    edge.password_wrong = True
    before, calls = state(root, edge), len(edge.calls)
    for attempt in (lambda: ops.restore(root, edge, "al", None, restic.Pick(), None, True,
                                        SAID.append),
                    lambda: ops.restore_all(root, edge, restic.Pick(), True, SAID.append)):
        with pytest.raises(BadInput) as refused:
            attempt()
        assert_message(str(refused.value), "(wrong password)", "/etc/wormhole/restic/password")
    assert state(root, edge) == before and len(edge.calls) == calls


def test_a_snapshot_without_a_host_key_is_refused_and_changes_nothing(root):
    edge = FakeEdge()
    crew(root, edge, "al")
    edge.keyless.add(edge.add_snapshot("al", 1, 1))
    before = state(root, edge)
    with pytest.raises(BadInput, match="holds no hostkeys/ssh_host_ed25519_key"):
        ops.restore(root, edge, "al", None, restic.Pick(), None, True, SAID.append)
    assert state(root, edge) == before


def test_someone_removed_comes_back_with_the_port_and_keys_their_snapshot_recorded(root):
    edge = FakeEdge()
    crew(root, edge, "al")
    edge.add_snapshot("bo", 1, 1, person=person("bo", 2345, memory="1G"))
    ops.restore(root, edge, "bo", None, restic.Pick(), None, True, SAID.append)
    bo = ops.load(root).need("bo")
    assert (bo.port, bo.keys, bo.memory, bo.generation) == (2345, (KEY,), "1G", 0)
    assert not [s for s in SAID if "backed up the current data" in s]


def test_a_recorded_port_that_is_taken_is_refused(root):
    edge = FakeEdge()
    crew(root, edge, "al")
    edge.add_snapshot("bo", 1, 1, person=person("bo", 2200))
    with pytest.raises(BadInput, match="port 2200 is taken by al"):
        ops.restore(root, edge, "bo", None, restic.Pick(), None, True, SAID.append)


# ---- restore --all: the recovery of a lost host ----------------------------------------------

def lost_host(edge: FakeEdge) -> None:
    """What a lost host left in the repository: cy and al with fixed ports, bo on demand,
    and dee, who left the host before it was lost."""
    edge.add_snapshot("al", 1, 1, person=replace(person("al", 2210), keys=(KEY, OTHER)))
    edge.add_snapshot("bo", 1, 2, person=person("bo", 2211, on_demand=True))
    edge.add_snapshot("cy", 1, 3, person=person("cy", 2200, memory="2G", disk="3G"))
    edge.add_snapshot("dee", 1, 4, person=person("dee", 2212))
    edge.add_snapshot("dee", 2, 5, removed=True)
    edge.add_snapshot("al", 3, 6, person=replace(person("al", 2210), keys=(KEY, OTHER)))


def test_restore_all_on_a_fresh_host_brings_everyone_back_as_recorded(root):
    edge = FakeEdge()
    lost_host(edge)
    credentials.ensure(root, Settings())
    root(names.HOLD).write_text("held\n")
    done = ops.restore_all(root, edge, restic.Pick(), True, SAID.append)
    assert done == ["al", "bo", "cy"]
    host = ops.load(root)
    assert [(p.name, p.port) for p in host.people] == [("al", 2210), ("bo", 2211), ("cy", 2200)]
    assert host.need("al").keys == (KEY, OTHER) and host.need("cy").memory == "2G"
    assert host.need("bo").on_demand
    restored = [c[1:] for c in edge.calls if c[0] == "restore-snapshot"]
    assert restored == [("al", "06060606", names.disk_image("al", 1)),
                        ("bo", "02020202", names.disk_image("bo", 1)),
                        ("cy", "03030303", names.disk_image("cy", 1))]
    made = {c[1]: c[3] for c in edge.calls if c[0] == "make-disk"}
    assert made == {names.disk_image("al", 1): "10G", names.disk_image("bo", 1): "10G",
                    names.disk_image("cy", 1): "3G"}  # each of the cap they recorded
    assert SAID[0] == "left out dee: they were removed from lab"
    assert ("start", names.REPOSITORY_UNIT) in edge.calls
    assert ("start", names.unit("al"), names.proxy_socket("bo"), names.unit("cy")) in edge.calls
    assert not root(names.HOLD).exists() and SAID[-1].startswith("backups of this host resume")


def test_restore_all_moves_ports_that_differ_and_stops_those_workspaces_first(root):
    edge = FakeEdge()
    crew(root, edge, "al", "cy")  # the fresh host gave al 2200 and cy 2201
    edge.add_snapshot("al", 1, 1, person=person("al", 2201))
    edge.add_snapshot("cy", 1, 2, person=person("cy", 2200))
    edge.calls.clear()
    ops.restore_all(root, edge, restic.Pick(), True, SAID.append)
    assert [(p.name, p.port, p.generation) for p in ops.load(root).people] == [
        ("al", 2201, 1), ("cy", 2200, 1)]
    stops = [c[1:3] for c in edge.calls if c[0] == "stop"]
    # each one's hold socket and workspace, then each one's data unit, since a backup may
    # hold the old disk mounted
    assert stops == [(names.hold_socket("al"), names.unit("al")),
                     (names.hold_socket("cy"), names.unit("cy")), (names.data_unit("al"),),
                     (names.data_unit("cy"),)]
    assert edge.calls.index(("stop", *ops.load(root).workspace(
        ops.load(root).need("al")).units)) < edge.calls.index(("start", names.REPOSITORY_UNIT))


def test_restore_all_refuses_recorded_ports_that_collide_and_changes_nothing(root):
    edge = FakeEdge()
    crew(root, edge, "zed")  # someone only the fresh host has, on 2200
    edge.add_snapshot("al", 1, 1, person=person("al", 2200))
    before = state(root, edge)
    with pytest.raises(BadInput) as refused:
        ops.restore_all(root, edge, restic.Pick(), True, SAID.append)
    assert_message(str(refused.value), "as the snapshots record them, port 2200 is held by al "
                   "and zed")
    assert state(root, edge) == before


def test_restore_all_refuses_a_recorded_port_something_else_holds(root):
    edge = FakeEdge(busy={2230})
    edge.add_snapshot("al", 1, 1, person=person("al", 2230))
    with pytest.raises(BadInput, match="port 2230 of al, as their snapshot records it, is in use"):
        ops.restore_all(root, edge, restic.Pick(), True, SAID.append)


def test_restore_all_refuses_a_snapshot_larger_than_its_disk_and_changes_nothing(root):
    edge = FakeEdge()
    lost_host(edge)
    edge.needs["03" * 32] = Need(4 << 30, 10)  # cy's, with a 3G cap
    before = snapshot(root.path)
    with pytest.raises(BadInput) as refused:
        ops.restore_all(root, edge, restic.Pick(), True, SAID.append)
    assert_message(str(refused.value), "cy's snapshot 03030303 takes 4G, more than a 3G disk")
    assert snapshot(root.path) == before and edge.disks == {}
    assert not [c for c in edge.calls if c[0] in ("start", "make-disk", "restore-snapshot")]


def test_restore_all_of_another_host_name_and_of_nothing(root):
    edge = FakeEdge()
    edge.add_snapshot("al", 1, 1, host="old-host", person=person("al", 2210))
    with pytest.raises(BadInput, match="holds no snapshot of host lab; see: unitgen snapshots"):
        ops.restore_all(root, edge, restic.Pick(), True, SAID.append)
    ops.restore_all(root, edge, restic.Pick(host="old-host"), True, SAID.append)
    assert ops.load(root).need("al").port == 2210


def test_restore_all_goes_on_past_a_person_who_does_not_answer(root):
    edge = FakeEdge()
    edge.add_snapshot("al", 1, 1, person=person("al", 2210))
    edge.add_snapshot("bo", 1, 2, person=person("bo", 2211))
    edge.broken = {2210}
    root("/etc/wormhole").mkdir(parents=True)
    credentials.ensure(root, Settings())
    root(names.HOLD).write_text("held\n")
    with pytest.raises(Failed) as failed:
        ops.restore_all(root, edge, restic.Pick(), True, SAID.append)
    assert_message(str(failed.value), "al could not be restored (the others were)")
    assert [c[1] for c in edge.calls if c[0] == "restore-snapshot"] == ["al", "bo"]
    assert root(names.HOLD).exists()  # backups wait until everyone is back


# ---- provisioning --------------------------------------------------------------------------

def test_ignition_carries_the_folders_and_no_secret_unless_asked(tmp_path):
    host = Host(Settings(backup_repository="rest:https://r.example/"))
    files = render_provisioned(host)
    config = json.loads(provision.ignition(files, replace(provision.Admin(), keys=(KEY,)),
                                           "3.3.0", directories=provision.directories(host)))
    assert config["storage"]["directories"] == [
        {"path": names.SECRETS, "mode": 0o700, "overwrite": False},
        {"path": names.RESTIC_CACHE, "mode": 0o700, "overwrite": False}]
    paths = {f["path"] for f in config["storage"]["files"]}
    assert f"{names.UNIT_DIR}/{names.REPOSITORY_UNIT}" in paths
    assert not [p for p in paths if p.startswith(names.SECRETS)]


def test_backup_secrets_go_to_the_new_host_root_only(tmp_path):
    kept = tmp_path / "kept"
    (kept / "ssh").mkdir(parents=True)
    (kept / "password").write_text("the password\n")
    (kept / "repository").write_text("rest:https://u:p@r.example/\n")
    (kept / "ssh" / "known_hosts").write_text("r.example ssh-ed25519 AAAA\n")
    found = credentials.provisioned(kept)
    assert {p: (a.text, a.mode) for p, a in found.items()} == {
        names.PASSWORD: ("the password\n", 0o600),
        names.REPOSITORY_FILE: ("rest:https://u:p@r.example/\n", 0o600),
        f"{names.SECRETS}/ssh/known_hosts": ("r.example ssh-ed25519 AAAA\n", 0o600)}
    (kept / "password").write_text("")
    with pytest.raises(BadInput, match="password is empty"):
        credentials.provisioned(kept)
    with pytest.raises(BadInput, match="cannot read backup secret password"):
        credentials.provisioned(tmp_path / "nowhere")


def test_the_ignition_command_takes_backup_secrets(tmp_path):
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "password").write_text("pw\n")
    (tmp_path / "admin.pub").write_text(OTHER.line + "\n")
    people = tmp_path / "people.toml"
    people.write_text(f'[people.al]\nkeys = ["{KEY.line}"]\n')
    done = subprocess.run([sys.executable, "-m", "unitgen", "ignition", "--from", str(people),
                           "--admin-key", str(tmp_path / "admin.pub"), "--backup-secrets",
                           str(kept)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    files = {f["path"]: f for f in json.loads(done.stdout)["storage"]["files"]}
    assert files[names.PASSWORD]["mode"] == 0o600
    assert "wormhole-backup:latest names no registry" in done.stderr


# ---- the script the backup image runs ---------------------------------------------------

def run_script(tmp_path: Path, *args: str, reread: bool = False,
               snapshots: str = "[]") -> list[str]:
    """The rendered wormhole-restic with a stand-in restic that logs its arguments, answers
    `cat config` for an existing repository and `snapshots` with `snapshots`."""
    bin_dir, secrets = tmp_path / "bin", tmp_path / "secrets"
    bin_dir.mkdir()
    secrets.mkdir()
    (secrets / "password").write_text("pw\n")
    if reread:
        (secrets / "reread").write_text("repair\n")
    log = tmp_path / "log"
    fake = bin_dir / "restic"
    (tmp_path / "snapshots.json").write_text(snapshots)
    fake.write_text(f'#!/bin/sh\necho "$*" >> {log}\n'
                    'case "$1" in cat) echo \'  "id": "0123abcd",\' ;;\n'
                    f'  snapshots) cat {tmp_path}/snapshots.json ;; esac\n')
    fake.chmod(0o755)
    (secrets / "repository").write_text("/srv/r\n")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "RESTIC_PASSWORD_FILE": str(secrets / "password"),
           "RESTIC_REPOSITORY_FILE": str(secrets / "repository"), "WORMHOLE_LOCATION": "/srv/r",
           "WORMHOLE_HOST": "h1"}
    subprocess.run(["/bin/sh", "-c", restic_script(), "wormhole-restic", *args], env=env,
                   check=True)
    return log.read_text().splitlines()


@pytest.mark.parametrize("reread", [False, True])
def test_a_backup_reads_every_file_again_only_during_a_repair(tmp_path, reread):
    said = run_script(tmp_path, "run", "backup", "/wormhole/al", reread=reread)
    assert said == ["backup /wormhole/al" + (" --force" if reread else "")]


MARKER = '[{"id": "aa", "paths": ["/wormhole/al/removed"], "tags": ["user=al", "removed"]}]'
DATA = '[{"id": "bb", "paths": ["/wormhole/al/home", "/wormhole/al/hostkeys"]}]'


@pytest.mark.parametrize(("found", "held"), [("[]", False), (MARKER, False), (DATA, True)])
def test_a_host_taking_over_holds_its_backups_only_for_its_own_data(tmp_path, found, held):
    """The markers that unitgen remove leaves are no data to bring back first."""
    run_script(tmp_path, "init", snapshots=found)
    assert (tmp_path / "secrets/hold").exists() == held
    assert (tmp_path / "secrets/initialized").read_text() == "0123abcd\n"


def test_the_reread_flag_touches_no_other_command(tmp_path):
    assert run_script(tmp_path, "run", "forget", "--prune", reread=True) == ["forget --prune"]


# ---- doctor on the repository ----------------------------------------------------------

@pytest.mark.parametrize(("used", "level"), [(False, "warn"), (True, "fail")])
def test_doctor_warns_of_a_repository_not_made_yet_and_fails_on_one_gone(root, monkeypatch,
                                                                          used, level):
    from unitgen import doctor, repository, systemctl

    credentials.ensure(root, Settings())
    if used:  # the repository unit has run here once, so a missing repository was lost
        root(names.INITIALIZED).write_text("0123abcd\n")
    missing = Failed("restic snapshots failed (no repository): Fatal: unable to open config "
                     f"file; there is no repository at that location; {names.REPOSITORY_UNIT} "
                     "creates it")
    monkeypatch.setattr(repository, "snapshots", lambda *a, **k: (_ for _ in ()).throw(missing))
    monkeypatch.setattr(systemctl, "states", lambda *units: systemctl.States())
    checks = list(doctor._backups(root, Host(Settings(host="h1"), (person("ann", 2200),))))
    assert [(c.level, c.what) for c in checks] == [(level, "backups")]
    assert ("not created yet" in checks[0].detail) is not used
    assert names.REPOSITORY_UNIT in checks[0].fix
