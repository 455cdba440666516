"""unitgen.fleetops with a fake fleet behind the transport: the commands each step sends, the
order of a move's steps, the undo of each step when one fails, the lock after each move, the
tar copies, and status. No host and no ssh."""

import json
import subprocess
from pathlib import Path

import pytest

from tests.fleet_fixture import compiled, text
from tests.helpers import assert_message
from unitgen import fleetops
from unitgen.errors import Failed
from unitgen.fleetops import Apply, Backup, Done, Remote, ResticSnapshots, Ssh
from unitgen.placement import Locked

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPmR0dvJ7s2hR+q6fNzdx1lJ4dAtx4mt1U9wh9g3B8pd"
SNAPSHOT = "0a1b2c3d"
FULL = SNAPSHOT * 8
ADDRESSES = {"10.0.0.1": "gw", "10.0.0.11": "h1", "10.0.0.12": "h2", "10.0.0.13": "h3"}


class FakeFleet:
    """Hosts as the transport sees them: unitgen, systemctl, cat, the atomic write and the
    gateway's ssh-keyscan. `fail(host, words, data)` makes a command fail; `answering` is
    whether workspaces answer the gateway, `key` the host key they answer with and that
    their snapshots hold; `snapshots` the hosts whose snapshots the repository holds."""

    def __init__(self, fail=None, answering: bool = True, key: str = HOST_KEY,
                 snapshots: tuple[str, ...] = ("h1", "h2", "h3")) -> None:
        self.calls: list[tuple[str, str]] = []
        self.snapshots = snapshots
        self.files: dict[tuple[str, str], bytes] = {}
        self.fail, self.answering, self.key = fail, answering, key

    def run(self, address, argv, data=None, sudo=True, timeout=600) -> Done:
        host, words = ADDRESSES[address], self.words(argv)
        self.calls.append((host, words))
        if self.fail and self.fail(host, words, data):
            return Done(1, b"", "unitgen: error: injected failure\n")
        if words.startswith("write "):
            self.files[(host, words[6:])] = data
        elif words.startswith("unitgen backup "):
            return Done(0, self.backup(words.split()[2:]), "")
        elif words.startswith("unitgen host-key ") and words.split()[-1] in self.snapshots:
            return Done(0, f"{FULL} {self.key}\n".encode(), "")
        elif words.startswith("unitgen host-key "):
            return Done(2, b"", "unitgen: error: the repository holds no snapshot of them\n")
        elif words.startswith("cat ") and (host, words[4:]) in self.files:
            return Done(0, self.files[(host, words[4:])], "")
        elif words.startswith("cat "):
            return Done(1, b"", f"cat: {words[4:]}: No such file or directory\n")
        elif words.startswith("keyscan ") and self.answering:
            return Done(0, f"{argv[-1]} {self.key}\n".encode(), "")
        elif words.startswith("keyscan "):
            return Done(1, b"", "")
        return Done(0, b"", "")

    @staticmethod
    def words(argv: list[str]) -> str:
        if argv[:2] == ["sh", "-c"]:
            return f"write {argv[4]}/{argv[5]}"
        if argv[0] == "env":
            return " ".join(argv[2:])
        if argv[0] == "ssh-keyscan":
            return f"keyscan {ADDRESSES[argv[-1]]}:{argv[argv.index('-p') + 1]}"
        return " ".join(a for a in argv if a != "--")

    @staticmethod
    def backup(names: list[str]) -> bytes:
        lines = [f"[{n}/{len(names)}] {name}: snapshot {SNAPSHOT}"
                 for n, name in enumerate(names, 1)]
        return "\n".join(lines).encode() + b"\n"

    def on(self, host: str) -> list[str]:
        return [words for at, words in self.calls if at == host]

    def door(self) -> str:
        """The gateway's /etc/hosts as last written."""
        return self.files[("gw", "/etc/hosts")].decode()


SOURCE = text({"h1": 10, "h2": 10, "h3": 10}, ["alice", "bob"], extra={"alice": 'host = "h2"'})
LOCKED = {"alice": Locked("h1", 2200), "bob": Locked("h1", 2201)}


def run_apply(fake: FakeFleet, tmp_path: Path, source: str = SOURCE,
              lock: dict | None = None):
    """apply against the fake; returns (result or the failure's message, lock writes)."""
    writes: list[dict] = []
    plan = compiled(source, LOCKED if lock is None else lock)
    repository = ResticSnapshots(plan)
    job = Apply(plan, Remote(fake, plan, wait=0), repository, writes.append, lambda _: None)
    try:
        return job.run(), writes
    except Failed as problem:
        return str(problem), writes


