"""Access policies on the real host with the real OpenSSH client: what each forwarding
policy lets through sshd, a switch taking effect at the next login, hardware-only keys,
and one source's flood against another client's login.

ann has forwarding = "loopback", ben the default "none". Each runs a server that greets
with their name, on 127.0.0.1:8000 and on the Unix socket /tmp/NAME.sock. A network
namespace on the host stands in for the outside world. sshd logs every forward it
refuses and why; those lines tell a refusal apart from a destination that is merely
closed."""

import json
import os
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from tests.lab.host import ssh, ssh_args, wait

TESTS = Path(__file__).parents[1]
AUDIT = TESTS.parent / ".venv/bin/ssh-audit"
CONFIG = "/etc/wormhole/wormhole.toml"
OUTSIDE = "203.0.113.2"  # a namespace standing in for the outside world
HOST_PORT = 9997  # a listener on the host's address on the workspaces' bridge
SERVE = r"""
use IO::Socket::INET; use IO::Socket::UNIX;
my ($name) = @ARGV;
unlink "/tmp/$name.sock";
my @servers = (IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 8000,
                                     Listen => 5, ReuseAddr => 1),
               IO::Socket::UNIX->new(Local => "/tmp/$name.sock", Listen => 5));
for my $server (@servers) {
    die "listen: $!" unless $server;
    next if fork;
    while (my $conn = $server->accept) { print $conn "$name\n"; close $conn }
}
"""
SETUP = f"""
set -e
bridge=$(ip -4 -o addr show wormhole0 | awk '{{print $4}}' | cut -d/ -f1)
ip netns add access
ip link add vacc0 type veth peer name vacc1
ip link set vacc1 netns access
ip addr add 203.0.113.1/24 dev vacc0 && ip link set vacc0 up
ip netns exec access sh -c 'ip addr add {OUTSIDE}/24 dev vacc1 && ip link set vacc1 up && \
  ip link set lo up && ip route add default via 203.0.113.1'
setsid ip netns exec access python3 /root/netprobe listen 0.0.0.0 8080 </dev/null >/dev/null 2>&1 &
setsid python3 /root/netprobe listen "$bridge" {HOST_PORT} </dev/null >/dev/null 2>&1 &
sleep 1
"""
TEARDOWN = f"""
pkill -f '^python3 /root/netprobe listen (0.0.0.0 8080|.* {HOST_PORT})$' || true
ip netns del access || true
"""


