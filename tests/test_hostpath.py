"""unitgen from its CLI image: host paths under the mount, the host's own programs."""

import subprocess
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unitgen import hostpath, journal, systemctl
from unitgen.errors import Failed
from unitgen.files import Root

NSENTER = ["nsenter", "--target", "1", "--mount", "--uts", "--ipc", "--net", "--pid", "--"]
segments = st.lists(st.text("abcxyz-_.", min_size=1).filter(lambda s: s not in (".", "..")),
                    max_size=4)


@pytest.fixture
def in_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNITGEN_HOST", "/host")


def test_on_the_host_itself_nothing_is_mapped(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("UNITGEN_HOST", raising=False)
    assert hostpath.inside("/etc/wormhole") == Path("/etc/wormhole")
    assert hostpath.outside("/host/etc") == Path("/host/etc")
    assert hostpath.command(["systemctl", "start", "x"]) == ["systemctl", "start", "x"]
    assert hostpath.live_root() == Path("/")
    assert Root(Path("/")).live


def test_absolute_host_paths_are_read_under_the_mount(in_image):
    assert hostpath.inside("/home/core/carol.pub") == Path("/host/home/core/carol.pub")
    assert hostpath.inside("/") == Path("/host")
    assert hostpath.inside("carol.pub") == Path("carol.pub")
    assert hostpath.inside("/host/etc") == Path("/host/etc")


def test_paths_under_the_mount_go_back_to_host_paths(in_image):
    assert hostpath.outside("/host/var/lib/wormhole/backups/ann") == \
        Path("/var/lib/wormhole/backups/ann")
    assert hostpath.outside("/host") == Path("/")
    assert hostpath.outside("/hostile/x") == Path("/hostile/x")
    assert hostpath.outside("/tmp/x") == Path("/tmp/x")


@given(segments)
def test_a_host_path_survives_the_round_trip(parts: list[str]):
    with mock.patch.dict("os.environ", {"UNITGEN_HOST": "/host"}):
        path = Path("/", *parts)
        assert hostpath.outside(hostpath.inside(path)) == path


def test_an_empty_or_root_variable_means_the_host_itself(monkeypatch: pytest.MonkeyPatch):
    for value in ("", "/", "host"):
        monkeypatch.setenv("UNITGEN_HOST", value)
        assert hostpath.mount() is None
        assert hostpath.inside("/etc") == Path("/etc")


def test_the_live_root_is_the_mount(in_image):
    assert Root(Path("/")).path == Path("/host")
    assert Root(Path("/")).live
    assert Root(Path("/tmp/x")).path == Path("/host/tmp/x")
    assert not Root(Path("/tmp/x")).live


def test_systemctl_runs_the_hosts_own_in_pid_1s_namespaces(tmp_path, monkeypatch):
    (tmp_path / "run/systemd/system").mkdir(parents=True)
    monkeypatch.setenv("UNITGEN_HOST", str(tmp_path))
    done = subprocess.CompletedProcess([], 0, stdout="", stderr="")
    with mock.patch.object(subprocess, "run", return_value=done) as run:
        systemctl.start("wormhole@carol.service")
    assert run.call_args.args[0] == [*NSENTER, "systemctl", "start", "wormhole@carol.service"]


def test_systemctl_says_no_systemd_when_the_host_has_none(tmp_path, monkeypatch):
    monkeypatch.setenv("UNITGEN_HOST", str(tmp_path))
    with mock.patch.object(subprocess, "run") as run, pytest.raises(Failed, match="systemd"):
        systemctl.check()
    run.assert_not_called()


def test_journalctl_runs_the_hosts_own(in_image):
    done = subprocess.CompletedProcess([], 0, stdout="", stderr="")
    with mock.patch.object(subprocess, "run", return_value=done) as run:
        assert journal.last_logins() == {}
    assert run.call_args.args[0][:len(NSENTER) + 1] == [*NSENTER, "journalctl"]