def test_a_move_runs_its_steps_in_order_and_writes_the_lock_once(tmp_path):
    fake = FakeFleet()
    result, writes = run_apply(fake, tmp_path)
    assert result.state == {"alice": Locked("h2", 2200), "bob": Locked("h1", 2201)}
    assert result.leftovers == []
    assert writes == [result.state]
    assert fake.calls == [
        ("gw", "cat /etc/hosts"),                                         # the door, as locked
        ("gw", "write /etc/hosts"),
        ("gw", "cat /etc/wormhole/gateway/authorized_keys"),
        ("gw", "write /etc/wormhole/gateway/authorized_keys"),
        ("h1", "systemctl stop wormhole@alice.service"),                  # 1 the last backup
        ("h1", "unitgen backup alice"),
        ("h1", f"unitgen host-key alice {SNAPSHOT} --from-host h1"),      # from the snapshot
        ("h2", "unitgen remove alice --no-backup --purge --yes"),         # 2 the restore
        ("h2", "write /var/lib/wormhole/fleet/alice.toml"),
        ("h2", "unitgen add --from /var/lib/wormhole/fleet/alice.toml"),
        ("h2", f"unitgen restore alice {FULL} --from-host h1 --no-backup"),
        ("h2", "systemctl start wormhole@alice.service"),
        ("gw", "keyscan h2:2200"),                                        # 3 the check
        ("gw", "cat /etc/hosts"),                                         # 4 the switch
        ("gw", "write /etc/hosts"),
        ("gw", "cat /etc/wormhole/gateway/authorized_keys"),              # (the keys stay)
        ("h1", "unitgen remove alice --no-backup --purge --yes")]         # 5 the source
    assert "10.0.0.12 alice.wormhole" in fake.door()
    # the file the target registers alice from: her values and her fleet port
    sent = fake.files[("h2", "/var/lib/wormhole/fleet/alice.toml")].decode()
    assert sent.startswith("[people.alice]\nport = 2200\nkeys = [") and "host" not in sent


STEPS = {
    "last backup": lambda at, words, data: words == "unitgen backup alice",
    "restore on the target": lambda at, words, data: words.startswith("unitgen restore alice"),
    "check it answers": None,  # the workspace does not answer the gateway
    "switch the front door": lambda at, words, data: at == "gw" and words == "write /etc/hosts"
    and b"10.0.0.12 alice.wormhole" in data,
}


@pytest.mark.parametrize("step", list(STEPS))
def test_a_move_that_fails_at_a_step_leaves_her_working_on_the_source(tmp_path, step):
    fake = FakeFleet(fail=STEPS[step], answering=step != "check it answers")
    message, writes = run_apply(fake, tmp_path)
    assert_message(message, f"alice: {step} failed", "alice works on h1 as before",
                   "run unitgen fleet apply again")
    assert all(state["alice"] == Locked("h1", 2200) for state in writes[-1:])
    h1 = fake.on("h1")
    assert h1[0] == "systemctl stop wormhole@alice.service"
    assert h1[-1] == "systemctl start wormhole@alice.service"  # working again on the source
    assert "unitgen remove alice --no-backup --purge --yes" not in h1  # her data is kept
    assert "10.0.0.11 alice.wormhole" in fake.door()
    if step != "last backup":  # whatever reached the target is taken away again
        assert fake.on("h2")[-1] == "unitgen remove alice --no-backup --purge --yes"
    else:
        assert fake.on("h2") == []


def test_the_switch_undone_puts_the_lock_back(tmp_path):
    message, writes = run_apply(FakeFleet(fail=STEPS["switch the front door"]), tmp_path)
    assert "switch the front door failed" in message
    assert [state["alice"].host for state in writes] == ["h2", "h1"]


def test_a_failed_removal_from_the_source_is_reported_and_the_move_stands(tmp_path):
    fake = FakeFleet(fail=lambda at, words, data: at == "h1" and words.startswith(
        "unitgen remove alice"))
    result, writes = run_apply(fake, tmp_path)
    assert result.state["alice"] == Locked("h2", 2200)
    assert writes[-1]["alice"] == Locked("h2", 2200)
    assert result.leftovers == ["alice: unitgen remove on 10.0.0.11: injected failure"]
    assert "10.0.0.12 alice.wormhole" in fake.door()
    assert "systemctl start wormhole@alice.service" not in fake.on("h1")


