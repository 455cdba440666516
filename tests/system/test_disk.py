"""Disk caps (issue 18) on the shared lab host: each person's home and host key live on a
sparse ext4 image of their cap, loop-mounted by their data unit. Writing past the cap fails
inside the workspace and nowhere else; the cap grows and shrinks with `unitgen set`; status,
show and doctor tell how full each disk is; backups read it, restores refuse what does not
fit and fill a new disk; upgrade moves people from the Docker volumes of before disks with
everything in them; on-demand workspaces mount and unmount it; purge deletes it."""

import json
import re
import subprocess
import time

import pytest

from tests.lab.host import host_key, ssh, ssh_args, wait, wait_ssh

DISKS = "/var/lib/wormhole/disks"
MIB = 1 << 20
IDLE = 8  # seconds of --idle-stop of the person on demand
# Ports of the people written into the registry by hand, as a unitgen before disks left
# them: far from the lowest free ports that `add` gives the other tests' people.
PORTS = {"capl": 2990, "capr": 2991, "capm": 2992}
# A home with what a copy most easily loses: modes, owners, times, symlinks (a dangling
# one too), hard links, a sparse file, odd names, an extended attribute.
TREE = r"""
set -e; cd "$1"
mkdir -p data/sub && chmod 0700 data/sub
head -c 3000000 /dev/urandom > data/large.bin
printf 'odd\n' > 'data/name with spaces'
printf 'u\n' > "data/$(printf 'caf\303\251')"
printf 'secret\n' > data/sub/secret && chmod 0600 data/sub/secret
printf '#!/bin/sh\n' > data/run.sh && chmod 4755 data/run.sh
ln -s sub/secret data/link && ln -s /nowhere data/dangling
ln data/sub/secret data/hardlink
truncate -s 50M data/sparse && printf x | dd of=data/sparse bs=1 seek=1000 conv=notrunc
printf 'root\n' > data/rootfile && chown 0:0 data/rootfile
printf 'other\n' > data/other && chown 12345:54321 data/other
touch -d '2001-02-03 04:05:06.789' data/old && touch -h -d '2002-01-01' data/link
python3 -c 'import os; os.setxattr("data/large.bin", "user.note", b"kept")'
chown -R 1000:1000 data/sub data/large.bin
"""
# Every entry under a folder, from the lab host itself (the test's own check, not the move's):
# path, mode, owner, group, time in ns, extended attributes and their values, symlink
# target, size, links, sparseness and SHA-256.
LISTING = r"""python3 - "$1" <<'EOF'
import hashlib, os, stat, sys
top = sys.argv[1]
for folder, dirs, files in sorted(os.walk(top)):
    for name in sorted(dirs + files):
        path = os.path.join(folder, name)
        st = os.lstat(path)
        attrs = sorted(os.listxattr(path, follow_symlinks=False))
        line = [os.path.relpath(path, top), oct(st.st_mode), st.st_uid, st.st_gid,
                st.st_mtime_ns, attrs]
        if stat.S_ISLNK(st.st_mode):
            line.append(os.readlink(path))
        elif stat.S_ISREG(st.st_mode):
            line += [st.st_size, st.st_nlink, st.st_blocks * 512 < st.st_size,
                     hashlib.sha256(open(path, "rb").read()).hexdigest()]
            line += [os.getxattr(path, a) for a in attrs]
        print(*line, sep="\t")
EOF"""
IN_HOME = ("cd ~ && find . -printf '%p %y %m %U %G %s %l %T@\\n' | LC_ALL=C sort && "
           "find . -type f -exec sha256sum {} + | LC_ALL=C sort")


def listing(host, folder: str) -> str:
    return host.exec("sh", "-c", LISTING, "sh", folder).stdout


def mounted(host, name: str) -> bool:
    return host.exec("mountpoint", "-q", f"{DISKS}/{name}", check=False).returncode == 0


def loops(host, image: str) -> str:
    return host.exec("losetup", "--associated", image).stdout


def allocated(host, path: str) -> int:
    host.exec("sync")
    return int(host.exec("du", "--block-size=1", path).stdout.split()[0])


def entries(host, name: str) -> list[str]:
    found = host.sh(f"ls -1 {DISKS}").stdout.split()
    return [e for e in found if e == name or e.startswith(f"{name}.")]


def own_usage(host) -> int:
    """What the lab host itself has written: its disks, backups, engine and logs. Its free
    space is the whole machine's, which other work moves by hundreds of MiB a minute."""
    done = host.sh("sync && du --one-file-system --summarize --block-size=1 --total "
                   "/var/lib/wormhole /var/lib/docker /var/log | tail -n 1")
    return int(done.stdout.split()[0])


