"""systemctl's list output read into states: the parsing only (the system tests run it)."""

from unittest import mock

from unitgen import systemctl

LISTED = """\
wormhole-proxy@ann.socket loaded active listening Entry to ann's workspace
\u25cf wormhole@bob.service loaded failed failed Workspace of bob
wormhole@cat.service      loaded active running Workspace of cat
"""


def test_states_reads_every_listed_unit_failed_ones_too():
    with mock.patch.object(systemctl, "_run", return_value=LISTED) as run:
        found = systemctl.states("wormhole@*.service", "wormhole-proxy@*.socket")
    assert run.call_args.args[-2:] == ("wormhole@*.service", "wormhole-proxy@*.socket")
    assert found == {"wormhole-proxy@ann.socket": ("active", "listening"),
                     "wormhole@bob.service": ("failed", "failed"),
                     "wormhole@cat.service": ("active", "running")}
    assert "wormhole@dan.service" not in found
    assert found["wormhole@dan.service"] == ("inactive", "dead")
