"""Backups, restores, upgrades and removal on the real host: nothing may be lost."""

import base64
import io
import json
import tarfile
import time

import pytest

from tests.lab.host import host_key, ssh, wait_ssh

FILES = r"""
set -e; cd ~
mkdir -p data/sub && chmod 0700 data/sub
head -c 20000000 /dev/urandom > data/large.bin
printf 'odd\n' > 'data/name with spaces'
printf 'u\n' > "data/$(printf 'caf\303\251')"
printf 'secret\n' > data/sub/secret && chmod 0600 data/sub/secret
printf '#!/bin/sh\n' > data/run.sh && chmod 0755 data/run.sh
ln -s sub/secret data/link
ln -s /nowhere data/dangling
"""
LISTING = ("cd ~ && find . -printf '%p %y %m %U %G %s %l\\n' | LC_ALL=C sort && "
           "find . -type f -exec sha256sum {} + | LC_ALL=C sort")
BACKUPS = "/var/lib/wormhole/backups"
DISKS = "/var/lib/wormhole/disks"


def archives(host, name: str) -> list[str]:
    done = host.sh(f"ls -1 {BACKUPS}/{name}/ 2>/dev/null", check=False)
    return done.stdout.split()


def engine_state(host) -> tuple:
    """What a refused command must leave as it was: files, disks, volumes, containers."""
    files = host.sh("find /etc/wormhole /etc/systemd/system -type f -print0 | sort -z | "
                    "xargs -0 sha256sum").stdout
    disks = host.exec("ls", "-1", DISKS).stdout  # the running disks' own times move
    volumes = host.exec("docker", "volume", "ls", "--quiet").stdout
    containers = host.exec("docker", "ps", "--all", "--format",
                           "{{.Names}} {{.Image}} {{.CreatedAt}}").stdout
    return files, disks, volumes, containers


@pytest.fixture(scope="module")
def frank(add):
    person = add("frank")
    assert person.login().returncode == 0
    done = ssh(person.host.ip, person.port, person.key, FILES)
    assert done.returncode == 0, done.stderr
    return person


@pytest.fixture(scope="module")
def good_archive(host, frank):
    done = host.unitgen("backup", "frank")
    path = done.stdout.split()[-1]
    assert path.startswith(f"{BACKUPS}/frank/frank-") and path.endswith(".tar.gz")
    return path


def test_an_archive_is_private_and_has_its_checksum(host, good_archive):
    modes = host.sh(f"stat -c '%a %U' {BACKUPS}/frank {good_archive} {good_archive}.sha256")
    assert modes.stdout.split("\n")[:3] == ["700 root", "600 root", "600 root"]
    check = host.sh(f"cd {BACKUPS}/frank && sha256sum -c $(basename {good_archive}).sha256")
    assert check.stdout.endswith(": OK\n")


def test_restore_brings_back_every_path_mode_owner_content_and_the_host_key(
        host, frank, good_archive):
    before = ssh(host.ip, frank.port, frank.key, LISTING).stdout
    fingerprint = host_key(host.ip, frank.port)
    assert "./data/link l 777 1000 1000" in before and "sub/secret" in before
    changed = ssh(host.ip, frank.port, frank.key,
                  "rm ~/data/large.bin && echo changed > ~/'data/name with spaces' && "
                  "touch ~/new && chmod 0644 ~/data/sub/secret")
    assert changed.returncode == 0
    done = host.unitgen("restore", "frank")
    assert f"restored frank from {good_archive}" in done.stdout
    assert "backed up the current data first" in done.stdout
    assert frank.login().returncode == 0
    assert ssh(host.ip, frank.port, frank.key, LISTING).stdout == before
    assert host_key(host.ip, frank.port) == fingerprint
    disks = host.exec("ls", DISKS).stdout.split()
    assert "frank.1.img" in disks and "frank.img" not in disks


def tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    """A gzip tar whose members are given as (name, type)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, kind in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            data = b"x" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


KEY = ("hostkeys/ssh_host_ed25519_key", tarfile.REGTYPE)
BAD = {
    "dotdot": ([KEY, ("home/../../etc/evil", tarfile.REGTYPE)], "climbs out with '..'"),
    "absolute": ([KEY, ("/etc/evil", tarfile.REGTYPE)], "has an absolute path"),
    "device": ([KEY, ("home/null", tarfile.CHRTYPE)], "is not a file, directory or symlink"),
    "behind-symlink": ([KEY, ("home/out", tarfile.SYMTYPE), ("home/out/x", tarfile.REGTYPE)],
                       "lies behind a symlink"),
    "no-host-key": ([("home/x", tarfile.REGTYPE)], "holds no hostkeys/ssh_host_ed25519_key"),
}


def put_archive(host, name: str, data: bytes, checksum: bool = True) -> str:
    path = f"/root/bad/{name}.tar.gz"
    host.exec("sh", "-c", f"mkdir -p /root/bad && cat > {path}", input=data)
    if checksum:
        host.sh(f"cd /root/bad && sha256sum {name}.tar.gz > {name}.tar.gz.sha256")
    return path


def test_damaged_and_unsafe_archives_are_refused_and_change_nothing(host, frank, good_archive):
    raw = base64.b64decode(host.exec("base64", "-w0", good_archive).stdout)
    corrupt = raw[: len(raw) // 2] + bytes([raw[len(raw) // 2] ^ 0xFF]) + raw[len(raw) // 2 + 1:]
    cases = {name: (put_archive(host, name, tar_bytes(members)), message)
             for name, (members, message) in BAD.items()}
    path = put_archive(host, "corrupt", corrupt, checksum=False)
    host.sh(f"sed 's/ .*/  corrupt.tar.gz/' {good_archive}.sha256 > {path}.sha256")
    cases["corrupt"] = (path, "its checksum does not match")
    cases["truncated"] = (put_archive(host, "truncated", raw[: len(raw) // 3]),
                          "not a readable archive")
    cases["no-checksum"] = (put_archive(host, "nosum", raw, checksum=False),
                            "no checksum file nosum.tar.gz.sha256 beside it")
    cases["missing"] = ("/root/bad/missing.tar.gz", "does not exist")
    before = engine_state(host)
    for name, (path, message) in cases.items():
        done = host.unitgen("restore", "frank", path, "--no-backup", check=False)
        assert done.returncode == 2, (name, done.stderr)
        assert done.stderr.startswith("unitgen: error: ") and message in done.stderr, name
        assert len(done.stderr.splitlines()) == 1, name
    assert engine_state(host) == before
    assert frank.login().returncode == 0


def test_the_timer_is_listed_and_retention_keeps_the_newest(host, frank):
    timers = host.exec("systemctl", "list-timers", "--all", "--no-pager").stdout
    assert "wormhole-backup@frank.timer" in timers
    host.sh("sed -i 's/^backup_keep = .*/backup_keep = 2/' /etc/wormhole/wormhole.toml")
    started = host.container("wormhole-frank")["State"]["StartedAt"]
    host.unitgen("upgrade")  # installs the re-rendered backup unit, restarts no workspace
    assert host.container("wormhole-frank")["State"]["StartedAt"] == started
    for _ in range(3):
        host.exec("systemctl", "start", "wormhole-backup@frank.service")
        time.sleep(1.1)  # archive names carry the second
    names = archives(host, "frank")
    assert len([n for n in names if n.endswith(".tar.gz")]) == 2
    assert len([n for n in names if n.endswith(".sha256")]) == 2
    host.sh("sed -i 's/^backup_keep = .*/backup_keep = 7/' /etc/wormhole/wormhole.toml")
    host.unitgen("upgrade")


def image_variant(host, tag: str, line: str) -> None:
    host.exec("docker", "build", "--quiet", "--tag", tag, "-",
              input=f"FROM wormhole:latest\n{line}\n")


def running_image(host, name: str) -> str:
    return host.container(f"wormhole-{name}")["Image"]


def image_id(host, tag: str) -> str:
    return json.loads(host.exec("docker", "image", "inspect", tag).stdout)[0]["Id"]


def test_upgrade_keeps_home_host_key_and_port(host, add):
    gina = add("gina")
    assert ssh(host.ip, gina.port, gina.key, FILES).returncode == 0
    before = ssh(host.ip, gina.port, gina.key, LISTING).stdout
    fingerprint = host_key(host.ip, gina.port)
    image_variant(host, "wormhole:2", "LABEL org.example.release=2")
    done = host.unitgen("upgrade", "gina", "--image", "wormhole:2")
    assert "batch 1: gina upgraded" in done.stdout
    assert running_image(host, "gina") == image_id(host, "wormhole:2")
    assert gina.login().returncode == 0
    assert ssh(host.ip, gina.port, gina.key, LISTING).stdout == before
    assert host_key(host.ip, gina.port) == fingerprint
    assert json.loads(host.unitgen("show", "gina", "--json").stdout)["port"] == gina.port


def test_a_broken_image_stops_the_rolling_upgrade_and_rolls_back(host, add):
    hank = add("hank")
    ivan = add("ivan")
    old = {n: running_image(host, n) for n in ("gina", "hank", "ivan")}
    image_variant(host, "wormhole:broken", "RUN echo 'NoSuchOption yes' >> /etc/ssh/sshd_config")
    done = host.unitgen("upgrade", "gina", "hank", "ivan", "--image", "wormhole:broken",
                        "--batch", "2", check=False)
    assert done.returncode == 1
    assert "batch 1: gina, hank did not answer after the upgrade" in done.stderr
    assert "went back to its previous image" in done.stderr
    for person in (hank, ivan):
        assert person.login().returncode == 0
    assert {n: running_image(host, n) for n in old} == old
    info = {n: json.loads(host.unitgen("show", n, "--json").stdout)["image"] for n in old}
    assert info == {"gina": "wormhole:2", "hank": "wormhole:latest", "ivan": "wormhole:latest"}


def test_remove_takes_a_final_backup_and_restore_brings_a_person_back(host, make_key):
    gina_key = make_key("gina")
    port = json.loads(host.unitgen("show", "gina", "--json").stdout)["port"]
    fingerprint = host_key(host.ip, port)
    done = host.unitgen("remove", "gina", "--purge", "--yes")
    final = done.stdout.split("final backup: ")[1].split()[0]
    assert final.startswith(f"{BACKUPS}/gina/") and final in " ".join(
        f"{BACKUPS}/gina/{n}" for n in archives(host, "gina"))
    assert not [e for e in host.exec("ls", DISKS).stdout.split() if e.startswith("gina")]
    count = len(archives(host, "hank"))
    host.unitgen("remove", "hank", "--no-backup")
    assert len(archives(host, "hank")) == count

    host.unitgen("restore", "gina", final, "--key", "/root/gina.pub", "--port", str(port))
    host.exec("systemctl", "start", "wormhole@gina")
    assert wait_ssh(host.ip, port, gina_key).returncode == 0
    assert host_key(host.ip, port) == fingerprint
    assert ssh(host.ip, port, gina_key, "cat ~/'data/name with spaces'").stdout == "odd\n"
