"""A real systemd + Docker host in a container, for the system tests, the demo and the bench.

The host container runs systemd as PID 1 and its own Docker engine (the recipe in
../shared/ENVIRONMENT.md); unitgen is installed on it from wheels, and the workspace
image is built by `unitgen image build` on the outer engine and loaded into it.
"""

import fcntl
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
# What the lab names its own containers, volumes, networks and images after.
PREFIX = os.environ.get("WORMHOLE_LAB_PREFIX", "wormhole-lab-")
HOST_IMAGE = "wormhole-lab/host:1"
# The workspace image as the config names it by default, inside a lab host; on the outer
# engine it is built under the lab's prefix, so that no one else's wormhole:latest moves.
HOST_WORKSPACE_IMAGE = "wormhole:latest"
WORKSPACE_IMAGE = f"{PREFIX}wormhole:latest"
RUN_FLAGS = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
    "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock",
    # Loop devices for the workspaces' disks: the control device and every loop block
    # device (major 7). The lab host's /dev is a tmpfs without udev, so Host.start adds
    # loop-nodes.service, which makes the /dev/loopN nodes at every boot; a real host's
    # devtmpfs makes them as loop-control creates the devices.
    "--device", "/dev/loop-control", "--device-cgroup-rule", "b 7:* rmw",
]


