"""The firewall on the real host with real iptables, against listeners the test starts in
network namespaces of its own: who reaches what, in every egress mode, across an engine
restart and while people come and go."""

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.lab.host import ssh, ssh_args

CONFIG = "/etc/wormhole/wormhole.toml"
NETPROBE = Path(__file__).parents[1] / "lab/netprobe.py"
INTERNET = "198.51.100.2"  # a namespace standing in for the internet
METADATA = "169.254.169.254"
SETUP = f"""
set -e
bridge() {{ ip -4 -o addr show wormhole0 | awk '{{print $4}}' | cut -d/ -f1; }}
ip netns add inet
ip link add vinet0 type veth peer name vinet1
ip link set vinet1 netns inet
ip addr add 198.51.100.1/24 dev vinet0 && ip link set vinet0 up
ip netns exec inet sh -c 'ip addr add {INTERNET}/24 dev vinet1 && \
  ip addr add {METADATA}/32 dev vinet1 && ip link set vinet1 up && ip link set lo up && \
  ip route add default via 198.51.100.1'
ip route add {METADATA}/32 via {INTERNET}
quiet='</dev/null >/dev/null 2>&1'
eval "setsid ip netns exec inet python3 /root/netprobe listen 0.0.0.0 80 8080 8081 $quiet &"
eval "setsid python3 /root/netprobe listen $(bridge) 9999 $quiet &"
eval "setsid python3 /root/netprobe listen 0.0.0.0 22 9998 $quiet &"
sleep 1
"""
TEARDOWN = f"""
pkill -f '^python3 /root/netprobe listen' || true
ip route del {METADATA}/32 || true
ip netns del inet || true
"""


@pytest.fixture(scope="module")
def lab(host, add):
    people = add("fwone"), add("fwtwo")  # first: their network brings up the bridge
    host.put("/root/netprobe", NETPROBE.read_text())
    host.sh(SETUP)
    yield people
    host.unitgen("firewall", "--off")
    host.sh(f"sed -i '/^egress/d' {CONFIG}")
    host.sh(TEARDOWN)


def reaches(person, address: str, port: int) -> bool:
    probe = f"timeout 2 bash -c '</dev/tcp/{address}/{port}' 2>/dev/null && echo open || echo shut"
    done = ssh(person.host.ip, person.port, person.key, probe)
    assert done.stdout.strip() in ("open", "shut"), done.stderr
    return done.stdout.strip() == "open"


def from_outside(host, port: int) -> bool:
    done = subprocess.run(["timeout", "2", "bash", "-c", f"</dev/tcp/{host.ip}/{port}"],
                          capture_output=True)
    return done.returncode == 0


def answers(host, one, two) -> dict[str, bool]:
    """Every question the firewall answers, asked from inside workspace `one`, all at once
    (a blocked one waits out its timeout)."""
    network = host.container(two.container)["NetworkSettings"]["Networks"]["wormhole"]
    two_ip, bridge = network["IPAddress"], network["Gateway"]
    questions = {
        "internet:8080": lambda: reaches(one, INTERNET, 8080),
        "internet:8081": lambda: reaches(one, INTERNET, 8081),
        "metadata": lambda: reaches(one, METADATA, 80),
        "other workspace": lambda: reaches(one, two_ip, 22),
        "other workspace via its port": lambda: reaches(one, bridge, two.port),
        "host on the bridge": lambda: reaches(one, bridge, 9999),
        "outside to host 9998": lambda: from_outside(host, 9998),
        "outside to host 22": lambda: from_outside(host, 22),
        "ssh login": lambda: all(p.login(timeout=10).returncode == 0 for p in (one, two)),
    }
    with ThreadPoolExecutor(len(questions)) as pool:
        asked = {name: pool.submit(question) for name, question in questions.items()}
        return {name: future.result() for name, future in asked.items()}


def policy(host, egress: str, allow: list[str] = ()) -> None:
    listed = ", ".join(f'"{a}"' for a in allow)
    host.sh(f"sed -i '/^egress/d' {CONFIG} && printf 'egress = \"{egress}\"\\n"
            f"egress_allow = [{listed}]\\n' >> {CONFIG}")
    host.unitgen("firewall")


BLOCKED_ALWAYS = {"metadata": False, "other workspace": False,
                  "other workspace via its port": False, "host on the bridge": False,
                  "outside to host 9998": False, "outside to host 22": True, "ssh login": True}


def test_without_the_firewall_only_the_workspaces_network_keeps_them_apart(host, lab):
    found = answers(host, *lab)
    assert (found.pop("other workspace"), found.pop("other workspace via its port")) == (
        False, False)
    assert found == dict.fromkeys(found, True)


