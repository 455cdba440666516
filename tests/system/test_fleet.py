"""A fleet on this machine's engine: three workspace hosts and a gateway from one people file
of 60 people. Each is a Fedora CoreOS-like lab host (no Python: unitgen runs through the
wrapper and its CLI image, as on Fedora CoreOS; OpenSSH's server, `core` with sudo), the test's
own container, provisioned by the real Ignition binary from `unitgen fleet ignition` and
rebooted. The admin drives the fleet from this machine with `unitgen fleet` over real ssh;
people log in with the real client through the gateway, with the block `unitgen fleet
ssh-config` prints. The hosts back up into one restic repository, a folder every host mounts
(the test's own volume, as a fleet would mount a shared file system), with one password that
`fleet ignition --backup-secrets` gives each host."""

import json
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.lab.host import TOP, Host, run
from tests.system.test_coreos import APPLY, IGNITION
from unitgen.placement import Locked, load_lock

PREFIX = os.environ.get("FLEET_LAB_PREFIX", "wormhole-lab-fleet")
LAB_IMAGE = f"{PREFIX}/host:1"
WORKSPACE_IMAGE = f"{PREFIX}/wormhole:1"
CLI_IMAGE = f"{PREFIX}/unitgen:1"
BACKUP_IMAGE = f"{PREFIX}/backup:1"
REPOSITORY = "/srv/fleet-repository"
UNITGEN = str(TOP / ".venv/bin/unitgen")
# Unequal on purpose: h3 is small, so losing it restores a handful of people, not a third.
CAPACITY = {"h1": 32, "h2": 32, "h3": 6}
NAMES = ["alice", *(f"u{n:02d}" for n in range(1, 60))]
ALICE_DISK = "512M"
DISKS = "/var/lib/wormhole/disks"
MANIFEST = ("cd ~ && find . -printf '%p %y %m %s %l\\n' | LC_ALL=C sort && "
            "find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum")


def public(key: Path) -> str:
    return key.with_suffix(".pub").read_text().strip()


def parallel(function: Callable, items: list, workers: int = 4) -> list:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


@dataclass
class Lab:
    folder: Path
    hosts: dict[str, Host]  # gw, h1, h2, h3
    keys: dict[str, Path]
    env: dict[str, str]

    def fleet(self, *args: str, folder: Path | None = None,
              timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([UNITGEN, "fleet", *args], capture_output=True, text=True,
                              cwd=folder or self.folder, env=self.env, timeout=timeout)

    def ok(self, *args: str, folder: Path | None = None) -> str:
        done = self.fleet(*args, folder=folder)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
        return done.stdout

    def lock(self) -> dict[str, Locked]:
        return load_lock((self.folder / "people.lock").read_text(), "people.lock")

    def on(self, host: str) -> list[str]:
        return sorted(n for n, at in self.lock().items() if at.host == host)

    def ip(self, host: str) -> str:
        return self.hosts[host].ip

    def config(self, name: str) -> Path:
        """The person's ssh config: the block the fleet prints, and their own key."""
        path = self.folder / "ssh" / f"{name}.config"
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            path.write_text(self.ok("ssh-config", name) + "\n".join([
                "", "Host *", f"    IdentityFile {self.keys[name]}", "    IdentitiesOnly yes",
                f"    UserKnownHostsFile {path.with_suffix('.known')}",
                "    StrictHostKeyChecking accept-new", "    BatchMode yes",
                "    ConnectTimeout 10", "    LogLevel ERROR", ""]))
        return path

    def login(self, name: str, command: str = "id -un") -> subprocess.CompletedProcess:
        """`ssh NAME.wormhole COMMAND` with the person's config."""
        return subprocess.run(["ssh", "-F", str(self.config(name)), f"{name}.wormhole",
                               command], capture_output=True, text=True, timeout=60)

    def intrude(self, mine: str, theirs: str) -> subprocess.CompletedProcess:
        """`mine` tries `theirs`'s workspace through the gateway with their own key."""
        return subprocess.run(["ssh", "-F", str(self.config(mine)), "-J",
                               f"wormhole@{self.ip('gw')}", "-p", str(self.lock()[theirs].port),
                               f"user@{theirs}.wormhole", "id"], capture_output=True,
                              text=True, timeout=60)

    def wait_login(self, name: str, timeout: float = 60) -> subprocess.CompletedProcess:
        deadline = time.monotonic() + timeout
        while True:
            done = self.login(name)
            if done.returncode == 0 or time.monotonic() > deadline:
                return done
            time.sleep(1)

    def status(self) -> dict:
        return json.loads(self.ok("status", "--json"))


def write_people_file(path: Path, keys: dict[str, Path], admin: Path, ips: dict[str, str]):
    lines = ["[defaults]", f'image = "{WORKSPACE_IMAGE}"', f'cli_image = "{CLI_IMAGE}"',
             f'backup_image = "{BACKUP_IMAGE}"', f'backup_repository = "{REPOSITORY}"', "",
             "[admin]", f'keys = ["{public(admin)}"]', "", "[gateway]",
             f'address = "{ips["gw"]}"']
    for host, capacity in CAPACITY.items():
        lines += ["", f"[hosts.{host}]", f'address = "{ips[host]}"', f"people = {capacity}"]
    for name in NAMES:
        lines += ["", f"[people.{name}]", f'keys = ["{public(keys[name])}"]']
        if name == "alice":  # her own disk cap, which a move must carry to her new host
            lines += [f'disk = "{ALICE_DISK}"']
    path.write_text("\n".join(lines) + "\n")


def keygen(path: Path) -> Path:
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path))
    return path


