"""unitgen.restic: where the repository is, snapshot choice, what restore --all brings
back, restic's failures. Fast and pure."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unitgen import restic
from unitgen.errors import BadInput
from unitgen.model import Settings

T0 = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
HOST = "lab1"


def raw(user: str, hours: float, number: int, host: str = HOST, paths=None,
        tags=()) -> dict:
    moment = (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", ".123456789Z")
    return {"id": f"{number:02x}" * 32, "time": moment, "hostname": host,
            "tags": [f"user={user}", f"host={host}", *tags],
            "paths": paths or restic.paths(user)}


LISTING = [raw("ann", 0, 1), raw("bob", 1, 2), raw("ann", 24, 3), raw("ann", 48, 4),
           raw("ann", 47, 5, host="old")]


def found(listing=LISTING):
    return restic.snapshots(listing)


def test_restic_times_keep_their_offset_and_drop_nanoseconds_beyond_micro():
    assert restic.parse_time("2026-12-03T07:33:03.604988496Z") == datetime(
        2026, 12, 3, 7, 33, 3, 604988, tzinfo=UTC)
    assert restic.parse_time("2026-12-03T08:33:03+01:00") == datetime(
        2026, 12, 3, 7, 33, 3, tzinfo=UTC)
    with pytest.raises(ValueError):
        restic.parse_time("yesterday")


def test_snapshots_sort_by_time_not_by_listing_order():
    snapshots = restic.snapshots(list(reversed(LISTING)))
    assert [s.id[:2] for s in snapshots] == ["01", "02", "03", "05", "04"]
    assert snapshots[0].user == "ann" and snapshots[0].short_id == "01010101"


def test_pick_newest_of_this_host_unless_another_is_named():
    assert restic.pick(found(), "ann", restic.Pick(), HOST).id.startswith("04")
    assert restic.pick(found(), "ann", restic.Pick(host="old"), HOST).id.startswith("05")
    assert restic.pick(found(), "bob", restic.Pick(), HOST).id.startswith("02")


def test_pick_as_of_takes_the_newest_at_or_before():
    exactly = restic.parse_time(LISTING[2]["time"])
    assert restic.pick(found(), "ann", restic.Pick(as_of=exactly), HOST).id.startswith("03")
    earlier = restic.Pick(as_of=exactly - timedelta(microseconds=1))
    assert restic.pick(found(), "ann", earlier, HOST).id.startswith("01")
    assert restic.pick(found(), "ann", restic.Pick(as_of=restic.when("2026-12-02")),
                       HOST).id.startswith("03")
    with pytest.raises(BadInput, match="no snapshot of ann from host lab1 at or before"):
        restic.pick(found(), "ann", restic.Pick(as_of=T0 - timedelta(seconds=1)), HOST)


def test_pick_by_id_prefix_only_among_the_persons_own():
    assert restic.pick(found(), "ann", restic.Pick("03030303"), HOST).id.startswith("03")
    with pytest.raises(BadInput, match="no snapshot of bob has an id starting 03030303"):
        restic.pick(found(), "bob", restic.Pick("03030303"), HOST)
    with pytest.raises(BadInput, match="both given"):
        restic.pick(found(), "ann", restic.Pick("03030303", T0), HOST)
    with pytest.raises(BadInput, match="neither an archive nor a snapshot id"):
        restic.snapshot_id("latest")


def test_pick_ignores_incomplete_snapshots_markers_and_no_user_tag():
    listing = [raw("ann", 0, 1), raw("ann", 5, 2, paths=["/data/home", "/data/hostkeys"]),
               {**raw("ann", 6, 3), "tags": ["user=ann", "user=bob"]},
               raw("ann", 7, 4, paths=["/wormhole/ann/removed"], tags=["removed"])]
    assert restic.pick(found(listing), "ann", restic.Pick(), HOST).id.startswith("01")


def test_pick_ambiguous_prefix_is_refused():
    listing = [raw("ann", 0, 1), {**raw("ann", 1, 2), "id": "01" * 4 + "ff" * 28}]
    with pytest.raises(BadInput, match="more than one snapshot"):
        restic.pick(found(listing), "ann", restic.Pick("01010101"), HOST)


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=20, unique=True),
       st.integers(-10, 10_010))
def test_as_of_is_the_latest_not_after(minutes, cutoff):
    snapshots = found([raw("ann", m / 60, i) for i, m in enumerate(minutes)])
    as_of = T0 + timedelta(minutes=cutoff, seconds=1)
    before = [m for m in minutes if m <= cutoff]
    if not before:
        with pytest.raises(BadInput):
            restic.pick(snapshots, "ann", restic.Pick(as_of=as_of), HOST)
        return
    chosen = restic.pick(snapshots, "ann", restic.Pick(as_of=as_of), HOST)
    assert chosen.time == T0 + timedelta(minutes=max(before), microseconds=123456)


def test_when_reads_dates_as_their_end_and_naive_times_as_utc():
    assert restic.when("2026-12-02") == datetime(2026, 12, 2, 23, 59, 59, 999999, tzinfo=UTC)
    assert restic.when("2026-12-02T10:00") == datetime(2026, 12, 2, 10, tzinfo=UTC)
    assert restic.when("2026-12-02T10:00+02:00").utcoffset() == timedelta(hours=2)
    with pytest.raises(BadInput, match="is not a time"):
        restic.when("last tuesday")


def test_recovery_takes_each_persons_newest_and_leaves_out_who_left():
    listing = [raw("ann", 0, 1), raw("ann", 2, 2), raw("bob", 1, 3),
               raw("bob", 3, 4, paths=["/wormhole/bob/removed"], tags=["removed"]),
               raw("cy", 1, 5), raw("cy", 2, 6, paths=["/wormhole/cy/removed"],
                                    tags=["removed"]), raw("cy", 4, 7),
               raw("dee", 1, 8, host="other")]
    chosen, gone = restic.recovery(found(listing), HOST)
    assert {u: s.id[:2] for u, s in chosen.items()} == {"ann": "02", "cy": "07"}
    assert gone == ["bob"]
    # As of a time before bob left and before cy came back.
    chosen, gone = restic.recovery(found(listing), HOST, T0 + timedelta(hours=2, minutes=30))
    assert {u: s.id[:2] for u, s in chosen.items()} == {"ann": "02", "bob": "03"}
    assert gone == ["cy"]


def test_latest_and_overdue():
    newest = restic.latest(found(), host=HOST)
    assert {u: s.id[:2] for u, s in newest.items()} == {"ann": "04", "bob": "02"}
    now = T0 + timedelta(hours=50)
    assert restic.overdue(newest, ["ann", "bob", "cy"], now, 86400) == ["bob", "cy"]


# The messages below are restic 0.14.0's own, as the lab printed them.
@pytest.mark.parametrize(("output", "kind"), [
    ("unable to create lock in backend: repository is already locked exclusively by PID 1 "
     "on 7b6d5dbe2aa4 by root (UID 0, GID 0)", "locked"),
    ("Fatal: wrong password or no key found", "wrong password"),
    ("Resolving password failed: Fatal: /run/secrets/restic/password does not exist",
     "no password"),
    ("Fatal: unable to open config file: unexpected HTTP response (401): 401 Unauthorized\n"
     "Is there a repository at the following location?", "refused"),
    ("Fatal: unable to open config file: client.Head: Head \"http://w:***@repo:8000/config\": "
     "dial tcp 172.19.0.2:8000: connect: connection refused", "unreachable"),
    ("Fatal: unable to open config file: client.Head: Head \"http://w:***@repo:8000/config\": "
     "dial tcp: lookup repo on 127.0.0.11:53: no such host", "unreachable"),
    ("Fatal: unable to open config file: <config/> does not exist\n"
     "Is there a repository at the following location?", "no repository"),
    ("Fatal: unable to open config file: stat /repo/config: no such file or directory",
     "no repository"),
    ("Save(<data/3fb6b0da7e>) returned error, retrying after 552ms: server response "
     "unexpected: 500 Internal Server Error (500)\nFatal: unable to save snapshot: server "
     "response unexpected: 500 Internal Server Error (500)", "server error"),
    ("Fatal: unable to save snapshot: write /repo/data/ab/x: no space left on device", "full"),
    ("Pack ID does not match, want 095a94fa62, got d63fba599a\nFatal: repository contains "
     "errors", "damaged"),
    ("something new", "failed"),
])
def test_failure_kinds(output, kind):
    found_kind, line, fix = restic.failure(output)
    assert found_kind == kind
    assert line in output and fix
    assert "retrying" not in line


def test_failure_prefers_restics_verdict_and_hides_a_password():
    output = ("Save(<data/3f>) returned error, retrying after 1s: server response unexpected: "
              "500 Internal Server Error (500)\nFatal: unable to save snapshot: server response "
              "unexpected: 500 Internal Server Error (500)")
    assert restic.failure(output)[1].startswith("Fatal: unable to save snapshot")
    said = restic.failure('Fatal: Head "http://w:s3cret@repo:8000/config": dial tcp x')[1]
    assert "s3cret" not in said and "w:***@repo" in said


def test_command_lines_and_settings():
    assert restic.backup_command("ann", "lab1") == [
        "backup", "--host", "lab1", "--tag", "user=ann,host=lab1",
        "/wormhole/ann/home", "/wormhole/ann/hostkeys", "/wormhole/ann/person.toml"]
    b = restic.backups(Settings(backup_keep=14), host="lab1")
    assert (b.location, b.local, b.network, b.pull) == (
        "/var/lib/wormhole/backups/restic.repo", True, "none", "never")
    assert restic.forget_command(b) == [
        "forget", "--tag", "host=lab1", "--group-by", "tags", "--keep-daily", "14",
        "--keep-weekly", "4", "--keep-monthly", "6", "--prune"]
    remote = restic.backups(Settings(host="ws1", backup_repository="sftp:u@h:/r",
                                     backup_image="reg.example.com/b:1"), host="lab1")
    assert (remote.host, remote.local, remote.network, remote.sftp, remote.pull) == (
        "ws1", False, "wormhole-backup", True, "missing")
    assert restic.restore_mount("ann", "home") == "/restore/wormhole/ann/home"


def test_redact_hides_the_password_and_plain_drops_the_credentials():
    assert restic.redact("rest:http://wormhole:s3cret@repo:8000/") == \
        "rest:http://wormhole:***@repo:8000/"
    assert restic.plain("rest:http://wormhole:s3cret@repo:8000/") == "rest:http://repo:8000/"
    assert restic.plain("/var/lib/wormhole/restic") == "/var/lib/wormhole/restic"


def test_new_passwords_are_long_and_differ():
    first, second = restic.new_password(), restic.new_password()
    assert first != second and len(first) >= 43 and first.isascii()


def test_what_a_snapshot_takes_on_a_disk_counts_the_persons_trees_in_whole_blocks():
    listing = "\n".join(json.dumps(n) for n in [
        {"time": "2026-12-01T01:00:00Z", "paths": [], "struct_type": "snapshot"},
        {"name": "wormhole", "type": "dir", "path": "/wormhole", "struct_type": "node"},
        {"name": "al", "type": "dir", "path": "/wormhole/al", "struct_type": "node"},
        {"name": "home", "type": "dir", "path": "/wormhole/al/home", "struct_type": "node"},
        {"name": "f", "type": "file", "path": "/wormhole/al/home/f", "size": 5000,
         "struct_type": "node"},
        {"name": "e", "type": "file", "path": "/wormhole/al/home/e", "struct_type": "node"},
        {"name": "l", "type": "symlink", "path": "/wormhole/al/home/l", "struct_type": "node"},
        {"name": "hostkeys", "type": "dir", "path": "/wormhole/al/hostkeys",
         "struct_type": "node"},
        {"name": "person.toml", "type": "file", "path": "/wormhole/al/person.toml",
         "size": 90000, "struct_type": "node"},
        {"name": "x", "type": "file", "path": "/wormhole/al/homework", "size": 90000,
         "struct_type": "node"},
    ])
    # home, f (2 blocks), e (none), l, hostkeys: the record and other paths left out.
    assert restic.need(listing + "\n", "al") == (5 * 4096, 5)
    assert restic.need("", "al") == (0, 0)
