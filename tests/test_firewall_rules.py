"""The rendered rulesets load into the real iptables (`iptables-restore --test`) in every
egress mode, and the strong firewall for internal hosts too."""

import shutil
import subprocess
from dataclasses import replace

import pytest
import tomli_w

from tests.helpers import described
from tests.test_golden import GOLDEN, case, generated
from unitgen.model import Host
from unitgen.render import render, render_internal

pytestmark = pytest.mark.skipif(shutil.which("iptables-restore") is None,
                                reason="iptables is not installed")
BASE = generated(GOLDEN / "firewall-allowlist.toml")
BASE_HOST = described(tomli_w.dumps(case(GOLDEN / "firewall-allowlist.toml")[1]), "people.toml")


def loads(tool: str, text: str) -> subprocess.CompletedProcess:
    return subprocess.run([f"{tool}-restore", "--test", "--noflush"], input=text,
                          capture_output=True, text=True)


@pytest.mark.parametrize("egress", ["open", "allowlist", "none"])
def test_every_egress_mode_loads(egress):
    source = tomli_w.dumps(case(GOLDEN / "firewall-allowlist.toml")[1])
    host = described(source, "people.toml")
    files = render(replace(host, settings=replace(host.settings, egress=egress)))
    for tool, name in (("iptables", "rules.v4"), ("ip6tables", "rules.v6")):
        done = loads(tool, files[f"/etc/wormhole/firewall/{name}"].text)
        assert (done.returncode, done.stderr) == (0, ""), (tool, egress)


@pytest.mark.parametrize(("address", "tool"), [("10.1.2.3", "iptables"),
                                               ("2001:db8::5", "ip6tables")])
def test_the_internal_ruleset_loads(address, tool):
    done = loads(tool, render_internal(address)["rules"])
    assert (done.returncode, done.stderr) == (0, "")


def test_a_broken_ruleset_is_caught():
    text = BASE["/etc/wormhole/firewall/rules.v4"].text.replace("--dport 2022", "--dport x")
    assert loads("iptables", text).returncode != 0


def test_no_firewall_files_without_the_firewall():
    assert not [path for path in render(Host()) if "firewall" in path]


def test_allow_from_lets_only_those_sources_reach_the_workspaces_and_loads():
    """A fleet's hosts: ssh to the workspace ports (in, and forwarded to the containers) from
    the gateway only, by IP version; the admin's ports stay open to everyone."""
    host = replace(BASE_HOST, settings=replace(BASE_HOST.settings,
                                               allow_from=("10.0.0.1", "2001:db8::/64")))
    files = render(host)
    v4 = files["/etc/wormhole/firewall/rules.v4"].text
    v6 = files["/etc/wormhole/firewall/rules.v6"].text
    assert "-A WORMHOLE-INPUT -s 10.0.0.1/32 -p tcp --dport 2200 -j RETURN" in v4
    assert "-A WORMHOLE-FORWARD -s 10.0.0.1/32 -o wormhole0 -p tcp --dport 22 -j RETURN" in v4
    assert "-A WORMHOLE-INPUT -p tcp --dport 2022 -j RETURN" in v4  # an admin port
    assert [line for line in v4.splitlines() if "--dport 2200" in line or
            ("--dport 22 -j RETURN" in line and "FORWARD" in line)] == [
        "-A WORMHOLE-INPUT -s 10.0.0.1/32 -p tcp --dport 2200 -j RETURN",
        "-A WORMHOLE-FORWARD -s 10.0.0.1/32 -o wormhole0 -p tcp --dport 22 -j RETURN"]
    assert "-s 2001:db8::/64 -p tcp --dport 2200" in v6 and "10.0.0.1" not in v6
    for tool, text in (("iptables", v4), ("ip6tables", v6)):
        done = loads(tool, text)
        assert (done.returncode, done.stderr) == (0, ""), tool


def test_allow_from_of_one_version_shuts_the_other():
    host = replace(BASE_HOST, settings=replace(BASE_HOST.settings, allow_from=("10.0.0.1",)))
    v6 = render(host)["/etc/wormhole/firewall/rules.v6"].text
    assert "--dport 2200" not in v6
    assert "-A WORMHOLE-FORWARD -o wormhole0 -p tcp --dport 22" not in v6


def test_without_allow_from_everyone_reaches_the_workspaces():
    v4 = render(BASE_HOST)["/etc/wormhole/firewall/rules.v4"].text
    assert "-A WORMHOLE-INPUT -p tcp --dport 2200 -j RETURN" in v4
    assert "-A WORMHOLE-FORWARD -o wormhole0 -p tcp --dport 22 -j RETURN" in v4