def free(host) -> int:
    return int(host.sh(f"df --block-size=1 --output=avail {DISKS} | tail -n 1").stdout)


def inside_size(person) -> int:
    """The size of the home's file system as the person sees it."""
    done = ssh(person.host.ip, person.port, person.key,
               "df --block-size=1 --output=size ~ | tail -n 1")
    return int(done.stdout)


def row(host, name: str) -> dict:
    found = json.loads(host.unitgen("status", name, "--json").stdout)["workspaces"]
    return found[0]


@pytest.fixture(scope="module", autouse=True)
def leaves_nobody(host):
    """Later modules share the host: nobody of this one stays on it (capm, left on volumes
    that hold more than its cap, would fail every later `upgrade --all`)."""
    yield
    for name in ("capa", "capb", "capd", *PORTS):
        host.unitgen("remove", name, "--purge", "--yes", "--no-backup", check=False)


@pytest.fixture(scope="module")
def capa(add):
    person = add("capa", "--disk", "256M")
    assert person.login().returncode == 0
    return person


@pytest.fixture(scope="module")
def capb(add):
    person = add("capb")
    assert person.login().returncode == 0
    return person


def test_the_home_and_host_key_live_on_a_mounted_disk_of_the_cap(host, capa):
    assert mounted(host, "capa")
    inside = ssh(host.ip, capa.port, capa.key, "stat -c '%u %a' ~; ls ~/.bashrc").stdout
    assert inside.split("\n")[:2] == ["1000 700", "/home/user/.bashrc"]
    assert 200 * MIB < inside_size(capa) <= 256 * MIB
    on_disk = host.exec("ssh-keygen", "-lf",
                        f"{DISKS}/capa/hostkeys/ssh_host_ed25519_key.pub").stdout
    assert on_disk.split()[1] == host_key(host.ip, capa.port)