def test_a_workspace_that_answers_with_another_host_key_is_no_move(tmp_path):
    fake = FakeFleet()
    plan = compiled(SOURCE, LOCKED)
    remote = Remote(fake, plan, wait=0)
    fake.key = HOST_KEY.replace("IPmR", "IPmS")
    with pytest.raises(Failed) as caught:
        remote.answers("10.0.0.12", 2200, HOST_KEY)
    assert_message(str(caught.value), "answers with another host key than its backup's")


def test_each_completed_move_is_in_the_lock_before_the_next_begins(tmp_path):
    source = text({"h1": 10, "h2": 10}, ["alice", "bob"],
                  extra={"alice": 'host = "h2"', "bob": 'host = "h2"'})
    fake = FakeFleet(fail=lambda at, words, data: words.startswith("unitgen restore bob"))
    message, writes = run_apply(fake, tmp_path, source)
    assert "bob: restore on the target failed" in message
    assert writes == [{"alice": Locked("h2", 2200), "bob": Locked("h1", 2201)}]


def test_a_lost_hosts_people_come_back_from_their_last_backup(tmp_path):
    source = text({"h1": 10, "h2": 10}, ["alice", "bob"])
    lock = {"alice": Locked("h3", 2200), "bob": Locked("h1", 2201)}
    fake = FakeFleet()
    result, _ = run_apply(fake, tmp_path, source, lock)
    target = result.state["alice"].host
    assert result.state["alice"].port == 2200 and target in ("h1", "h2")
    assert fake.on(target)[:2] == ["unitgen host-key alice --from-host h3",  # h3's newest
                                   "unitgen remove alice --no-backup --purge --yes"]
    assert f"unitgen restore alice {FULL} --from-host h3 --no-backup" in fake.on(target)
    assert "keyscan" in " ".join(fake.on("gw"))
    assert fake.on("h3") == []  # nothing is asked of the lost host
    assert f"{'10.0.0.11' if target == 'h1' else '10.0.0.12'} alice.wormhole" in fake.door()


def test_without_a_backup_a_lost_hosts_person_stays_in_the_lock(tmp_path):
    source = text({"h1": 10}, ["alice"])
    message, writes = run_apply(FakeFleet(snapshots=()), tmp_path, source,
                                {"alice": Locked("h3", 2200)})
    assert_message(message, "alice: last backup failed (h3 is gone and no backup of alice "
                            "could be read (unitgen host-key on 10.0.0.11: the repository "
                            "holds no snapshot of them); see: unitgen fleet backup)",
                   "alice stays in the lock on h3, which is gone")
    assert writes == []


def test_a_newcomer_is_added_started_checked_then_let_in(tmp_path):
    source = text({"h1": 10}, ["alice", "carol"], extra={"carol": "on_demand = true"})
    fake = FakeFleet()
    result, writes = run_apply(fake, tmp_path, source, {"alice": Locked("h1", 2200)})
    assert result.state["carol"] == Locked("h1", 2201)
    assert fake.on("h1") == ["write /var/lib/wormhole/fleet/carol.toml",
                             "unitgen add --from /var/lib/wormhole/fleet/carol.toml",
                             "systemctl start wormhole-proxy@carol.socket"]
    assert fake.on("gw")[4:] == ["keyscan h1:2201", "cat /etc/hosts", "write /etc/hosts",
                                 "cat /etc/wormhole/gateway/authorized_keys",
                                 "write /etc/wormhole/gateway/authorized_keys"]
    assert writes == [result.state]


def test_a_newcomer_that_does_not_answer_is_taken_off_with_their_data_kept(tmp_path):
    source = text({"h1": 10}, ["carol"])
    fake = FakeFleet(answering=False)
    message, writes = run_apply(fake, tmp_path, source, {})
    assert_message(message, "carol: check it answers failed", "carol is not let in yet")
    assert fake.on("h1")[-1] == "unitgen remove carol --no-backup"
    assert writes == []


def test_someone_who_left_is_let_out_first_then_removed_with_a_final_backup(tmp_path):
    source = text({"h1": 10}, ["alice"])
    fake = FakeFleet()
    lock = {"alice": Locked("h1", 2200), "zed": Locked("h1", 2201)}
    result, writes = run_apply(fake, tmp_path, source, lock)
    assert result.state == {"alice": Locked("h1", 2200)}
    assert writes == [result.state]
    assert fake.on("h1") == ["unitgen remove zed"]
    assert "zed" not in fake.door()