def provision(host: Host, config: Path, images: Path | None) -> None:
    """What first boot does, as test_coreos does it: the real Ignition applies the config;
    the images a registry pull would bring are loaded; then the host reboots."""
    run("docker", "cp", IGNITION, f"{host.name}:/usr/local/bin/ignition")
    run("docker", "cp", str(config), f"{host.name}:/root/host.ign")
    host.sh(APPLY)
    if images is not None:
        with open(images, "rb") as handle:
            loaded = subprocess.run(["docker", "exec", "-i", host.name, "docker", "load"],
                                    stdin=handle, capture_output=True, text=True)
        assert loaded.returncode == 0, loaded.stderr
    host.reboot()


def timed(label: str, started: float) -> float:
    spent = time.monotonic() - started
    print(f"\n[fleet] {label}: {spent:.1f} s")
    return spent


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    started = time.monotonic()
    folder = tmp_path_factory.mktemp("fleet")
    run("docker", "build", "-q", "-t", LAB_IMAGE, str(TOP / "tests/lab/fleet"), timeout=900)
    run(UNITGEN, "image", "build", "--tag", WORKSPACE_IMAGE, timeout=900)
    run(UNITGEN, "image", "build", "--cli", "--tag", CLI_IMAGE, timeout=900)
    run(UNITGEN, "image", "build", "--backup", "--tag", BACKUP_IMAGE, timeout=900)
    images = folder / "images.tar"
    run("docker", "save", "-o", str(images), WORKSPACE_IMAGE, CLI_IMAGE, BACKUP_IMAGE)
    timed("images", started)
    names = {role: f"{PREFIX}-{role}-{os.getpid()}" for role in ("gw", *CAPACITY)}
    shared = f"{PREFIX}-repository-{os.getpid()}"
    hosts: dict[str, Host] = {}
    try:
        for role, host in zip(names, parallel(lambda role: Host.start(
                names[role], image=LAB_IMAGE,
                extra=() if role == "gw" else ("-v", f"{shared}:{REPOSITORY}")),
                list(names)), strict=True):
            hosts[role] = host
        timed("four hosts booted", started)
        (folder / "keys").mkdir()
        keys = {name: keygen(folder / "keys" / name) for name in [*NAMES, "admin"]}
        write_people_file(folder / "people.toml", keys, keys["admin"],
                          {role: h.ip for role, h in hosts.items()})
        admin_config = folder / "admin.config"
        admin_config.write_text("\n".join([
            "Host *", f"    IdentityFile {keys['admin']}", "    IdentitiesOnly yes",
            "    StrictHostKeyChecking no", "    UserKnownHostsFile /dev/null",
            "    BatchMode yes", "    ConnectTimeout 10", "    LogLevel ERROR", ""]))
        env = {**os.environ, "UNITGEN_FLEET_SSH": f"ssh -F {admin_config}"}
        (folder / "out").mkdir()
        lab = Lab(folder, hosts, keys, env)
        secrets = folder / "secrets"
        secrets.mkdir(mode=0o700)
        (secrets / "password").write_text("the fleet's own test password\n")
        lab.ok("ignition", "--out", "out", "--backup-secrets", str(secrets))
        parallel(lambda role: provision(hosts[role], folder / "out" / (
            "gateway.ign" if role == "gw" else f"{role}.ign"), None if role == "gw" else images),
            list(hosts))
        images.unlink()
        timed("provisioned by Ignition and rebooted", started)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            done = lab.fleet("status", "--json")
            rows = json.loads(done.stdout)["hosts"] if done.returncode == 0 else []
            if rows and all(r["answered"] for r in rows) and \
                    sum(r["summary"]["running"] for r in rows) == len(NAMES):
                break
            time.sleep(3)
        timed(f"all {len(NAMES)} workspaces running", started)
        yield lab
    finally:
        parallel(Host.destroy, list(hosts.values()))
        run("docker", "volume", "rm", "--force", shared, check=False)