def run_inside(person, command: str, *options: str, input: str | None = None,
               env: dict | None = None) -> subprocess.CompletedProcess:
    args = ssh_args(person.host.ip, person.port, person.key)
    return subprocess.run([*args[:-1], *options, args[-1], command], input=input,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def serve(person) -> None:
    done = run_inside(person, f"cat > /tmp/serve.pl; setsid perl /tmp/serve.pl {person.name}"
                      " </dev/null >/dev/null 2>&1 & sleep 1; ls /tmp", input=SERVE)
    assert f"{person.name}.sock" in done.stdout.split(), done.stderr


def start(person) -> None:
    assert person.login().returncode == 0
    serve(person)


@pytest.fixture(scope="module")
def ann(add):
    person = add("ann", "--forwarding", "loopback")
    start(person)
    return person


@pytest.fixture(scope="module")
def ben(add):
    person = add("ben")
    start(person)
    return person


@pytest.fixture(scope="module")
def outside(host, ann):
    """The outside namespace and the host's listener; ann's workspace brings up the bridge."""
    host.put("/root/netprobe", (TESTS / "lab/netprobe.py").read_text())
    host.sh(SETUP)
    yield
    host.sh(TEARDOWN)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Forward:
    """`ssh -N` with one local (-L) or dynamic (-D) forward on a free local port."""

    def __init__(self, person, option: str, target: str = "") -> None:
        self.port = free_port()
        spec = f"127.0.0.1:{self.port}" + (f":{target}" if target else "")
        args = ssh_args(person.host.ip, person.port, person.key)
        self.session = subprocess.Popen([*args[:-1], "-N", option, spec, args[-1]],
                                        stderr=subprocess.DEVNULL)

    def connect(self) -> socket.socket:
        for _ in range(100):
            try:
                return socket.create_connection(("127.0.0.1", self.port), timeout=5)
            except ConnectionRefusedError:
                time.sleep(0.1)
        raise AssertionError("the forward never listened")

    def ask(self) -> bytes:
        with self.connect() as conn:
            return answer(conn)

    def __enter__(self) -> "Forward":
        return self

    def __exit__(self, *_) -> None:
        self.session.terminate()
        try:
            self.session.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.session.kill()
            self.session.wait()


def answer(conn: socket.socket) -> bytes:
    conn.settimeout(3)
    try:
        return conn.recv(256)
    except TimeoutError:
        return b""


def through(person, target: str) -> bytes:
    """What comes back through `ssh -L PORT:TARGET`: b"" when sshd refused the channel."""
    with Forward(person, "-L", target) as forward:
        return forward.ask()


def through_socks(person, address: str, port: int) -> tuple[bool, bytes]:
    """A SOCKS5 CONNECT through `ssh -D`: whether the client reported success, and what
    came back."""
    with Forward(person, "-D") as forward, forward.connect() as conn:
        conn.sendall(b"\x05\x01\x00")
        conn.recv(2)
        conn.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(address) + struct.pack(">H", port))
        reply = conn.recv(10)
        return reply[:2] == b"\x05\x00", answer(conn) if reply else b""


def sshd_log(host, person) -> str:
    """What sshd logged since the workspace last started: the unit's journal of its current
    run (sshd.log is a FIFO that the unit streams there)."""
    unit = f"wormhole@{person.name}"
    run = host.exec("systemctl", "show", "--property=InvocationID", "--value", unit).stdout
    return host.exec("journalctl", "--no-pager", "--quiet", "--output=cat",
                     f"_SYSTEMD_INVOCATION_ID={run.strip()}").stdout


def logged(host, person, line: str) -> bool:
    try:
        wait(lambda: line in sshd_log(host, person), 5, f"sshd logs {line!r}")
    except AssertionError:
        return False
    return True


def denied(target: str) -> str:
    """sshd's log line for a local forward that its permitted destinations refuse."""
    if target.startswith("/"):
        return f"Received request to connect to path {target}, but the request was denied."
    address, port = target.rsplit(":", 1)
    return f"to connect to host {address} port {port}, but the request was denied."


def reaches(person, address: str, port: int) -> bool:
    probe = f"timeout 2 bash -c '</dev/tcp/{address}/{port}' 2>/dev/null && echo open || echo shut"
    return ssh(person.host.ip, person.port, person.key, probe).stdout.strip() == "open"


def bridge_address(host, person) -> str:
    return host.container(person.container)["NetworkSettings"]["Networks"]["wormhole"]["Gateway"]


def workspace_address(host, person) -> str:
    return host.container(person.container)["NetworkSettings"]["Networks"]["wormhole"][
        "IPAddress"]


@pytest.mark.parametrize(("target", "expected"), [
    ("127.0.0.1:8000", b"ann\n"),
    ("localhost:8000", b"ann\n"),
    ("127.0.0.1:22", b"SSH-2.0-OpenSSH_9.2"),
])
def test_loopback_reaches_servers_on_the_workspaces_own_loopback(ann, target, expected):
    assert through(ann, target).startswith(expected)


def test_loopback_dynamic_forwards_reach_the_loopback_and_nothing_else(host, ann, outside):
    assert through_socks(ann, "127.0.0.1", 8000) == (True, b"ann\n")
    assert reaches(ann, OUTSIDE, 8080)
    assert through_socks(ann, OUTSIDE, 8080) == (False, b"")
    assert logged(host, ann, denied(f"{OUTSIDE}:8080"))