def test_leavers_then_moves_then_newcomers(tmp_path):
    source = text({"h1": 10, "h2": 10}, ["alice", "bob"], extra={"alice": 'host = "h2"'})
    lock = {"alice": Locked("h1", 2200), "zed": Locked("h1", 2202)}
    fake = FakeFleet()
    _, writes = run_apply(fake, tmp_path, source, lock)
    assert [sorted(state) for state in writes] == [["alice"], ["alice"], ["alice", "bob"]]
    assert writes[1]["alice"].host == "h2"


def test_the_gateway_is_put_in_step_with_the_lock_before_any_move(tmp_path):
    fake = FakeFleet()
    run_apply(fake, tmp_path, text({"h1": 10}, ["alice"]), {"alice": Locked("h1", 2200)})
    assert fake.calls == [("gw", "cat /etc/hosts"), ("gw", "write /etc/hosts"),
                          ("gw", "cat /etc/wormhole/gateway/authorized_keys"),
                          ("gw", "write /etc/wormhole/gateway/authorized_keys")]
    fake.calls.clear()
    run_apply(fake, tmp_path, text({"h1": 10}, ["alice"]), {"alice": Locked("h1", 2200)})
    assert fake.calls == [("gw", "cat /etc/hosts"),  # in step: read, not written
                          ("gw", "cat /etc/wormhole/gateway/authorized_keys")]


def test_an_unreachable_gateway_stops_apply_before_anything_moves(tmp_path):
    fake = FakeFleet(fail=lambda at, words, data: at == "gw")
    message, writes = run_apply(fake, tmp_path)
    assert_message(message, "writing /etc/hosts on 10.0.0.1: injected failure")
    assert writes == [] and [at for at, _ in fake.calls] == ["gw", "gw"]


def test_fleet_backup_backs_up_each_hosts_people_and_skips_a_lost_host(tmp_path):
    plan = compiled(text({"h1": 10, "h2": 10}, ["alice", "bob", "carol"]),
                    {"alice": Locked("h1", 2200), "bob": Locked("h2", 2201),
                     "carol": Locked("h3", 2202)})
    fake, said = FakeFleet(), []
    copies = ResticSnapshots(plan)
    made = fleetops.backup(plan, Remote(fake, plan), copies, [], said.append)
    assert sorted(made) == ["alice", "bob"]
    assert ("h1", "unitgen backup alice") in fake.calls
    assert ("h2", "unitgen backup bob") in fake.calls
    assert said == [f"alice: snapshot {FULL} of h1", f"bob: snapshot {FULL} of h2"]
    with pytest.raises(Exception) as caught:
        fleetops.backup(plan, Remote(fake, plan), copies, ["carol"], said.append)
    assert_message(str(caught.value), "carol's host h3 is not in the people file")


# ---- the transport -----------------------------------------------------------------------

def test_ssh_runs_the_command_as_the_admin_with_sudo(monkeypatch):
    monkeypatch.setenv(fleetops.SSH_VARIABLE, "echo ssh -F 'my config'")
    done = Ssh("core").run("10.0.0.11", ["env", f"PATH={fleetops.PATH}", "unitgen", "status"])
    assert done.text == f"ssh -F my config core@10.0.0.11 -- sudo -n env PATH={fleetops.PATH} " \
                        "unitgen status\n"
    as_root = Ssh("root", ["echo"]).run("10.0.0.11", ["cat", "--", "/etc/hosts"], sudo=True)
    assert as_root.text == "root@10.0.0.11 -- cat -- /etc/hosts\n"


def test_ssh_quotes_what_the_remote_shell_reads():
    done = Ssh("core", ["echo"]).run("h", ["sh", "-c", fleetops.WRITE, "sh", "/etc", "hosts",
                                          "644", "022"], sudo=False)
    assert done.text.startswith("core@h -- sh -c 'umask \"$4\" && mkdir -p \"$1\"")
    assert done.text.endswith(" sh /etc hosts 644 022\n")


@pytest.mark.parametrize(("mode", "folders"), [(0o644, "755"), (0o600, "700")])
def test_the_atomic_write_makes_the_file_and_its_folders(tmp_path, mode, folders):
    class Local:
        def run(self, address, argv, data=None, sudo=True, timeout=600):
            done = subprocess.run(argv, input=data, capture_output=True)
            return Done(done.returncode, done.stdout, done.stderr.decode())

    plan = compiled(SOURCE, LOCKED)
    target = tmp_path / "a" / "b" / "file"
    Remote(Local(), plan).write("h", str(target), b"text\n", mode)
    assert target.read_bytes() == b"text\n"
    assert oct(target.stat().st_mode & 0o777)[2:] == f"{mode:o}"
    assert {oct(p.stat().st_mode & 0o777)[2:] for p in (target.parent, target.parent.parent)} \
        == {folders}
    assert sorted(p.name for p in target.parent.iterdir()) == ["file"]


