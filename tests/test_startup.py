"""`unitgen --help` and the read-only commands start without the Docker SDK or Jinja2."""

import subprocess
import sys

import pytest

PROBE = """
import runpy, sys
sys.argv = ["unitgen", *sys.argv[1:]]
try:
    runpy.run_module("unitgen", run_name="__main__")
except SystemExit:
    pass
print(sorted(m for m in ("docker", "jinja2") if m in sys.modules), file=sys.stderr)
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("root")
    key = folder / "ann.pub"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "ann")],
                   check=True)
    subprocess.run([sys.executable, "-m", "unitgen", "--root", folder, "add", "ann", key],
                   check=True, capture_output=True)
    return folder


@pytest.mark.parametrize("args", [["--help"], ["show", "ann"], ["list"], ["key", "list", "ann"],
                                  ["add", "--help"]])
def test_light_commands_import_neither_the_sdk_nor_jinja(root, args):
    done = subprocess.run([sys.executable, "-c", PROBE, "--root", str(root), *args],
                          capture_output=True, text=True)
    assert done.stderr.splitlines()[-1] == "[]"
