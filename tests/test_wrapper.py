"""The sh wrapper that runs unitgen from its CLI image, run here against a fake docker
that prints its arguments one per line and exits with the status it is told."""

import os
import subprocess
from pathlib import Path

import pytest

from unitgen import render
from unitgen.model import Host, Settings

FAKE_DOCKER = """#!/bin/sh
for arg in "$@"; do printf '%s\\n' "$arg"; done
echo "to stderr" >&2
exit "${FAKE_STATUS:-0}"
"""


@pytest.fixture
def wrapper(tmp_path: Path) -> Path:
    (tmp_path / "bin").mkdir()
    docker = tmp_path / "bin/docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    script = tmp_path / "unitgen"
    host = Host(Settings(cli_image="registry.example.com/team/unitgen-cli:1"))
    script.write_text(render.wrapper(host))
    script.chmod(0o755)
    return script


def run(wrapper: Path, *args: str, status: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{wrapper.parent}/bin:/usr/bin:/bin",
           "FAKE_STATUS": str(status)}
    return subprocess.run(["sh", str(wrapper), *args], capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL, cwd=wrapper.parent)


def test_arguments_reach_unitgen_unchanged_after_the_image(wrapper: Path):
    args = ["add", "carol", "my key.pub", "--memory", "1G", "$HOME", "'quoted'", "*", ""]
    argv = run(wrapper, *args).stdout.split("\n")[:-1]
    image = argv.index("registry.example.com/team/unitgen-cli:1")
    assert argv[image + 1:] == args
    assert argv[:3] == ["run", "--rm", "-i"]


def test_no_terminal_when_stdin_is_not_one(wrapper: Path):
    argv = run(wrapper, "list").stdout.split("\n")
    assert "-t" not in argv and "-it" not in argv


def test_the_host_is_mounted_and_named_and_the_working_directory_is_under_it(wrapper: Path):
    argv = run(wrapper, "list").stdout.split("\n")
    assert "/:/host:rslave" in argv
    assert "UNITGEN_HOST=/host" in argv
    assert argv[argv.index("--workdir") + 1] == f"/host{wrapper.parent.resolve()}"
    for flag in ("--pid", "--network", "--cgroupns"):
        assert argv[argv.index(flag) + 1] == "host"


def test_exit_status_and_stderr_pass_through(wrapper: Path):
    done = run(wrapper, "show", "nobody", status=2)
    assert done.returncode == 2
    assert done.stderr == "to stderr\n"


def test_the_script_is_posix_sh(wrapper: Path):
    assert wrapper.read_text().startswith("#!/bin/sh\n")
    assert subprocess.run(["dash", "-n", str(wrapper)]).returncode == 0


def test_a_terminal_only_when_stdin_and_stdout_are_one(wrapper: Path, tmp_path: Path):
    import pty

    primary, secondary = pty.openpty()
    try:
        env = {**os.environ, "PATH": f"{wrapper.parent}/bin:/usr/bin:/bin"}
        with open(tmp_path / "out", "w") as out:
            subprocess.run(["sh", str(wrapper), "list"], stdin=secondary, stdout=out, env=env)
        piped = (tmp_path / "out").read_text().split("\n")
        subprocess.run(["sh", str(wrapper), "list"], stdin=secondary, stdout=secondary,
                       stderr=subprocess.DEVNULL, env=env)
        on_terminal = os.read(primary, 65536).decode().split("\r\n")
    finally:
        os.close(primary)
        os.close(secondary)
    assert "-t" not in piped
    assert "-t" in on_terminal