def test_open_egress_reaches_out_but_never_sideways_or_into_the_host(host, lab):
    policy(host, "open")
    assert answers(host, *lab) == {**BLOCKED_ALWAYS, "internet:8080": True,
                                   "internet:8081": True}


def test_no_egress_blocks_every_new_connection_out(host, lab):
    policy(host, "none")
    assert answers(host, *lab) == {**BLOCKED_ALWAYS, "internet:8080": False,
                                   "internet:8081": False}


ALLOWLIST = {**BLOCKED_ALWAYS, "internet:8080": True, "internet:8081": False}


def test_allowlist_egress_reaches_only_what_is_listed(host, lab):
    policy(host, "allowlist", [f"{INTERNET}/32:8080"])
    assert answers(host, *lab) == ALLOWLIST


def test_the_rules_come_back_after_the_engine_restarts(host, lab):
    host.exec("systemctl", "restart", "docker")
    for person in lab:
        assert person.login(timeout=60).returncode == 0
    assert answers(host, *lab) == ALLOWLIST
    jumps = host.exec("iptables", "-S", "DOCKER-USER").stdout
    assert jumps.count("-j WORMHOLE-FORWARD") == 1


def test_an_upgrade_in_batches_keeps_the_firewall_on(host, lab):
    host.unitgen("upgrade", "--all", "--batch", "2")
    assert host.unit("wormhole-firewall.service", "ActiveState")["ActiveState"] == "active"
    assert host.exec("test", "-f", "/etc/wormhole/firewall/rules.v4", check=False).returncode == 0
    rules = host.exec("iptables", "-S", "WORMHOLE-INPUT").stdout
    assert all(f"--dport {p.port} -j RETURN" in rules for p in lab)
    assert host.exec("iptables", "-S", "DOCKER-USER").stdout.count("-j WORMHOLE-FORWARD") == 1
    assert answers(host, *lab) == ALLOWLIST


def test_add_and_remove_keep_the_rules_in_step_without_dropping_sessions(host, lab, add):
    one = lab[0]
    session = subprocess.Popen([*ssh_args(host.ip, one.port, one.key), "sleep 8; echo alive"],
                               stdout=subprocess.PIPE, text=True)
    three = add("fwthree")
    rules = host.exec("iptables", "-S", "WORMHOLE-INPUT").stdout
    assert f"--dport {three.port} -j RETURN" in rules
    assert three.login().returncode == 0
    host.unitgen("remove", "fwthree", "--no-backup")
    rules = host.exec("iptables", "-S", "WORMHOLE-INPUT").stdout
    assert f"--dport {three.port} -j RETURN" not in rules
    assert session.communicate(timeout=30)[0] == "alive\n"


INTERNAL = """
set -e
ip netns add internal
ip link add vint0 type veth peer name vint1
ip link set vint1 netns internal
ip addr add 192.0.2.1/24 dev vint0 && ip addr add 192.0.2.9/24 dev vint0
ip link set vint0 up
ip netns exec internal sh -c 'ip addr add 192.0.2.2/24 dev vint1 && ip link set vint1 up && \
  ip link set lo up'
setsid ip netns exec internal python3 /root/netprobe listen 0.0.0.0 22 </dev/null >/dev/null 2>&1 &
setsid python3 /root/netprobe listen 192.0.2.1 7777 </dev/null >/dev/null 2>&1 &
sleep 1
"""


def probe(host, address: str, port: int, source: str = "", inside: str = "") -> str:
    netns = ["ip", "netns", "exec", inside] if inside else []
    return host.exec(*netns, "python3", "/root/netprobe", "connect", address, str(port),
                     *([source] if source else [])).stdout.strip()


def test_the_strong_firewall_lets_only_the_workspace_host_in_and_nothing_out(host, lab):
    host.unitgen("firewall", "--off")  # this host plays the workspace host, unfiltered
    host.sh(INTERNAL)
    try:
        def questions() -> list[str]:
            return [probe(host, "192.0.2.2", 22, source="192.0.2.1"),
                    probe(host, "192.0.2.2", 22, source="192.0.2.9"),
                    probe(host, "192.0.2.1", 7777, inside="internal")]

        assert questions() == ["open", "open", "open"]
        rules = host.unitgen("firewall", "--internal", "--wormhole-ip", "192.0.2.1").stdout
        host.exec("ip", "netns", "exec", "internal", "iptables-restore", input=rules)
        assert questions() == ["open", "closed", "closed"]
    finally:
        host.sh("ip netns del internal; ip link del vint0 || true")
