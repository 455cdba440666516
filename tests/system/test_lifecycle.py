"""Backups, restores, upgrades and removal on the real host: nothing may be lost. The host
backs up into the default local restic repository; the archives of unitgen's tar.gz era
stay restorable."""

import base64
import io
import json
import tarfile

import pytest

from tests.lab.host import host_key, ssh, wait_ssh

FILES = r"""
set -e; cd ~
mkdir -p data/sub data/empty && chmod 0700 data/sub
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
REPOSITORY = f"{BACKUPS}/restic.repo"
# An archive as unitgen's backup unit wrote them before restic: home/ and hostkeys/ of the
# person's volumes, with numeric owners, and its checksum beside it.
LEGACY = ("cd /data && tar --create --gzip --numeric-owner --file /out/frank-legacy.tar.gz "
          "home hostkeys && cd /out && sha256sum frank-legacy.tar.gz > frank-legacy.tar.gz.sha256")


def snapshots(host, name: str) -> list[dict]:
    return json.loads(host.unitgen("snapshots", name, "--json").stdout)


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
def first_snapshot(host, frank):
    done = host.unitgen("backup", "frank")
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("[1/1] frank: snapshot ")
    return line.split()[-1]


@pytest.fixture(scope="module")
def legacy_archive(host, frank):
    """An archive of frank's data as the tar.gz era wrote it, in his old backup folder."""
    env = host.exec("cat", "/etc/wormhole/env/frank.env").stdout
    volumes = dict(line.split("=", 1) for line in env.splitlines() if "=" in line)
    host.sh(f"mkdir -p {BACKUPS}/frank && chmod 0700 {BACKUPS}/frank")
    host.exec("docker", "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh",
              "-v", f"{volumes['WORMHOLE_HOME_SOURCE']}:/data/home:ro",
              "-v", f"{volumes['WORMHOLE_HOSTKEYS_SOURCE']}:/data/hostkeys:ro",
              "-v", f"{BACKUPS}/frank:/out", "wormhole:latest", "-c", LEGACY)
    return f"{BACKUPS}/frank/frank-legacy.tar.gz"


def test_the_repository_and_its_secrets_are_private(host, first_snapshot):
    modes = host.sh(f"stat -c '%a %U' /etc/wormhole/restic /etc/wormhole/restic/password "
                    f"/etc/wormhole/restic/repository {REPOSITORY} /var/cache/wormhole/restic")
    assert modes.stdout.split("\n")[:5] == ["700 root", "600 root", "600 root", "700 root",
                                            "700 root"]
    assert host.exec("cat", "/etc/wormhole/restic/repository").stdout == f"{REPOSITORY}\n"
    taken = snapshots(host, "frank")
    assert [s["short_id"] for s in taken] == [first_snapshot]
    assert taken[0]["paths"] == ["/wormhole/frank/home", "/wormhole/frank/hostkeys",
                                 "/wormhole/frank/person.toml"]
    assert "user=frank" in taken[0]["tags"]
    # The password appears in no unit, env file or container the engine could show.
    password = host.exec("cat", "/etc/wormhole/restic/password").stdout.strip()
    assert host.sh(f"grep -rl -- '{password}' /etc/systemd /etc/wormhole/env",
                   check=False).stdout == ""