# ---- three hosts and a gateway from one file -----------------------------------------------

def test_each_host_serves_exactly_its_people(lab):
    found = lab.status()
    for row in found["hosts"]:
        assert row["answered"], row["error"]
        assert sorted(w["user"] for w in row["workspaces"]) == lab.on(row["host"])
        assert row["summary"]["running"] == len(lab.on(row["host"]))
        assert (row["missing"], row["unexpected"]) == ([], [])
    assert sum(len(lab.on(h)) for h in CAPACITY) == len(NAMES)
    assert found["gateway"]["in_step"] is True


def test_fleet_status_over_the_four_hosts_is_measured(lab):
    spans = []
    for _ in range(5):
        started = time.monotonic()
        lab.ok("status")
        spans.append(time.monotonic() - started)
    print(f"\n[fleet] unitgen fleet status over {len(CAPACITY)} workspace hosts and the gateway "
          f"({len(NAMES)} workspaces): median {statistics.median(spans):.2f} s of 5 "
          f"(min {min(spans):.2f}, max {max(spans):.2f})")
    lines = lab.ok("status").splitlines()
    assert [line.split()[0] for line in lines] == ["HOST", *CAPACITY, "gateway"]
    assert lines[-1].endswith("in step with people.lock")


def test_everyone_logs_in_through_the_gateway_with_the_printed_config(lab):
    started = time.monotonic()
    logins = parallel(lambda n: lab.login(n, f"echo {n} > ~/marker && id -un"), NAMES, 6)
    spent = timed(f"{len(NAMES)} logins through the gateway, 6 at a time", started)
    assert [(n, d.returncode, d.stdout) for n, d in zip(NAMES, logins, strict=True)
            if (d.returncode, d.stdout) != (0, "user\n")] == []
    assert spent < 120