# The freezer files of cgroup v1 and v2 and what each says when thawed.
THAWED = {"freezer.state": "THAWED", "cgroup.freeze": "0"}


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it, those in nested PID namespaces included."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                stat = (entry / "stat").read_text()
                parent = int(stat[stat.rindex(")") + 2:].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
        except OSError:
            continue
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo.extend(children.get(found[-1], []))
    return found


def frozen_cgroups(pids: list[int]) -> set[Path]:
    """The freezer files of the cgroups that hold these processes, frozen or freezing."""
    found = set()
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            _, controllers, path = line.split(":", 2)
            if controllers == "freezer":
                file = Path("/sys/fs/cgroup/freezer", path.lstrip("/"), "freezer.state")
            elif controllers == "":
                file = Path("/sys/fs/cgroup", path.lstrip("/"), "cgroup.freeze")
            else:
                continue
            try:
                if file.read_text().strip() != THAWED[file.name]:
                    found.add(file)
            except OSError:
                continue
    return found


def run(*args: str, input: bytes | str | None = None, check: bool = True,
        timeout: float = 600) -> subprocess.CompletedProcess:
    text = not isinstance(input, bytes)
    done = subprocess.run(list(args), input=input, capture_output=True, text=text,
                          timeout=timeout)
    if check and done.returncode:
        output = (done.stdout + done.stderr)[-3000:]
        raise RuntimeError(f"{' '.join(args)[:300]} exited {done.returncode}: {output}")
    return done


@contextmanager
def one_builder() -> Iterator[None]:
    """One image build at a time on this machine: the two runs of the system layer ask
    for the same images at once, and the second then finds them in the build cache."""
    state = Path(os.environ.get("WORMHOLE_LAB_STATE", "/var/tmp/wormhole-lab"))
    state.mkdir(parents=True, exist_ok=True)
    with open(state / f"{PREFIX}build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build_workspace_image(tag: str = WORKSPACE_IMAGE) -> None:
    """The image as an admin builds it: with unitgen's own command."""
    with one_builder():
        run(str(TOP / ".venv/bin/unitgen"), "image", "build", "--tag", tag)


def build_wheels(dest: Path) -> Path:
    run(str(TOP / ".venv/bin/pip"), "wheel", "-q", "-w", str(dest), str(TOP))
    return dest


class Host:
    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def start(cls, name: str, image: str = HOST_IMAGE, extra: tuple[str, ...] = ()) -> "Host":
        if run("docker", "image", "inspect", image, check=False).returncode:
            raise RuntimeError(f"image {image} is missing: run tests/setup.sh first")
        run("docker", "rm", "--force", name, check=False)
        run("docker", "volume", "rm", "--force", f"{name}-docker", check=False)
        run("docker", "run", "--detach", "--name", name, "--hostname", name, *RUN_FLAGS,
            "-v", f"{name}-docker:/var/lib/docker", *extra, image)
        host = cls(name)
        host.wait_running()
        host.enable_loop_devices()
        return host

    def destroy(self) -> None:
        self.thaw()
        run("docker", "rm", "--force", self.name, check=False)
        run("docker", "volume", "rm", "--force", f"{self.name}-docker", check=False)

    def thaw(self) -> None:
        """Thaw every frozen cgroup that holds a process of this host. A runc killed while
        it had a container frozen (its engine under a stampede) leaves it so, and a frozen
        process cannot die: the outer engine then fails to remove the host."""
        pid = run("docker", "inspect", "--format", "{{.State.Pid}}", self.name,
                  check=False).stdout.strip()
        if not pid.isdigit() or pid == "0":
            return
        for path in frozen_cgroups(descendants(int(pid))):
            path.write_text(THAWED[path.name])

    def exec(self, *cmd: str, input: bytes | str | None = None, check: bool = True,
             timeout: float = 600) -> subprocess.CompletedProcess:
        return run("docker", "exec", "-i", self.name, *cmd, input=input, check=check,
                   timeout=timeout)

    def sh(self, script: str, check: bool = True,
           timeout: float = 600) -> subprocess.CompletedProcess:
        return self.exec("sh", "-c", script, check=check, timeout=timeout)

    @property
    def ip(self) -> str:
        return run("docker", "inspect", "--format", "{{.NetworkSettings.IPAddress}}",
                   self.name).stdout.strip()

    def wait_running(self, timeout: float = 90) -> None:
        """Until systemd has booted the host and its engine answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.exec("systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded") and \
                    self.exec("docker", "info", check=False).returncode == 0:
                return
            time.sleep(0.5)
        raise RuntimeError(f"host {self.name} did not boot within {timeout}s")

    def enable_loop_devices(self) -> None:
        """Make /dev/loopN nodes now and at every boot."""
        unit = (Path(__file__).parent / "loop-nodes.service").read_text()
        self.put("/etc/systemd/system/lab-loop-nodes.service", unit)
        self.exec("systemctl", "enable", "--now", "lab-loop-nodes.service")

    def reboot(self) -> None:
        run("docker", "restart", "--time", "30", self.name)
        self.wait_running()

    def load_image(self, tag: str = WORKSPACE_IMAGE) -> None:
        """Load `tag` into the host's engine; the workspace image is tagged there as the
        config names it by default."""
        saved = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
        loaded = subprocess.run(["docker", "exec", "-i", self.name, "docker", "load"],
                                stdin=saved.stdout, capture_output=True, text=True)
        saved.stdout.close()
        if saved.wait() or loaded.returncode:
            raise RuntimeError(f"loading {tag} into {self.name} failed: {loaded.stderr}")
        if tag == WORKSPACE_IMAGE:
            self.exec("docker", "tag", tag, HOST_WORKSPACE_IMAGE)

    def install_unitgen(self, wheels: Path) -> None:
        """Install unitgen from wheels into /opt/unitgen with no index, as an admin would."""
        run("docker", "cp", f"{wheels}/.", f"{self.name}:/tmp/unitgen-wheels")
        self.sh("python3 -m venv /opt/unitgen && /opt/unitgen/bin/pip install -q --no-index "
                "--find-links /tmp/unitgen-wheels unitgen && "
                "ln -sf /opt/unitgen/bin/unitgen /usr/local/bin/unitgen")

    def put(self, path: str, data: str) -> None:
        self.exec("sh", "-c", f"mkdir -p \"$(dirname '{path}')\" && cat > '{path}'", input=data)

    def unitgen(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.exec("unitgen", *args, check=check)

    def unit(self, unit: str, *properties: str) -> dict[str, str]:
        text = self.exec("systemctl", "show", "--property=" + ",".join(properties), unit).stdout
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def container(self, name: str) -> dict | None:
        done = self.exec("docker", "inspect", name, check=False)
        return json.loads(done.stdout)[0] if done.returncode == 0 else None


def ssh_args(ip: str, port: int, key: Path, user: str = "user") -> list[str]:
    return ["ssh", "-F", "/dev/null", "-p", str(port), "-i", str(key),
            "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", f"{user}@{ip}"]


def ssh(ip: str, port: int, key: Path, command: str, *options: str, user: str = "user",
        timeout: float = 60) -> subprocess.CompletedProcess:
    args = ssh_args(ip, port, key, user)
    return subprocess.run([*args[:-1], *options, args[-1], command], capture_output=True,
                          text=True, timeout=timeout)


def wait_ssh(ip: str, port: int, key: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """Until a login with `key` runs `id`; the last attempt is returned either way."""
    deadline = time.monotonic() + timeout
    while True:
        done = ssh(ip, port, key, "id")
        if done.returncode == 0 or time.monotonic() > deadline:
            return done
        time.sleep(0.5)


def wait(predicate, timeout: float, what: str) -> float:
    """Seconds until `predicate()` holds, polled four times a second; fails after `timeout`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.25)
    return time.monotonic() - started


def host_key(ip: str, port: int) -> str:
    """The fingerprint of the ed25519 host key a workspace presents."""
    scan = run("ssh-keyscan", "-t", "ed25519", "-p", str(port), ip, check=False)
    return run("ssh-keygen", "-lf", "-", input=scan.stdout).stdout.split()[1]