def test_restore_brings_back_every_path_mode_owner_content_and_the_host_key(
        host, frank, first_snapshot):
    before = ssh(host.ip, frank.port, frank.key, LISTING).stdout
    fingerprint = host_key(host.ip, frank.port)
    assert "./data/link l 777 1000 1000" in before and "sub/secret" in before
    assert "./data/empty d 755" in before
    changed = ssh(host.ip, frank.port, frank.key,
                  "rm ~/data/large.bin && echo changed > ~/'data/name with spaces' && "
                  "touch ~/new && chmod 0644 ~/data/sub/secret")
    assert changed.returncode == 0
    done = host.unitgen("restore", "frank")
    assert f"restored frank from snapshot {first_snapshot} of " in done.stdout
    assert "backed up the current data first: frank snapshot" in done.stdout
    assert frank.login().returncode == 0
    assert ssh(host.ip, frank.port, frank.key, LISTING).stdout == before
    assert host_key(host.ip, frank.port) == fingerprint
    disks = host.exec("ls", DISKS).stdout.split()
    assert "frank.1.img" in disks and "frank.img" not in disks
    # As of a time: the snapshot before the changes, whichever is newer now.
    newest = snapshots(host, "frank")[-1]
    assert newest["short_id"] != first_snapshot
    done = host.unitgen("restore", "frank", "--as-of", snapshots(host, "frank")[0]["time"],
                        "--no-backup")
    assert f"restored frank from snapshot {first_snapshot}" in done.stdout
    assert frank_disks(host) == ["frank.2.img"]


def frank_disks(host) -> list[str]:
    return [e for e in host.exec("ls", DISKS).stdout.split()
            if e.startswith("frank") and e.endswith(".img")]


def test_an_archive_of_the_tar_gz_era_is_still_restored(host, frank, legacy_archive):
    before = ssh(host.ip, frank.port, frank.key, LISTING).stdout
    assert ssh(host.ip, frank.port, frank.key, "rm -r ~/data").returncode == 0
    done = host.unitgen("restore", "frank", legacy_archive, "--no-backup")
    assert f"restored frank from {legacy_archive}" in done.stdout
    assert frank.login().returncode == 0
    assert ssh(host.ip, frank.port, frank.key, LISTING).stdout == before
    assert frank_disks(host) == ["frank.3.img"]  # the archive, too, lands on a disk


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