def test_nobody_reaches_another_workspace(lab):
    """The gateway refuses every connection a person's key asks for but the one to their own
    workspace (sshd logs each refusal), and gives no shell."""
    gateway = lab.hosts["gw"]
    since = gateway.exec("date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
    pairs = [(NAMES[n], NAMES[(n * 7 + 3) % len(NAMES)]) for n in range(0, 60, 6)]
    for mine, theirs in pairs:
        done = lab.intrude(mine, theirs)
        assert done.returncode == 255, (mine, theirs, done.stdout)
        assert "stdio forwarding failed" in done.stderr, done.stderr
    config = lab.config("alice")
    jump = f"wormhole@{lab.ip('gw')}"
    # not a host's own ssh, not a workspace by its address, not another port of her name
    targets = [f"{lab.ip('h1')}:22", f"{lab.ip('h2')}:{lab.lock()['u01'].port}",
               f"alice.wormhole:{lab.lock()['alice'].port + 1}"]
    for target in targets:
        done = subprocess.run(["ssh", "-F", str(config), "-W", target, jump],
                              capture_output=True, text=True, timeout=30, input="")
        assert done.returncode == 255 and "stdio forwarding failed" in done.stderr, target
    log = gateway.exec("journalctl", "-u", "ssh", "--since", since, "--no-pager").stdout
    assert log.count("but the request was denied") == len(pairs) + len(targets), log[-3000:]
    done = subprocess.run(["ssh", "-F", str(config), jump, "id"], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 1 and "uid=" not in done.stdout
    assert "This account is currently not available." in done.stdout + done.stderr


def keyscan(port: int, address: str, via: Host | None = None) -> str:
    command = ["ssh-keyscan", "-T", "3", "-t", "ed25519", "-p", str(port), address]
    done = via.exec(*command, check=False) if via else run(*command, check=False)
    return done.stdout


def test_a_workspace_host_takes_ssh_only_from_the_gateway(lab):
    for host in CAPACITY:
        port = lab.lock()[lab.on(host)[0]].port
        assert "ssh-ed25519" in keyscan(port, lab.ip(host), via=lab.hosts["gw"])
        assert keyscan(port, lab.ip(host)) == ""  # from this machine
        other = next(h for h in CAPACITY if h != host)
        assert keyscan(port, lab.ip(host), via=lab.hosts[other]) == ""
        assert "ssh-ed25519" in keyscan(22, lab.ip(host))  # the admin's own ssh


# ---- placement: deterministic and stable -----------------------------------------------------

def copy_of(lab: Lab, name: str, edit: Callable[[str], str], lock: bool = True) -> Path:
    folder = lab.folder / name
    folder.mkdir()
    (folder / "people.toml").write_text(edit((lab.folder / "people.toml").read_text()))
    if lock:
        shutil.copy(lab.folder / "people.lock", folder / "people.lock")
    return folder


def moves(lab: Lab, folder: Path, *options: str) -> list[list[str]]:
    lines = lab.ok("plan", *options, folder=folder).splitlines()
    if lines[-1].startswith("no moves"):
        return []
    start = next(n for n, line in enumerate(lines) if line.startswith("PERSON") and "FROM" in line)
    return [line.split(None, 3) for line in lines[start + 1:]]


def test_the_same_file_gives_byte_identical_configs_and_lock(lab):
    again = copy_of(lab, "again", lambda t: t, lock=False)
    (again / "out").mkdir()
    lab.ok("ignition", "--out", "out", "--backup-secrets", str(lab.folder / "secrets"),
           folder=again)
    for config in (lab.folder / "out").iterdir():
        assert (again / "out" / config.name).read_bytes() == config.read_bytes(), config.name
    assert (again / "people.lock").read_bytes() == (lab.folder / "people.lock").read_bytes()


def test_adding_a_fourth_host_moves_at_most_its_share(lab):
    fourth = 'address = "10.255.0.4"\npeople = 23\n'
    folder = copy_of(lab, "fourth", lambda t: t.replace("[people.alice]",
                                                        f"[hosts.h4]\n{fourth}\n[people.alice]"))
    assert moves(lab, folder) == []  # the lock keeps everyone where they are
    moved = moves(lab, folder, "--rebalance")
    share = 23 / (sum(CAPACITY.values()) + 23)
    print(f"\n[fleet] a fourth host (share {share:.1%}): {len(moved)} of {len(NAMES)} people "
          "move on --rebalance")
    assert 0 < len(moved) <= (0.25 + 0.05) * len(NAMES)
    assert {m[2] for m in moved} == {"h4"}


def test_removing_a_host_moves_only_its_people(lab):
    block = f'[hosts.h3]\naddress = "{lab.ip("h3")}"\npeople = {CAPACITY["h3"]}\n'
    folder = copy_of(lab, "without-h3", lambda t: t.replace(block, ""))
    moved = moves(lab, folder)
    assert sorted(m[0] for m in moved) == lab.on("h3")
    assert {(m[1], m[3]) for m in moved} == {("h3", "h3 is gone")}


# ---- a move of alice ---------------------------------------------------------------------------

def pin(lab: Lab, name: str, host: str) -> None:
    source = lab.folder / "people.toml"
    text = source.read_text()
    head = f"[people.{name}]\n"
    rest = text.split(head, 1)[1]
    if rest.startswith("host = "):
        rest = rest.split("\n", 1)[1]
    source.write_text(text.split(head, 1)[0] + head + f'host = "{host}"\n' + rest)


def registered(lab: Lab, host: str) -> list[str]:
    done = lab.hosts[host].sh("ls /etc/wormhole/people")
    return sorted(n.removesuffix(".toml") for n in done.stdout.split())


def disks_of(lab: Lab, host: str, name: str) -> list[str]:
    """The person's entries under the disks folder: images and mount folders."""
    done = lab.hosts[host].sh(f"mkdir -p {DISKS} && ls {DISKS}")
    return [e for e in done.stdout.split() if e == name or e.startswith(f"{name}.")]


def on_a_disk_of_her_cap(lab: Lab, host: str) -> None:
    """Alice's home on the host is a mounted disk of her own cap, not of the default."""
    shown = json.loads(lab.hosts[host].sh("unitgen show alice --json").stdout)
    assert (shown["home"], shown["disk"]) == ("disk", ALICE_DISK), shown
    mount = lab.hosts[host].sh(f"findmnt --noheadings --output SOURCE,SIZE --bytes "
                               f"--mountpoint {DISKS}/alice").stdout.split()
    image = lab.hosts[host].sh(f"losetup --noheadings --output BACK-FILE {mount[0]}").stdout
    assert image.strip().startswith(f"{DISKS}/alice") and image.strip().endswith(".img")
    assert int(lab.hosts[host].sh(f"stat -c %s {image.strip()}").stdout) == 512 << 20
    assert 400 << 20 < int(mount[1]) <= 512 << 20, mount
    size = lab.login("alice", "df -B1 --output=size ~ | tail -1").stdout
    assert int(size) == int(mount[1])


@dataclass
class Alice:
    manifest: str
    config: str
    known: str


@pytest.fixture(scope="module")
def alice(lab) -> Alice:
    script = ("mkdir -p ~/project/src && printf 'line\\n' > ~/project/src/main.c && "
              "chmod 600 ~/project/src/main.c && ln -sf project/src/main.c ~/link && "
              "head -c 65536 /dev/urandom > ~/blob && chmod 751 ~/project")
    assert lab.login("alice", script).returncode == 0
    config = lab.config("alice")
    return Alice(lab.login("alice", MANIFEST).stdout, config.read_text(),
                 config.with_suffix(".known").read_text())


def still_alice(lab: Lab, alice: Alice) -> None:
    """Alice logs in with her unchanged config, the same host key, and every file."""
    done = lab.wait_login("alice")
    assert done.returncode == 0, done.stderr
    assert lab.login("alice", MANIFEST).stdout == alice.manifest
    assert lab.config("alice").read_text() == alice.config
    assert lab.config("alice").with_suffix(".known").read_text() == alice.known
    assert lab.ok("ssh-config", "alice") in alice.config


def inject_backup(lab, source, target):
    """The source's backups held, as on a host that took over a repository holding its own
    name's snapshots: unitgen backup refuses."""
    hold = "/etc/wormhole/restic/hold"
    lab.hosts[source].sh(f"echo injected > {hold}")
    return lambda: lab.hosts[source].sh(f"rm -f {hold}")


def inject_restore(lab, source, target):
    """Her workspace masked on the target: the restore registers and fills it, then it
    cannot start."""
    lab.hosts[target].exec("systemctl", "mask", "wormhole@alice.service")
    return lambda: lab.hosts[target].exec("systemctl", "unmask", "wormhole@alice.service")


def inject_check(lab, source, target):
    """The gateway cannot reach her port on the target."""
    rule = ["OUTPUT", "-p", "tcp", "-d", lab.ip(target), "--dport",
            str(lab.lock()["alice"].port), "-j", "REJECT", "--reject-with", "tcp-reset"]
    lab.hosts["gw"].exec("iptables", "-I", *rule)
    return lambda: lab.hosts["gw"].exec("iptables", "-D", *rule)


def inject_switch(lab, source, target):
    """A folder where the gateway's new /etc/hosts would be written."""
    lab.hosts["gw"].exec("mkdir", "/etc/.hosts.partial")
    return lambda: lab.hosts["gw"].exec("rmdir", "/etc/.hosts.partial")


FAILURES = {"last backup": inject_backup, "restore on the target": inject_restore,
            "check it answers": inject_check, "switch the front door": inject_switch}


def test_a_move_made_to_fail_at_each_step_leaves_alice_working_on_the_source(lab, alice):
    source = lab.lock()["alice"].host
    target = next(h for h in ("h1", "h2") if h != source)
    lock = (lab.folder / "people.lock").read_bytes()
    pin(lab, "alice", target)
    for step, inject in FAILURES.items():
        undo = inject(lab, source, target)
        try:
            started = time.monotonic()
            done = lab.fleet("apply", "--wait", "8")
            timed(f"a move failing at '{step}'", started)
        finally:
            undo()
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"alice: {step} failed" in done.stderr, done.stderr
        assert "alice works on" in done.stderr and source in done.stderr
        assert (lab.folder / "people.lock").read_bytes() == lock
        assert "alice" in registered(lab, source) and "alice" not in registered(lab, target)
        left = disks_of(lab, target, "alice")
        if left:
            print(done.stdout, done.stderr, lab.hosts[target].sh(
                "findmnt -rn | grep disks; journalctl --no-pager -n 60 -u 'wormhole*alice*'",
                check=False).stdout)
        assert left == []  # the undo deleted what it made there
        still_alice(lab, alice)
    assert lab.status()["gateway"]["in_step"] is True


def test_a_move_keeps_every_file_the_host_key_and_the_ssh_config(lab, alice):
    source = lab.lock()["alice"].host  # the test before pinned her to the other big host
    started = time.monotonic()
    out = lab.ok("apply")
    timed("a move of alice", started)
    assert "alice: switch the front door: done" in out
    target = lab.lock()["alice"].host
    assert target != source
    still_alice(lab, alice)
    assert "alice" in registered(lab, target)
    others = [h for h in CAPACITY if h != target]
    assert all("alice" not in registered(lab, h) for h in others)
    on_a_disk_of_her_cap(lab, target)
    for host in others:  # the source keeps nothing of hers once the switch is done
        volumes = lab.hosts[host].exec("docker", "volume", "ls", "-q").stdout
        assert "alice" not in volumes
        assert disks_of(lab, host, "alice") == []
    assert lab.status()["gateway"]["in_step"] is True


def test_a_move_whose_old_host_cannot_be_tidied_still_moves_and_says_so(lab, alice):
    source = lab.lock()["alice"].host
    target = next(h for h in ("h1", "h2") if h != source)
    pin(lab, "alice", target)
    # A leftover of hers the purge cannot delete: a folder holding a mount that has a mount
    # inside it, so that its umount says "target is busy".
    blocker = f"{DISKS}/alice.blocker"
    lab.hosts[source].sh(f"mkdir -p {blocker} && mount -t tmpfs lab {blocker} && "
                         f"mkdir {blocker}/x && mount -t tmpfs lab {blocker}/x")
    try:
        done = lab.fleet("apply")
    finally:
        lab.hosts[source].sh(f"umount {blocker}/x; umount {blocker}")
    assert done.returncode == 1
    assert "every move was made, but the old hosts still hold: alice:" in done.stderr
    assert lab.lock()["alice"].host == target
    still_alice(lab, alice)
    on_a_disk_of_her_cap(lab, target)
    assert "alice" not in registered(lab, source)
    assert "alice.blocker" in disks_of(lab, source, "alice")  # kept, as the output says
    lab.hosts[source].sh("unitgen remove alice --purge --yes")
    assert disks_of(lab, source, "alice") == []


# ---- the loss of a host ------------------------------------------------------------------------

def test_a_lost_hosts_people_come_back_on_the_others(lab):
    lost = lab.on("h3")
    assert lost, "the small host holds nobody"
    started = time.monotonic()
    out = lab.ok("backup", *lost)
    timed(f"fleet backup of h3's {len(lost)} people", started)
    assert len(out.splitlines()) == len(lost)
    configs = {n: lab.config(n).read_text() for n in lost}
    lab.hosts["h3"].destroy()
    source = lab.folder / "people.toml"
    text = source.read_text()
    start = text.index("[hosts.h3]\n")
    end = text.index("\n\n", start) + 2
    source.write_text(text[:start] + text[end:])
    moved = moves(lab, lab.folder)
    assert sorted(m[0] for m in moved) == lost
    assert {m[3] for m in moved} == {"h3 is gone"}
    started = time.monotonic()
    lab.ok("apply")
    timed(f"{len(lost)} people of the lost host restored", started)
    for name in lost:
        assert lab.lock()[name].host in ("h1", "h2")
        assert lab.config(name).read_text() == configs[name]
        done = lab.wait_login(name)
        assert done.returncode == 0, (name, done.stderr)
        assert lab.login(name, "cat ~/marker").stdout == f"{name}\n"
    found = lab.status()
    assert all(r["answered"] and r["missing"] == [] for r in found["hosts"])
    assert sum(r["summary"]["running"] for r in found["hosts"]) == len(NAMES)
