"""Fixtures shared by the fast tests."""

import itertools
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

KeyGen = Callable[..., Path]


def _maker(folder: Path) -> KeyGen:
    counter = itertools.count()

    def make(kind: str = "ed25519", bits: int | None = None, comment: str = "test@unitgen") -> Path:
        """A real key pair made by ssh-keygen; returns the private key, KEY.pub is beside it."""
        folder.mkdir(parents=True, exist_ok=True)
        key = folder / f"id_{kind}_{bits or 'default'}_{next(counter)}"
        command = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(key)]
        if bits is not None:
            command += ["-b", str(bits)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            if kind == "dsa":
                pytest.skip(f"this ssh-keygen no longer makes DSA keys: {done.stderr.strip()}")
            raise AssertionError(f"ssh-keygen failed: {done.stderr.strip()}")
        return key

    return make


@pytest.fixture
def keygen(tmp_path: Path) -> KeyGen:
    """keygen("ed25519"), keygen("rsa", bits=1024), keygen("ecdsa", bits=384), keygen("dsa")."""
    return _maker(tmp_path / "keys")


@pytest.fixture(scope="session")
def session_keygen(tmp_path_factory: pytest.TempPathFactory) -> KeyGen:
    """keygen for session-scoped fixtures."""
    return _maker(tmp_path_factory.mktemp("session-keys"))
