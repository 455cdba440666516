"""The drill of a lost host (issue 17), against a real remote repository: `rclone serve
restic` behind HTTP basic auth in the test's own container (tests/lab/backup.py). Twenty
people with varied homes are backed up; the host and its engine's volume are destroyed; a
fresh host with the same name, config and repository secrets runs `unitgen restore --all`;
everyone's paths, modes, owners, links, checksums and host key are as before, each on a
disk of their own cap again (p02's is 512M), and everyone logs in. Then the failures: a
wrong password on restore, an unreachable repository, a full remote, a corrupted pack
caught by the check unit.

    WORMHOLE_LAB_PREFIX=h-disk2- .venv/bin/python -m pytest -m system \
        tests/system/test_recovery.py --durations=10
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.lab import backup
from tests.lab.host import PREFIX, Host, build_wheels, build_workspace_image, host_key, ssh

PEOPLE = [f"p{n:02d}" for n in range(1, 21)]
CONFIG = "/etc/wormhole/wormhole.toml"
PASSWORD = "/etc/wormhole/restic/password"
DISKS = "/var/lib/wormhole/disks"
CAPS = {"p02": "512M"}  # the others have the default, 10G
# Varied homes: a folder of its own mode, an empty folder, odd names, a symlink and a
# dangling one, a file of root's, the person's group reading it, and for p01 a 50 MB file.
FILES = r"""
set -e; cd ~
mkdir -p data/sub data/empty && chmod 0700 data/sub
printf 'odd\n' > 'data/name with spaces'
printf 'u\n' > "data/$(printf 'caf\303\251')"
printf 'secret %s\n' "$(id -un)" > data/sub/secret && chmod 0600 data/sub/secret
head -c 300000 /dev/urandom > data/random.bin && chmod 0640 data/random.bin
ln -s sub/secret data/link
ln -s /nowhere data/dangling
"""
BIG = "head -c 52428800 /dev/urandom > ~/data/big.bin"
LISTING = ("cd ~ && find . -printf '%p %y %m %U %G %s %l\\n' | LC_ALL=C sort && "
           "find . -type f -exec sha256sum {} + | LC_ALL=C sort")


def start_host(name: str, wheels, server: backup.RepoServer, hosts: list[Host]) -> Host:
    lab = Host.start(name)
    hosts.append(lab)
    lab.load_image()
    backup.load_backup_image(lab)
    lab.install_unitgen(wheels)
    server.connect(lab)
    backup.configure(lab, server)
    return lab


def person(lab: Host, name: str, key) -> int:
    lab.put(f"/root/{name}.pub", key.with_suffix(".pub").read_text())
    lab.unitgen("add", name, f"/root/{name}.pub",
                *(["--disk", CAPS[name]] if name in CAPS else []))
    return json.loads(lab.unitgen("show", name, "--json").stdout)["port"]


@pytest.fixture(scope="module")
def drill(tmp_path_factory, make_key):
    """Everything before and after the loss: the people, what each had, the new host."""
    wheels = build_wheels(tmp_path_factory.mktemp("wheels"))
    build_workspace_image()
    backup.build_images()
    server = backup.RepoServer(f"drill-repo-{os.getpid()}").start()
    name = f"{PREFIX}drill-{os.getpid()}"
    hosts: list[Host] = []
    try:
        first = start_host(name, wheels, server, hosts)
        keys = {n: make_key(f"drill-{n}") for n in PEOPLE}
        ports = {n: person(first, n, keys[n]) for n in PEOPLE}
        for n in PEOPLE:
            first.exec("systemctl", "start", f"wormhole@{n}")

        def fill(n: str) -> tuple[str, str, str]:
            script = FILES + (BIG if n == "p01" else "")
            done = ssh(first.ip, ports[n], keys[n], script)
            assert done.returncode == 0, done.stderr
            first.exec("chown", "0:1000", f"{DISKS}/{n}/home/data/random.bin")
            return (ssh(first.ip, ports[n], keys[n], LISTING).stdout,
                    host_key(first.ip, ports[n]), first.exec("cat", f"/etc/wormhole/people/"
                                                             f"{n}.toml").stdout)

        with ThreadPoolExecutor(4) as pool:
            before = dict(zip(PEOPLE, pool.map(fill, PEOPLE), strict=True))
        done = first.unitgen("backup", "--all")
        assert done.stdout.count(": snapshot ") == len(PEOPLE), done.stdout
        password = first.exec("cat", PASSWORD).stdout
        config = first.exec("cat", CONFIG).stdout
        first.destroy()  # the container and its engine's volume: every home is gone
        hosts.clear()
        fresh = start_host(name, wheels, server, hosts)
        fresh.put(CONFIG, config)
        fresh.put(PASSWORD, password)
        fresh.sh(f"chmod 0600 {PASSWORD}")
        yield fresh, server, keys, ports, before
    finally:
        for lab in hosts:
            lab.destroy()
        server.destroy()


def test_restore_all_brings_back_every_path_mode_owner_link_checksum_and_host_key(drill):
    fresh, _, keys, ports, before = drill
    done = fresh.unitgen("restore", "--all")
    assert f"restored {len(PEOPLE)} workspace(s)" in done.stdout, done.stdout + done.stderr
    for n in PEOPLE:
        fresh.exec("systemctl", "start", f"wormhole@{n}")
    for n in PEOPLE:
        listing, key, record = before[n]
        assert json.loads(fresh.unitgen("show", n, "--json").stdout)["port"] == ports[n]
        assert ssh(fresh.ip, ports[n], keys[n], LISTING).stdout == listing, n
        assert host_key(fresh.ip, ports[n]) == key, n
        # as recorded, on the next generation: a restore never reuses the current disk's name
        assert fresh.exec("cat", f"/etc/wormhole/people/{n}.toml").stdout == \
            record + "generation = 1\n", n
    sizes = dict(line.split() for line in fresh.sh(
        f"cd {DISKS} && stat -c '%n %s' *.img").stdout.splitlines())
    assert sizes == {f"{n}.1.img": str((512 if n in CAPS else 10 << 10) << 20)
                     for n in PEOPLE}, sizes
    assert "./data/big.bin f 644" in before["p01"][0]
    assert "./data/empty d 755" in before["p02"][0]


def test_a_wrong_password_on_restore_is_one_line_exit_2_and_changes_nothing(drill):
    fresh, _, keys, ports, before = drill
    good = fresh.exec("cat", PASSWORD).stdout
    volumes = fresh.exec("docker", "volume", "ls", "-q").stdout
    disks = fresh.exec("ls", DISKS).stdout
    fresh.put(PASSWORD, "not the password\n")
    try:
        done = fresh.unitgen("restore", "p02", "--no-backup", check=False)
    finally:
        fresh.put(PASSWORD, good)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "wrong password" in done.stderr
    assert fresh.exec("docker", "volume", "ls", "-q").stdout == volumes
    assert fresh.exec("ls", DISKS).stdout == disks
    assert ssh(fresh.ip, ports["p02"], keys["p02"], LISTING).stdout == before["p02"][0]


def test_an_unreachable_repository_fails_the_unit_visibly_and_the_next_run_recovers(drill):
    fresh, server, *_ = drill
    unit = "wormhole-backup@p03.service"
    server.stop()
    try:
        done = fresh.exec("systemctl", "start", unit, check=False, timeout=900)
        assert done.returncode != 0
        assert fresh.unit(unit, "ActiveState")["ActiveState"] == "failed"
        status = json.loads(fresh.unitgen("status", "--json").stdout)
        assert unit in json.dumps(status)
        doctor = fresh.unitgen("doctor", check=False)
        assert doctor.returncode != 0 and "wormhole-backup@p03" in doctor.stdout + doctor.stderr
    finally:
        server.restart(2)
    fresh.exec("systemctl", "start", unit, timeout=900)
    assert fresh.unit(unit, "ActiveState")["ActiveState"] == "inactive"


def test_a_corrupted_pack_is_caught_by_the_check_unit(drill):
    fresh, server, *_ = drill
    # Every data pack damaged (bytes overwritten, the end cut off), so that the check finds
    # it whichever part of the data this week's run reads.
    server.exec("for f in $(find /srv/restic/data -type f); do "
                "printf 'XXXXXXXX' | dd of=$f bs=1 seek=100 conv=notrunc 2>/dev/null && "
                "truncate -s -100 $f; done")
    done = fresh.exec("systemctl", "start", "wormhole-check.service", check=False, timeout=900)
    assert done.returncode != 0
    assert fresh.unit("wormhole-check.service", "ActiveState")["ActiveState"] == "failed"
    journal = fresh.exec("journalctl", "-u", "wormhole-check.service", "--no-pager").stdout
    assert "wormhole-restic: reading part" in journal
    assert "error" in journal.lower()
