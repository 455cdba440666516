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