def test_writing_twice_the_cap_fails_at_the_cap_and_nobody_else_notices(host, capa, capb):
    before, free_before = own_usage(host), free(host)
    writer = subprocess.Popen(
        [*ssh_args(host.ip, capa.port, capa.key), "dd if=/dev/zero of=~/big bs=1M count=512"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    note = ssh(host.ip, capb.port, capb.key, "echo hello > ~/note && cat ~/note")
    assert note.stdout == "hello\n"
    taken = host.unitgen("backup", "capb").stdout.split()[-1]
    assert "/wormhole/capb/home/note" in snapshot_files(host, taken)
    assert host.exec("docker", "info", "--format", "{{.ServerVersion}}").returncode == 0
    _, err = writer.communicate(timeout=300)
    assert writer.returncode != 0 and "No space left on device" in err, err
    written = int(ssh(host.ip, capa.port, capa.key, "stat -c %s ~/big").stdout)
    assert 200 * MIB < written <= 256 * MIB
    grown, dropped = own_usage(host) - before, free_before - free(host)
    print(f"capa wrote {written / MIB:.0f} MiB; the lab host's own usage grew by "
          f"{grown / MIB:.0f} MiB; the machine's free space dropped by {dropped / MIB:.0f} MiB "
          "(shared with other work)")
    assert grown <= 256 * MIB + 16 * MIB  # the cap, and bob's note, backup and logs


def test_status_show_and_doctor_tell_how_full_each_disk_is(host, capa, capb):
    full = row(host, "capa")
    assert (full["home"], full["disk_cap"]) == ("disk", 256 * MIB)
    assert 200 * MIB < full["disk"] <= full["disk_size"] <= 256 * MIB
    empty = row(host, "capb")
    assert empty["disk_cap"] == 10 << 30 and empty["disk"] < 64 * MIB
    assert "/256M" in next(line for line in host.unitgen("status").stdout.splitlines()
                           if line.startswith("capa "))
    info = json.loads(host.unitgen("show", "capa", "--json").stdout)
    assert (info["disk"], info["disk_used"]) == ("256M", full["disk"])
    assert re.search(r"used of 256M \((9[0-9]|100) %\)", host.unitgen("show", "capa").stdout)
    checks = json.loads(host.unitgen("doctor", "--json", check=False).stdout)
    warned = [c for c in checks if c["what"] == "disks" and c["level"] == "warn"]
    assert any(re.match(r"capa's disk is (9[0-9]|100) % full", c["detail"]) for c in warned)
    assert not any("capb" in c["detail"] for c in warned)


def test_the_home_stays_sparse_the_host_holds_what_was_written(host, capa, capb):
    written = int(ssh(host.ip, capa.port, capa.key, "stat -c %s ~/big").stdout)
    assert written <= allocated(host, f"{DISKS}/capa.img") <= written + 24 * MIB
    assert allocated(host, f"{DISKS}/capb.img") < 24 * MIB  # of a 10G disk
    assert ssh(host.ip, capa.port, capa.key, "rm ~/big && sync").returncode == 0
    wait(lambda: allocated(host, f"{DISKS}/capa.img") < 24 * MIB, 60,
         "the deleted file's blocks punched out of the image")


def test_a_larger_disk_keeps_every_file(host, capa):
    assert ssh(host.ip, capa.port, capa.key,
                "mkdir -p ~/t && cd ~/t && for i in $(seq 200); do "
                "head -c $((i * 97)) /dev/urandom > f$i; done && ln -s f1 link && "
                "chmod 0600 f2").returncode == 0
    before = ssh(host.ip, capa.port, capa.key, IN_HOME).stdout
    said = host.unitgen("set", "capa", "--disk", "20G").stdout
    if said == "capa: disk: grown to 20G online\n":
        print("grown online")
    else:  # this machine keeps CAP_SYS_RESOURCE from every process, which online growth needs
        assert said.startswith("capa: disk: grows to 20G at the workspace's next start")
        assert inside_size(capa) <= 256 * MIB
        said = host.unitgen("set", "capa", "--disk", "20G", "--restart").stdout
        for _ in range(8):  # a sandboxed service started meanwhile may hold it open a while
            if not said.startswith("capa: disk: still"):
                break
            time.sleep(15)
            said = host.unitgen("set", "capa", "--disk", "20G", "--restart").stdout
        assert said == "capa: disk: 20G from the restart\n"
    assert capa.login().returncode == 0
    assert 19 << 30 < inside_size(capa) <= 20 << 30
    assert ssh(host.ip, capa.port, capa.key, IN_HOME).stdout == before
    assert allocated(host, f"{DISKS}/capa.img") < 64 * MIB  # sparse still


def test_a_smaller_disk_is_refused_unless_the_data_fits_then_made_offline(host, capa):
    assert ssh(host.ip, capa.port, capa.key, "head -c 300M /dev/zero > ~/some").returncode == 0
    before = ssh(host.ip, capa.port, capa.key, IN_HOME).stdout
    refused = host.unitgen("set", "capa", "--disk", "256M", check=False)
    assert refused.returncode == 2 and "give at least 1G" in refused.stderr
    assert inside_size(capa) > 19 << 30
    said = host.unitgen("set", "capa", "--disk", "1G").stdout
    assert said == ("capa: disk: shrunk to 1G offline: the workspace was stopped for it and "
                    "started again\n")
    assert capa.login().returncode == 0
    assert 900 * MIB < inside_size(capa) <= 1 << 30
    assert ssh(host.ip, capa.port, capa.key, IN_HOME).stdout == before


def test_on_demand_the_disk_is_mounted_only_while_the_workspace_runs(host, add):
    capd = add("capd", "--on-demand", "--idle-stop", f"{IDLE}s", start=False)
    image = f"{DISKS}/capd.img"
    assert host.exec("test", "-f", image).returncode == 0  # made by add
    assert not mounted(host, "capd")
    assert ssh(host.ip, capd.port, capd.key, "echo kept > ~/note").returncode == 0
    assert mounted(host, "capd") and loops(host, image)
    wait(lambda: not mounted(host, "capd"), IDLE + 60, "capd's disk unmounted when idle")
    assert loops(host, image) == ""
    assert row(host, "capd")["disk"] > 0  # read from the unmounted disk's superblock
    taken = host.unitgen("backup", "capd").stdout.split()[-1]  # mounts it for the backup
    assert "/wormhole/capd/home/note" in snapshot_files(host, taken)
    wait(lambda: not mounted(host, "capd"), 30, "capd's disk unmounted after the backup")
    done = ssh(host.ip, capd.port, capd.key, "cat ~/note")
    if done.stdout != "kept\n":
        print(host.exec("journalctl", "--no-pager", "--since", "-2min", "-u", "wormhole@capd",
                        "-u", "wormhole-proxy@capd.service", "-u", "wormhole-data@capd",
                        "-u", "wormhole-backup@capd").stdout[-4000:])
    assert done.stdout == "kept\n", done.stderr


def snapshot_files(host, snapshot: str) -> list[str]:
    """The paths a snapshot in the lab host's local repository holds, listed by restic in
    the backup image."""
    secrets, repository = "/etc/wormhole/restic", "/var/lib/wormhole/backups/restic.repo"
    return host.exec(
        "docker", "run", "--rm", "--network", "none", "-v", f"{secrets}:/secrets:ro",
        "-v", f"{repository}:{repository}:ro", "-e", "RESTIC_REPOSITORY_FILE=/secrets/repository",
        "-e", "RESTIC_PASSWORD_FILE=/secrets/password", "wormhole-backup:latest",
        "ls", "--no-lock", snapshot).stdout.split("\n")


def engine_state(host) -> tuple:
    """What a refused restore must leave as it was: files, disks, volumes, containers."""
    files = host.sh("find /etc/wormhole /etc/systemd/system -type f -print0 | sort -z | "
                    "xargs -0 sha256sum").stdout
    disks = host.exec("ls", "-1", DISKS).stdout  # the running disks' own times move
    volumes = host.exec("docker", "volume", "ls", "--quiet").stdout
    containers = host.exec("docker", "ps", "--all", "--format", "{{.Names}}").stdout
    return files, disks, volumes, containers


def test_a_restore_larger_than_the_cap_is_refused_before_anything_changes(host, capb):
    assert ssh(host.ip, capb.port, capb.key, "head -c 300M /dev/zero > ~/big").returncode == 0
    taken = host.unitgen("backup", "capb").stdout.split()[-1]
    assert ssh(host.ip, capb.port, capb.key, "rm ~/big").returncode == 0
    host.unitgen("set", "capb", "--disk", "256M")  # smaller than the snapshot
    # capd, on demand, stops when idle: not the restore's doing, so wait for it first.
    wait(lambda: "wormhole-capd" not in host.exec("docker", "ps", "--format", "{{.Names}}")
         .stdout.split(), IDLE + 60, "capd's container stopped when idle")
    before = engine_state(host)
    done = host.unitgen("restore", "capb", taken, "--no-backup", check=False)
    assert done.returncode == 2, done.stderr
    assert f"snapshot {taken} of " in done.stderr
    assert "takes 300M, more than a 256M disk holds" in done.stderr
    assert "give capb a larger disk first" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    after = engine_state(host)
    if after != before:
        print(host.exec("journalctl", "--no-pager", "--since", "-3min", "-u", "wormhole@capd",
                        "-u", "wormhole-proxy@capd.service", "-u", "wormhole-proxy@capd.socket",
                        "-u", "wormhole-data@capd").stdout[-4000:])
    assert after == before
    host.unitgen("set", "capb", "--disk", "10G", "--restart")


def test_a_restore_fills_a_new_disk_and_switches_once_the_workspace_answers(host, capb):
    assert ssh(host.ip, capb.port, capb.key, "mkdir -p ~/d && echo one > ~/d/one && "
               "ln -s one ~/d/link && chmod 0640 ~/d/one").returncode == 0
    before = ssh(host.ip, capb.port, capb.key, IN_HOME.replace(" %T@", "")).stdout
    fingerprint = host_key(host.ip, capb.port)
    taken = host.unitgen("backup", "capb").stdout.split()[-1]
    assert ssh(host.ip, capb.port, capb.key, "rm -r ~/d && touch ~/new").returncode == 0
    done = host.unitgen("restore", "capb", taken, "--no-backup")
    assert f"from snapshot {taken} of " in done.stdout
    assert f"onto a new disk of 10G, {DISKS}/capb.1.img" in done.stdout
    assert capb.login().returncode == 0
    assert ssh(host.ip, capb.port, capb.key, IN_HOME.replace(" %T@", "")).stdout == before
    assert host_key(host.ip, capb.port) == fingerprint
    assert entries(host, "capb") == ["capb", "capb.1.img"]
    assert loops(host, f"{DISKS}/capb.1.img")


# ---- people of before disks ---------------------------------------------------------------

def before_disks(host, make_key, name: str, record: str = "", extra_mib: int = 0) -> None:
    """A person as a unitgen before disks left them: their record, and their home and host
    key on two volumes (TREE in the home, and a host key)."""
    key = make_key(name).with_suffix(".pub").read_text().strip()
    host.put(f"/etc/wormhole/people/{name}.toml",
             f'port = {PORTS[name]}\nkeys = ["{key}"]\n{record}')
    paths = {}
    for volume in (f"wormhole-home-{name}", f"wormhole-hostkeys-{name}"):
        host.exec("docker", "volume", "create", "--label", f"wormhole.user={name}", volume)
        paths[volume] = host.exec("docker", "volume", "inspect", "--format",
                                  "{{.Mountpoint}}", volume).stdout.strip()
    home, keys = paths[f"wormhole-home-{name}"], paths[f"wormhole-hostkeys-{name}"]
    host.exec("sh", "-c", TREE, "sh", home)
    host.exec("chown", "1000:1000", home)  # as the workspace's entrypoint leaves it
    host.exec("chmod", "0700", home)
    if extra_mib:
        host.sh(f"head -c {extra_mib}M /dev/urandom > {home}/data/extra")
    host.exec("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "",
              "-f", f"{keys}/ssh_host_ed25519_key")
    host.exec("touch", f"{keys}/home-seeded")


def volume_path(host, volume: str) -> str:
    return host.exec("docker", "volume", "inspect", "--format", "{{.Mountpoint}}",
                     volume).stdout.strip()


def volume_key(host, name: str) -> str:
    path = f"{volume_path(host, f'wormhole-hostkeys-{name}')}/ssh_host_ed25519_key.pub"
    return host.exec("ssh-keygen", "-lf", path).stdout.split()[1]


@pytest.fixture(scope="module")
def moved(host, make_key):
    """capl registered before disks and stopped; capr marked on volumes and running on them;
    capm running on volumes that hold more than their cap; then `unitgen upgrade`."""
    before_disks(host, make_key, "capl")
    before_disks(host, make_key, "capr", "on_volumes = true\n")
    before_disks(host, make_key, "capm", 'on_volumes = true\ndisk = "256M"\n', extra_mib=300)
    host.unitgen("set", "capr", "--pids", "1024")  # installs every file, moves nobody
    host.exec("systemctl", "start", "wormhole@capr", "wormhole@capm")
    for name in ("capr", "capm"):
        assert wait_ssh(host.ip, PORTS[name], make_key(name)).returncode == 0
    seen = {name: (listing(host, volume_path(host, f"wormhole-home-{name}")),
                   volume_key(host, name)) for name in PORTS}
    done = host.unitgen("upgrade", check=False)
    return done, seen


def test_upgrade_moves_homes_from_volumes_with_every_path_mode_owner_and_link(
        host, make_key, moved):
    done, seen = moved
    assert "capl: moved onto the disk; the volumes were deleted" in done.stdout
    assert "capr: moved onto the disk; the volumes were deleted" in done.stdout
    assert "records equal on both sides" in done.stdout
    before, fingerprint = seen["capl"]
    assert "data/link" in before and "b'kept'" in before and "\tTrue\t" in before
    host.exec("systemctl", "start", "wormhole@capl")
    assert wait_ssh(host.ip, PORTS["capl"], make_key("capl")).returncode == 0
    assert listing(host, f"{DISKS}/capl/home") == before
    assert host_key(host.ip, PORTS["capl"]) == fingerprint
    volumes = host.exec("docker", "volume", "ls", "--quiet").stdout.split()
    assert not {"wormhole-home-capl", "wormhole-hostkeys-capl"} & set(volumes)


def test_a_running_person_is_moved_and_started_again_on_the_disk(host, make_key, moved):
    _, seen = moved
    assert wait_ssh(host.ip, PORTS["capr"], make_key("capr")).returncode == 0
    assert mounted(host, "capr")
    assert listing(host, f"{DISKS}/capr/home") == seen["capr"][0]
    assert host_key(host.ip, PORTS["capr"]) == seen["capr"][1]
    assert row(host, "capr")["home"] == "disk"


def test_a_failed_move_leaves_the_home_on_its_volumes_and_the_workspace_running(
        host, make_key, moved):
    done, seen = moved
    assert done.returncode == 1
    assert "capm: NOT moved onto a disk" in done.stdout and "give a larger disk" in done.stdout
    assert "the home of capm is still on Docker volumes" in done.stderr
    assert listing(host, volume_path(host, "wormhole-home-capm")) == seen["capm"][0]
    assert entries(host, "capm") == []
    assert wait_ssh(host.ip, PORTS["capm"], make_key("capm")).returncode == 0
    assert host_key(host.ip, PORTS["capm"]) == seen["capm"][1]
    assert row(host, "capm")["home"] == "volumes"
    checks = json.loads(host.unitgen("doctor", "--json", check=False).stdout)
    assert any("still on Docker volumes" in c["detail"] and "capm" in c["detail"]
               for c in checks)


def test_remove_purge_deletes_the_disk_and_its_mount_folder(host, capb):
    image = f"{DISKS}/capb.1.img"
    host.unitgen("remove", "capb", "--purge", "--yes", "--no-backup")
    assert entries(host, "capb") == []
    assert loops(host, image) == ""
