"""People files of fleets for the fast tests: hosts, a gateway, and people with keys of their
own (well-formed ed25519 public keys made from the name, no ssh-keygen needed)."""

import base64
import hashlib
import struct

from unitgen import fleet
from unitgen.placement import Locked
from unitgen.registry import read_people_file

WHERE = "people.toml"


def key(name: str) -> str:
    """A well-formed ssh-ed25519 public key line, the same for the same name."""
    point = hashlib.sha256(name.encode()).digest()
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + point
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {name}@laptop"


def text(hosts: dict[str, int], people: list[str], gateway: str = "10.0.0.1",
         extra: dict[str, str] | None = None, head: str = "") -> str:
    """A fleet's people file: hosts by name with a people capacity (addresses 10.0.0.11...),
    the gateway, and each person with their key (plus `extra` lines per person)."""
    lines = [head, "[admin]", f'keys = ["{key("admin")}"]', "", "[gateway]",
             f'address = "{gateway}"']
    for n, (name, capacity) in enumerate(hosts.items(), 11):
        lines += ["", f"[hosts.{name}]", f'address = "10.0.0.{n}"', f"people = {capacity}"]
    for name in people:
        lines += ["", f"[people.{name}]", f'keys = ["{key(name)}"]']
        if extra and name in extra:
            lines.append(extra[name])
    return "\n".join(lines) + "\n"


def compiled(source: str, lock: dict[str, Locked] | None = None, rebalance: bool = False):
    return fleet.compile_fleet(read_people_file(source, WHERE), lock or {}, rebalance, WHERE)


NAMES = ["alice", "bob", "carol", "dave", "erin", "frank"]