@pytest.mark.parametrize("where", ["ben's workspace", "the host", "outside"])
def test_loopback_refuses_every_destination_beyond_the_workspace(host, ann, ben, outside,
                                                                 where):
    address, port = {"ben's workspace": (workspace_address(host, ben), 8000),
                     "the host": (bridge_address(host, ann), HOST_PORT),
                     "outside": (OUTSIDE, 8080)}[where]
    # ann's shell reaches the host and the outside (no firewall in this module); sshd
    # still refuses to be the one that connects.
    assert reaches(ann, address, port) == (where != "ben's workspace")
    assert through(ann, f"{address}:{port}") == b""
    assert logged(host, ann, denied(f"{address}:{port}"))


def test_loopback_refuses_unix_socket_forwards_in_this_openssh(host, ann):
    """OpenSSH 9.2 checks a Unix-socket target against the same PermitOpen and permitopen
    lists as a TCP one, and no entry can name a path, so with TCP limited to the loopback
    no socket forward passes, not even to a socket ann owns."""
    assert through(ann, "/tmp/ann.sock") == b""
    assert logged(host, ann, denied("/tmp/ann.sock"))


@pytest.mark.parametrize(("options", "refusal"), [
    (["-R", "0:127.0.0.1:22"], "remote port forwarding failed"),
    (["-R", "/tmp/remote.sock:127.0.0.1:22"], "remote port forwarding failed"),
    (["-o", "Tunnel=point-to-point", "-w", "any:any"], "tunnel forwarding failed"),
])
def test_loopback_still_refuses_remote_forwards_and_tunnels(ann, options, refusal):
    done = run_inside(ann, "echo reached", "-o", "ExitOnForwardFailure=yes",
                      "-o", "LogLevel=INFO", *options)
    assert done.returncode == 255 and refusal in done.stderr.lower()
    assert "reached" not in done.stdout


def test_loopback_still_passes_neither_agent_nor_x11(ann):
    agent = subprocess.run(["ssh-agent", "-s"], capture_output=True, text=True).stdout
    sock = agent.split("SSH_AUTH_SOCK=")[1].split(";")[0]
    pid = agent.split("SSH_AGENT_PID=")[1].split(";")[0]
    try:
        done = run_inside(ann, 'echo "display=$DISPLAY agent=$SSH_AUTH_SOCK"', "-A", "-X",
                          env={"DISPLAY": ":99", "SSH_AUTH_SOCK": sock})
    finally:
        subprocess.run(["ssh-agent", "-k"], env={**os.environ, "SSH_AGENT_PID": pid},
                       capture_output=True)
    assert done.stdout.strip() == "display= agent="


def test_none_refuses_every_forward(host, ben):
    assert through(ben, "127.0.0.1:8000") == b""
    assert through(ben, "/tmp/ben.sock") == b""
    assert through_socks(ben, "127.0.0.1", 8000) == (False, b"")
    log = "refused {} port forward: originator 127.0.0.1 port "
    assert logged(host, ben, log.format("local")) and logged(host, ben, log.format("streamlocal"))
    done = run_inside(ben, "echo reached", "-o", "ExitOnForwardFailure=yes",
                      "-R", "0:127.0.0.1:22")
    assert done.returncode == 255 and "reached" not in done.stdout


def test_a_switch_takes_effect_at_the_next_login_without_a_restart(host, ann):
    started = host.container(ann.container)["State"]["StartedAt"]
    with Forward(ann, "-L", "127.0.0.1:8000") as held:
        assert held.ask() == b"ann\n"
        host.unitgen("set", "ann", "--forwarding", "none")
        try:
            assert through(ann, "127.0.0.1:8000") == b""
            # A session that logged in before the switch keeps what it was given.
            assert held.ask() == b"ann\n"
        finally:
            host.unitgen("set", "ann", "--forwarding", "loopback")
    assert through(ann, "127.0.0.1:8000") == b"ann\n"
    assert host.container(ann.container)["State"]["StartedAt"] == started


