"""The workspace as a sandbox: what its user tries over ssh with the real OpenSSH client,
and what the host keeps out of their reach."""

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.lab.host import ssh, ssh_args

AUDIT = Path(__file__).parents[2] / ".venv/bin/ssh-audit"


@pytest.fixture(scope="module")
def rae(add):
    person = add("rae")
    assert person.login().returncode == 0
    return person


def inside(person, command: str, *options: str, env: dict | None = None):
    args = ssh_args(person.host.ip, person.port, person.key)
    return subprocess.run([*args[:-1], *options, args[-1], command], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def test_ssh_audit_finds_no_failure_and_no_warning(host, rae):
    done = subprocess.run([str(AUDIT), "--no-colors", "-p", str(rae.port), host.ip],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout
    assert "[fail]" not in done.stdout and "[warn]" not in done.stdout


@pytest.mark.parametrize(("options", "refusal"), [
    (["-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:22"],
     "remote port forwarding failed"),
    (["-o", "ExitOnForwardFailure=yes", "-o", "Tunnel=point-to-point", "-w", "any:any"],
     "forwarding failed"),
])
def test_remote_forwards_and_tunnels_are_refused(rae, options, refusal):
    done = inside(rae, "echo reached", *options)
    assert done.returncode == 255 and refusal in done.stderr.lower()
    assert "reached" not in done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def through_local_forward(rae, option: str, handshake: bytes) -> bytes:
    """Open a local (-L) or dynamic (-D) forward, send `handshake` through it, return the
    answer that comes back."""
    port = free_port()
    spec = f"127.0.0.1:{port}:127.0.0.1:22" if option == "-L" else f"127.0.0.1:{port}"
    session = subprocess.Popen([*ssh_args(rae.host.ip, rae.port, rae.key)[:-1], "-N", option,
                                spec, ssh_args(rae.host.ip, rae.port, rae.key)[-1]],
                               stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(50):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                    conn.sendall(handshake)
                    time.sleep(1)
                    return conn.recv(256)
            except ConnectionRefusedError:
                time.sleep(0.2)
        raise AssertionError("the local forward never listened")
    finally:
        session.terminate()
        session.wait(timeout=10)


def test_local_forwards_reach_nothing(rae):
    assert not through_local_forward(rae, "-L", b"").startswith(b"SSH-2.0")


def test_dynamic_forwards_reach_nothing(rae):
    # SOCKS5: no authentication, then CONNECT 127.0.0.1:22. A refused channel gets no
    # success reply (0x05 0x00) from the client.
    answer = through_local_forward(rae, "-D", b"\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01"
                                   b"\x00\x16")
    assert answer[2:4] != b"\x05\x00"


def test_x11_agent_and_foreign_environment_are_not_passed(rae):
    agent = subprocess.run(["ssh-agent", "-s"], capture_output=True, text=True).stdout
    sock = agent.split("SSH_AUTH_SOCK=")[1].split(";")[0]
    done = inside(rae, 'echo "display=$DISPLAY agent=$SSH_AUTH_SOCK lang=$LANG foo=$FOO"',
                  "-X", "-A", "-o", "SendEnv=LANG FOO",
                  env={"DISPLAY": ":99", "SSH_AUTH_SOCK": sock, "LANG": "C.UTF-8", "FOO": "bar"})
    subprocess.run(["ssh-agent", "-k"], env={**os.environ, "SSH_AGENT_PID": agent.split(
        "SSH_AGENT_PID=")[1].split(";")[0]}, capture_output=True)
    assert done.stdout.strip() == "display= agent= lang=C.UTF-8 foo="


def test_the_user_cannot_become_root(rae):
    done = inside(rae, "command -v sudo; su -c id root </dev/null; echo su=$?; "
                  "find / -xdev -perm /6000 -type f 2>/dev/null | wc -l; "
                  "grep -E '^(CapEff|CapPrm|NoNewPrivs)' /proc/self/status")
    lines = done.stdout.split()
    assert "su=1" in lines and "/usr/bin/sudo" not in lines
    assert lines[lines.index("su=1") + 1] == "0"
    fields = dict(zip(lines[-6::2], lines[-5::2], strict=True))
    assert fields == {"CapPrm:": "0000000000000000", "CapEff:": "0000000000000000",
                      "NoNewPrivs:": "1"}


def test_the_root_filesystem_is_read_only_but_home_and_temp_are_not(rae):
    done = inside(rae, "for d in /usr /etc /var/lib ~ /tmp /var/tmp; do "
                  "touch $d/probe 2>/dev/null && echo $d=rw || echo $d=ro; done")
    assert done.stdout.split() == ["/usr=ro", "/etc=ro", "/var/lib=ro", "/home/user=rw",
                                   "/tmp=rw", "/var/tmp=rw"]


def test_no_engine_socket_and_nothing_of_other_workspaces(rae, add):
    sam = add("sam")
    ssh(sam.host.ip, sam.port, sam.key, "echo sams-secret > ~/secret; sleep 30 &")
    done = inside(rae, "ls -a /var/run/docker.sock /run/docker.sock 2>&1 | grep -c 'No such'; "
                  "ls /home; echo $(ps -eo user= | sort -u); "
                  "grep -rs sams-secret / --exclude-dir=proc --exclude-dir=sys | wc -l")
    lines = done.stdout.splitlines()
    assert lines[0] == "2" and lines[1] == "user" and lines[-1] == "0"
    assert set(lines[2].split()) <= {"root", "user", "sshd"}


def test_a_fork_bomb_and_a_memory_hog_stay_in_their_workspace(host, rae, add):
    tom = add("tom")
    assert tom.login().returncode == 0
    bombs = subprocess.Popen([*ssh_args(host.ip, rae.port, rae.key),
                              "head -c 600M /dev/zero | tail & bomb() { bomb | bomb & }; bomb"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(5)
        pids = host.container(rae.container)["State"]["Pid"]
        assert pids
        for _ in range(3):
            started = time.monotonic()
            assert ssh(host.ip, tom.port, tom.key, "true").returncode == 0
            assert time.monotonic() - started < 2
            started = time.monotonic()
            assert host.exec("systemctl", "is-system-running", check=False).stdout.strip() in (
                "running", "degraded")
            assert host.exec("docker", "info", "--format", "{{.ID}}").returncode == 0
            assert time.monotonic() - started < 5
        tasks = host.exec("systemctl", "show", "--property=TasksCurrent",
                          f"docker-{host.container(rae.container)['Id']}.scope").stdout
        assert 900 < int(tasks.split("=")[1]) <= 1024
    finally:
        bombs.kill()
        host.exec("systemctl", "restart", rae.unit)
    assert rae.login().returncode == 0