def test_ssh_without_a_client_is_one_line():
    with pytest.raises(Failed) as caught:
        Ssh("core", ["/nonexistent/ssh"]).run("h", ["true"])
    assert_message(str(caught.value), "cannot run /nonexistent/ssh", fleetops.SSH_VARIABLE)


# ---- the restic repository --------------------------------------------------------------

def test_take_reads_the_host_key_from_the_new_snapshot_and_deliver_restores_it():
    fake = FakeFleet()
    plan = compiled(SOURCE, LOCKED)
    remote, snapshots = Remote(fake, plan), ResticSnapshots(plan)
    taken = snapshots.take(remote, "10.0.0.11", ["alice"])["alice"]
    assert taken == Backup("alice", FULL, "h1", HOST_KEY)
    assert snapshots.latest(remote, "10.0.0.12", "alice", "h1") == taken
    fake.calls.clear()
    snapshots.deliver(remote, taken, "10.0.0.12")
    assert fake.calls == [("h2", f"unitgen restore alice {FULL} --from-host h1 --no-backup")]


def test_a_backup_that_names_no_snapshot_is_refused():
    fake = FakeFleet()
    fake.backup = lambda names: b"[1/1] alice: backup FAILED, see: journalctl\n"
    plan = compiled(SOURCE, LOCKED)
    with pytest.raises(Failed) as caught:
        ResticSnapshots(plan).take(Remote(fake, plan), "10.0.0.11", ["alice"])
    assert_message(str(caught.value), "unitgen backup on 10.0.0.11 printed no snapshot for "
                   "alice")


def test_each_fleet_host_tags_its_snapshots_with_its_fleet_name():
    plan = compiled(SOURCE, LOCKED)
    assert {name: h.settings.host for name, h in plan.hosts().items()} == \
        {"h1": "h1", "h2": "h2", "h3": "h3"}


# ---- status ------------------------------------------------------------------------------

class FakeStatus(FakeFleet):
    def run(self, address, argv, data=None, sudo=True, timeout=600) -> Done:
        host = ADDRESSES[address]
        if argv[-2:] == ["status", "--json"]:
            if host == "h2":
                return Done(255, b"", "ssh: connect to host 10.0.0.12 port 22: No route\n")
            rows = [{"user": "alice", "unit": "active (running)", "container": "running"},
                    {"user": "stray", "unit": "active (running)", "container": "running"}]
            summary = {"running": 2, "idle": 0, "failed": 0, "stopped": 0, "memory": 8 << 20}
            return Done(0, json.dumps({"workspaces": rows, "summary": summary}).encode(), "")
        return super().run(address, argv, data, sudo, timeout)


def test_status_is_one_row_per_host_and_a_silent_host_is_a_row(tmp_path):
    plan = compiled(text({"h1": 10, "h2": 10}, ["alice", "bob"]),
                    {"alice": Locked("h1", 2200), "bob": Locked("h1", 2201)})
    fake = FakeStatus()
    from unitgen.fleet import gateway_files
    for path, file in gateway_files(plan, plan.before).items():
        fake.files[("gw", path)] = file.text.encode()
    found = fleetops.status(plan, Remote(fake, plan))
    h1, h2 = found["hosts"]
    assert (h1["answered"], h1["missing"], h1["unexpected"]) == (True, ["bob"], ["stray"])
    assert (h2["answered"], h2["error"]) == (False, "ssh: connect to host 10.0.0.12 port 22: "
                                                    "No route")
    assert found["gateway"]["in_step"] is True
    lines = fleetops.status_lines(found, "people.lock")
    assert lines[1].startswith("h1") and lines[1].endswith(
        "not there: bob; not in people.lock: stray")
    assert "did not answer: ssh: connect to host 10.0.0.12" in lines[2]
    assert lines[3].endswith("in step with people.lock")
    fake.files[("gw", "/etc/hosts")] += b"10.0.0.99 zed.wormhole\n"
    assert fleetops.status(plan, Remote(fake, plan))["gateway"]["in_step"] is False