def test_ssh_audit_finds_no_failure_and_no_warning_with_loopback(host, ann):
    done = subprocess.run([str(AUDIT), "--no-colors", "-p", str(ann.port), host.ip],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout
    assert "[fail]" not in done.stdout and "[warn]" not in done.stdout


@pytest.fixture
def hardware_only(host):
    host.sh(f"sed -i '/^key_policy/d' {CONFIG} && echo 'key_policy = \"hardware\"' >> {CONFIG}")
    yield
    host.sh(f"sed -i '/^key_policy/d' {CONFIG}")
    host.unitgen("remove", "hana", "--no-backup", "--purge", "--yes", check=False)


def test_a_hardware_host_refuses_other_keys_and_takes_security_keys(host, ann, ben, make_key,
                                                                    hardware_only):
    host.put("/root/hana.pub", make_key("hana").with_suffix(".pub").read_text())
    host.put("/root/hana-sk.pub", (TESTS / "fixtures/sk-ed25519.pub").read_text())
    before = host.sh("unitgen list --json; ls -R /etc/wormhole").stdout
    refused = host.unitgen("add", "hana", "/root/hana.pub", check=False)
    assert refused.returncode == 2 and "hardware" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert host.sh("unitgen list --json; ls -R /etc/wormhole").stdout == before
    host.unitgen("add", "hana", "/root/hana-sk.pub")
    keys = json.loads(host.unitgen("show", "hana", "--json").stdout)["keys"]
    assert [key["type"] for key in keys] == ["sk-ssh-ed25519@openssh.com"]
    doctor = host.unitgen("doctor", check=False).stdout
    flagged = [line for line in doctor.splitlines() if "hardware" in line]
    assert flagged and "ann" in " ".join(flagged) and "ben" in " ".join(flagged)
    assert "hana" not in " ".join(flagged)


def test_sshd_sees_each_clients_own_address(host, ann):
    """With the engine's userland proxy off, a published port keeps the client's address;
    a client on the host itself arrives from the bridge's address (the engine masquerades
    it), as does every on-demand connection through systemd's socket proxy."""
    seen = ssh(host.ip, ann.port, ann.key, "echo $SSH_CONNECTION").stdout.split()[0]
    gateway = subprocess.run(["docker", "inspect", "--format",
                              "{{.NetworkSettings.Gateway}}", host.name],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert seen == gateway
    host.put("/root/ann-key", ann.key.read_text())
    host.exec("chmod", "600", "/root/ann-key")
    local = host.exec("ssh", "-p", str(ann.port), "-i", "/root/ann-key", "-o", "BatchMode=yes",
                      "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                      "-o", "LogLevel=ERROR", "user@127.0.0.1", "echo $SSH_CONNECTION").stdout
    assert local.split()[0] == bridge_address(host, ann)


def test_one_source_flooding_does_not_stop_another_from_logging_in(host, ann, outside):
    """The flood comes from the outside namespace straight to ann's sshd, each worker
    holding a silent connection open, the login from this machine: two sources."""
    host.put("/root/flood", (TESTS / "lab/flood.py").read_text())
    flood = subprocess.Popen(["docker", "exec", host.name, "ip", "netns", "exec", "access",
                              "python3", "/root/flood", "hold", workspace_address(host, ann),
                              "22", "20", "100"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(3)
        for _ in range(5):
            started = time.monotonic()
            assert ssh(host.ip, ann.port, ann.key, "true").returncode == 0
            assert time.monotonic() - started < 2
    finally:
        made = int(flood.communicate(timeout=60)[0])
    assert made > 100
    # PerSourceMaxStartups: the source held 10 unauthenticated connections, no more.
    assert logged(host, ann, f"drop connection #10 from [{OUTSIDE}]")
