"""Failure drills on the real host: a killed workspace, an engine restart, a reboot, unitgen
killed at random moments, a repository that fills during a backup. Nothing lost, nobody in."""

import json
import random
import time

import pytest

from tests.lab.host import ssh, wait

SEED = 20261129  # the random moments are the same on every run


def active(host, name: str) -> bool:
    return host.exec("systemctl", "is-active", f"wormhole@{name}", check=False).stdout == \
        "active\n"


def running(host) -> list[str]:
    """Whose workspace runs now: other modules on the shared host leave people stopped or
    on demand, and those are not to come back."""
    everyone = [p["user"] for p in json.loads(host.unitgen("list", "--json").stdout)]
    return [name for name in everyone if active(host, name)]


def answers(person) -> bool:
    return ssh(person.host.ip, person.port, person.key, "true", timeout=10).returncode == 0


@pytest.fixture(scope="module")
def crew(host, add):
    people = [add(name) for name in ("uma", "vic", "wes")]
    assert all(p.login().returncode == 0 for p in people)
    return people


def test_a_killed_workspace_is_back_within_10_seconds(host, crew):
    uma = crew[0]
    before = host.container(uma.container)["State"]["StartedAt"]
    host.exec("docker", "kill", uma.container)
    took = wait(lambda: (host.container(uma.container) or {}).get("State", {}).get(
        "StartedAt", before) != before and answers(uma), 10, "uma back")
    print(f"docker kill -> ssh login again: {took:.1f}s")


def test_every_workspace_and_the_firewall_are_back_within_60_seconds_of_an_engine_restart(
        host, crew):
    host.unitgen("firewall")
    try:
        everyone = running(host)
        started = time.monotonic()
        host.exec("systemctl", "restart", "docker")
        wait(lambda: all(active(host, n) for n in everyone), 60 - (time.monotonic() - started),
             "every workspace active")
        wait(lambda: all(answers(p) for p in crew), 60 - (time.monotonic() - started),
             "every workspace answers")
        assert "WORMHOLE-FORWARD" in host.exec("iptables", "-S", "DOCKER-USER").stdout
        print(f"systemctl restart docker -> all back: {time.monotonic() - started:.1f}s")
    finally:
        host.unitgen("firewall", "--off")


def test_every_enabled_workspace_is_back_after_a_reboot(host, crew):
    everyone = running(host)
    host.reboot()
    wait(lambda: all(active(host, n) for n in everyone), 120, "every workspace active")
    assert crew
    for p in crew:  # wait fails the test when one does not answer
        wait(lambda p=p: answers(p), 30, p.name)


def files_are_whole(host) -> None:
    """Old state or new, never a mix: what doctor's file check sees after its lock finished
    any interrupted change."""
    checks = json.loads(host.unitgen("doctor", "--json", check=False).stdout)
    files = [c for c in checks if c["what"] == "files"]
    assert [c["level"] for c in files if c["detail"] != "an interrupted unitgen run was "
            "finished just now"] == ["ok"], files


def killed(host, seconds: float, *command: str) -> int:
    return host.exec("timeout", "--signal=KILL", f"{seconds:.2f}", "unitgen", *command,
                     check=False).returncode


def test_unitgen_killed_at_random_moments_leaves_old_or_new_and_a_rerun_completes(
        host, make_key):
    moments = random.Random(SEED)
    key = make_key("xia")
    host.put("/root/xia.pub", key.with_suffix(".pub").read_text())
    host.exec("docker", "build", "--quiet", "--tag", "wormhole:drill", "-",
              input="FROM wormhole:latest\nLABEL org.example.drill=1\n")
    host.unitgen("add", "xia", "/root/xia.pub", "--start")
    host.unitgen("backup", "xia")

    def commands(round_: int) -> dict[str, list[str]]:
        image = ("wormhole:drill", "wormhole:latest")[round_ % 2]
        return {"remove": ["remove", "xia"], "add": ["add", "xia", "/root/xia.pub", "--start"],
                "restore": ["restore", "xia"], "upgrade": ["upgrade", "xia", "--image", image]}

    # How long each takes when left alone: the shorter of two runs, as a first run (the first
    # snapshot of new data, say) can take twice as long as the next.
    spans: dict[str, float] = {}
    for round_ in (0, 1):  # ending on wormhole:latest, so that the first kill upgrades
        for name, command in commands(round_).items():
            started = time.monotonic()
            host.unitgen(*command)
            spans[name] = min(spans.get(name, float("inf")), time.monotonic() - started)
    # Until 15 kills hit a running unitgen, at most 40 tries: a run that finished before its
    # kill shows the command is quicker now than its span (the machine grew quieter), and
    # the next moments for it are drawn within that shorter time.
    kills = []
    round_ = 0
    while sum(code == 137 for _, _, code in kills) < 15 and len(kills) < 40:
        for name, command in commands(round_).items():
            moment = moments.uniform(0.05, 0.95) * spans[name]
            started = time.monotonic()
            code = killed(host, moment, *command)
            if code != 137:
                spans[name] = min(spans[name], time.monotonic() - started)
            kills.append((name, round(moment, 2), code))
            files_are_whole(host)
            done = host.unitgen(*command, check=False)
            if name == "remove":  # a remove that finished before the kill has nothing left
                assert done.returncode == 0 or "there is no workspace named xia" in done.stderr
            else:
                assert done.returncode == 0, (name, moment, done.stderr)
        round_ += 1
    files_are_whole(host)
    if not active(host, "xia"):
        print(host.exec("systemctl", "status", "--no-pager", "wormhole@xia",
                        "wormhole-data@xia", check=False).stdout[-3000:])
        print(host.exec("journalctl", "--no-pager", "--since", "-2min", "-u", "wormhole@xia",
                        "-u", "wormhole-data@xia").stdout[-6000:])
    assert active(host, "xia"), kills
    print("spans:", {k: round(v, 2) for k, v in spans.items()}, "killed:", kills)
    assert sum(code == 137 for _, _, code in kills) >= 15  # kills hit a running unitgen


def test_a_full_repository_fails_the_backup_visibly_and_keeps_the_workspace_running(
        host, add):
    """The repository on a file system with 16 MB to spare (a full remote): a 30 MB backup
    fails, the snapshots are those before, the workspace runs on; with room again, the next
    run succeeds."""
    yan = add("yan")
    first = host.unitgen("backup", "yan").stdout.split()[-1]
    repository = "/var/lib/wormhole/backups/restic.repo"
    used = int(host.exec("du", "-sm", repository).stdout.split()[0])
    host.sh(f"cp -a {repository} /root/repository.copy && "
            f"mount -t tmpfs -o size={used + 16}m,mode=0700 tmpfs {repository} && "
            f"cp -a /root/repository.copy/. {repository}/")
    try:
        assert ssh(host.ip, yan.port, yan.key, "head -c 30M /dev/urandom > ~/big").returncode == 0
        done = host.unitgen("backup", "yan", check=False)
        assert done.returncode == 1 and "the backup of yan failed" in done.stderr
        unit = host.unit("wormhole-backup@yan.service", "ActiveState")
        assert unit["ActiveState"] == "failed"
        taken = [s["short_id"] for s in json.loads(host.unitgen("snapshots", "yan",
                                                                "--json").stdout)]
        assert taken == [first]
        assert active(host, "yan") and answers(yan)
    finally:
        host.sh(f"umount {repository} && rm -rf /root/repository.copy")
    again = host.unitgen("backup", "yan").stdout.split()[-1]
    assert again != first