def test_damaged_and_unsafe_archives_are_refused_and_change_nothing(host, frank,
                                                                    legacy_archive):
    raw = base64.b64decode(host.exec("base64", "-w0", legacy_archive).stdout)
    corrupt = raw[: len(raw) // 2] + bytes([raw[len(raw) // 2] ^ 0xFF]) + raw[len(raw) // 2 + 1:]
    cases = {name: (put_archive(host, name, tar_bytes(members)), message)
             for name, (members, message) in BAD.items()}
    path = put_archive(host, "corrupt", corrupt, checksum=False)
    host.sh(f"sed 's/ .*/  corrupt.tar.gz/' {legacy_archive}.sha256 > {path}.sha256")
    cases["corrupt"] = (path, "its checksum does not match")
    cases["truncated"] = (put_archive(host, "truncated", raw[: len(raw) // 3]),
                          "not a readable archive")
    cases["no-checksum"] = (put_archive(host, "nosum", raw, checksum=False),
                            "no checksum file nosum.tar.gz.sha256 beside it")
    cases["missing"] = ("/root/bad/missing.tar.gz", "does not exist")
    cases["no-such-snapshot"] = ("0123abcd", "no snapshot of frank has an id starting 0123abcd")
    cases["no-snapshot-id"] = ("latest", "is neither an archive nor a snapshot id")
    before = engine_state(host)
    for name, (path, message) in cases.items():
        done = host.unitgen("restore", "frank", path, "--no-backup", check=False)
        assert done.returncode == 2, (name, done.stderr)
        assert done.stderr.startswith("unitgen: error: ") and message in done.stderr, name
        assert len(done.stderr.splitlines()) == 1, name
    assert engine_state(host) == before
    assert frank.login().returncode == 0


def test_the_timers_are_listed_and_retention_keeps_the_policy(host, frank):
    timers = host.exec("systemctl", "list-timers", "--all", "--no-pager").stdout
    for timer in ("wormhole-backup@frank.timer", "wormhole-forget.timer",
                  "wormhole-check.timer"):
        assert timer in timers
    config = "/etc/wormhole/wormhole.toml"
    host.sh(f"cp {config} /root/config.saved && sed -i -e 's/^backup_keep = .*/backup_keep = 2/'"
            f" -e 's/^backup_keep_weekly = .*/backup_keep_weekly = 0/'"
            f" -e 's/^backup_keep_monthly = .*/backup_keep_monthly = 0/' {config}")
    started = host.container("wormhole-frank")["State"]["StartedAt"]
    host.unitgen("upgrade")  # installs the re-rendered forget unit, restarts no workspace
    assert host.container("wormhole-frank")["State"]["StartedAt"] == started
    # Two days of snapshots: the newest of each day is kept, the rest forgotten and pruned.
    for moment in ("2026-11-01 10:00:00", "2026-11-01 11:00:00", "2026-11-02 09:00:00"):
        backdated(host, "frank", moment)
    host.unitgen("backup", "frank")
    host.exec("systemctl", "start", "wormhole-forget.service", timeout=600)
    kept = [s["time"][:16] for s in snapshots(host, "frank")]
    assert len(kept) == 2  # keep-daily 2: today's and 2026-11-02's newest
    assert not [t for t in kept if t.startswith("2026-11-01")]
    host.sh(f"cp /root/config.saved {config}")
    host.unitgen("upgrade")


def backdated(host, name: str, moment: str) -> None:
    """A snapshot of the person as their backup unit takes it, dated `moment`."""
    unit = host.exec("systemctl", "cat", f"wormhole-backup@{name}.service").stdout
    env = dict(line.split("=", 1) for line in host.exec(
        "cat", f"/etc/wormhole/env/{name}.env").stdout.splitlines() if "=" in line)
    command = unit.split("ExecStart=")[1].split("\nExecStopPost")[0].replace("\\\n", " ")
    command = command.replace("%i", name).replace("%H", host.name).replace(
        "${WORMHOLE_HOME_VOLUME}", env["WORMHOLE_HOME_VOLUME"]).replace(
        "${WORMHOLE_HOSTKEYS_VOLUME}", env["WORMHOLE_HOSTKEYS_VOLUME"])
    host.sh(f"{command} --time '{moment}'")


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
    final = done.stdout.split("final backup: snapshot ")[1].split()[0]
    taken = json.loads(host.unitgen("snapshots", "gina", "--json").stdout)
    assert [s["short_id"] for s in taken if "removed" not in s["tags"]][-1] == final
    assert "removed" in taken[-1]["tags"]  # restore --all leaves gina out now
    assert not [e for e in host.exec("ls", DISKS).stdout.split() if e.startswith("gina")]
    host.unitgen("backup", "hank")  # his last, before a removal without one
    count = len(json.loads(host.unitgen("snapshots", "hank", "--json").stdout))
    host.unitgen("remove", "hank", "--no-backup")
    hank = json.loads(host.unitgen("snapshots", "hank", "--json").stdout)
    assert len(hank) == count + 1 and "removed" in hank[-1]["tags"]

    # gina comes back from her snapshot alone: the port and keys it recorded.
    done = host.unitgen("restore", "gina")
    assert f"restored gina from snapshot {final}" in done.stdout
    host.exec("systemctl", "start", "wormhole@gina")
    assert json.loads(host.unitgen("show", "gina", "--json").stdout)["port"] == port
    assert wait_ssh(host.ip, port, gina_key).returncode == 0
    assert host_key(host.ip, port) == fingerprint
    assert ssh(host.ip, port, gina_key, "cat ~/'data/name with spaces'").stdout == "odd\n"
    # hank with a key of his own, on a port given: --key as before.
    host.put("/root/hank2.pub", make_key("hank2").with_suffix(".pub").read_text())
    host.unitgen("restore", "hank", "--key", "/root/hank2.pub", "--port", "2990")
    assert json.loads(host.unitgen("show", "hank", "--json").stdout)["port"] == 2990
    host.unitgen("remove", "hank", "--purge", "--yes", "--no-backup")
