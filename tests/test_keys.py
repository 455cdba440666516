"""unitgen.keys: which public key lines are accepted, which are refused and why."""

import base64
import struct
import subprocess
from pathlib import Path

import pytest

from tests.helpers import assert_message, public
from unitgen.errors import BadInput
from unitgen.keys import PublicKey, check_unique, parse_key, parse_keys

SOURCE = "in.pub"


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _fields(line: str) -> list[bytes]:
    blob, fields = base64.b64decode(line.split()[1]), []
    while blob:
        (size,) = struct.unpack(">I", blob[:4])
        fields.append(blob[4 : 4 + size])
        blob = blob[4 + size :]
    return fields


def _line(*fields: bytes, comment: str = "") -> str:
    data = base64.b64encode(b"".join(_string(f) for f in fields)).decode()
    return " ".join(p for p in (fields[0].decode(), data, comment) if p)


def _pub(keygen, kind: str, bits: int | None = None, comment: str = "test@unitgen") -> str:
    return public(keygen(kind, bits=bits, comment=comment)).read_text().strip()


# Security-key (sk-) keys need hardware to make, so their wire blobs are built by hand
# from the public part of a real key: type, key (or curve + point), application "ssh:".
def sk_ed25519(keygen, comment: str = "") -> str:
    _, point = _fields(_pub(keygen, "ed25519"))
    return _line(b"sk-ssh-ed25519@openssh.com", point, b"ssh:", comment=comment)


def sk_ecdsa(keygen, comment: str = "") -> str:
    _, curve, point = _fields(_pub(keygen, "ecdsa", 256))
    return _line(b"sk-ecdsa-sha2-nistp256@openssh.com", curve, point, b"ssh:", comment=comment)


def generated(kind: str, bits: int | None = None, comment: str = ""):
    return lambda keygen: _pub(keygen, kind, bits, comment)


ACCEPTED = [
    pytest.param(generated("ed25519"), "ssh-ed25519", "", id="ed25519-no-comment"),
    pytest.param(generated("ed25519", comment="alice@laptop"), "ssh-ed25519", "alice@laptop",
                 id="ed25519-comment"),
    pytest.param(generated("ed25519", comment="alice's  work laptop"), "ssh-ed25519",
                 "alice's  work laptop", id="ed25519-comment-spaces"),
    pytest.param(generated("ecdsa", 256, "e256"), "ecdsa-sha2-nistp256", "e256", id="ecdsa-256"),
    pytest.param(generated("ecdsa", 384, "e384"), "ecdsa-sha2-nistp384", "e384", id="ecdsa-384"),
    pytest.param(generated("ecdsa", 521), "ecdsa-sha2-nistp521", "", id="ecdsa-521"),
    pytest.param(generated("rsa", 2048), "ssh-rsa", "", id="rsa-2048"),
    pytest.param(generated("rsa", 4096, "big rsa key"), "ssh-rsa", "big rsa key", id="rsa-4096"),
    pytest.param(sk_ed25519, "sk-ssh-ed25519@openssh.com", "", id="sk-ed25519"),
    pytest.param(lambda kg: sk_ed25519(kg, "yubi key"), "sk-ssh-ed25519@openssh.com",
                 "yubi key", id="sk-ed25519-comment"),
    pytest.param(lambda kg: sk_ecdsa(kg, "yubi"), "sk-ecdsa-sha2-nistp256@openssh.com", "yubi",
                 id="sk-ecdsa"),
]


@pytest.mark.parametrize(("make", "key_type", "comment"), ACCEPTED)
def test_accepted(keygen, make, key_type, comment):
    line = make(keygen)
    [key] = parse_keys(line + "\n", SOURCE)
    assert (key.type, key.comment, key.line) == (key_type, comment, line)
    assert parse_key(line) == key


def test_a_file_of_several_keys_with_comments_blank_lines_and_crlf(keygen):
    first, second = _pub(keygen, "ed25519", comment="one"), _pub(keygen, "ecdsa", 256)
    text = f"# my keys\r\n\r\n{first}\r\n   \r\n  {second}  \r\n# end\r\n"
    assert [k.line for k in parse_keys(text, SOURCE)] == [first, second]


def _ssh_keygen_fingerprint(pub: Path) -> str:
    done = subprocess.run(["ssh-keygen", "-E", "sha256", "-lf", str(pub)],
                          capture_output=True, text=True, check=True)
    return done.stdout.split()[1]


@pytest.mark.parametrize("make", [
    pytest.param(generated("ed25519", comment="c"), id="ed25519"),
    pytest.param(generated("ecdsa", 384), id="ecdsa-384"),
    pytest.param(generated("rsa", 2048, "two words"), id="rsa-2048"),
    pytest.param(sk_ed25519, id="sk-ed25519"),
    pytest.param(sk_ecdsa, id="sk-ecdsa"),
])
def test_fingerprint_matches_ssh_keygen(keygen, tmp_path, make):
    pub = tmp_path / "key.pub"
    pub.write_text(make(keygen) + "\n")
    [key] = parse_keys(pub.read_text(), str(pub))
    fingerprint = _ssh_keygen_fingerprint(pub)
    assert fingerprint.startswith("SHA256:")
    assert key.fingerprint == fingerprint


def _swap_blob(line: str, other: str) -> str:
    """line's type with other's key data."""
    return f"{line.split()[0]} {other.split()[1]}"


def _truncated(line: str) -> str:
    blob = base64.b64decode(line.split()[1])[:-5]
    return f"{line.split()[0]} {base64.b64encode(blob).decode()}"


def _certificate(keygen) -> str:
    ca, key = keygen("ed25519", comment="ca"), keygen("ed25519")
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", "id", "-n", "user", str(public(key))],
                   check=True, capture_output=True)
    return key.with_name(key.name + "-cert.pub").read_text()


REFUSED = [
    # (text maker, line number parse_keys names or None, parts of the message)
    pytest.param(lambda kg: kg("ed25519").read_text(), None,
                 ["is a private key", "give the public key instead", "ssh-keygen -y -f KEY"],
                 id="openssh-private-key"),
    pytest.param(lambda kg: "-----BEGIN RSA PRIVATE KEY-----\nMIIEow==\n"
                 "-----END RSA PRIVATE KEY-----\n", None,
                 ["is a private key", "give the public key instead"], id="pem-private-key"),
    pytest.param(lambda kg: _pub(kg, "dsa"), 1,
                 ["DSA keys are weak", "make one with: ssh-keygen -t ed25519"], id="dsa"),
    pytest.param(lambda kg: _pub(kg, "rsa", 1024), 1,
                 ["RSA key of 1024 bits is too weak (at least 2048)",
                  "make one with: ssh-keygen -t ed25519"], id="rsa-1024"),
    pytest.param(lambda kg: "# mine\n\nssh-ed25519 AAAA!!!!not-base64", 3,
                 ["the key data is not valid base64"], id="bad-base64"),
    pytest.param(lambda kg: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIfAU8D", 1,
                 ["the key data is not valid base64"], id="bad-base64-padding"),
    pytest.param(lambda kg: _truncated(_pub(kg, "ed25519")), 1,
                 ["the key data is truncated"], id="truncated-blob"),
    pytest.param(lambda kg: _swap_blob(_pub(kg, "ed25519"), _pub(kg, "rsa", 2048)), 1,
                 ["the key data does not hold a ssh-ed25519 key"], id="ed25519-type-rsa-blob"),
    pytest.param(lambda kg: _line(b"ssh-ed25519", bytes(31)), 1,
                 ["the key data is not a valid ssh-ed25519 key"], id="ed25519-short-key"),
    pytest.param(lambda kg: _line(b"ecdsa-sha2-nistp256", b"nistp384", b"\x04" + bytes(96)), 1,
                 ["the key data is not a valid ecdsa-sha2-nistp256 key"], id="ecdsa-wrong-curve"),
    pytest.param(lambda kg: "ssh-ed25519", 1,
                 ["the key data is missing after the key type"], id="type-only"),
    pytest.param(lambda kg: "ssh-foo AAAAB3NzaC1yc2E= me", 1,
                 ["'ssh-foo' is not a supported key type", "give one of: ssh-ed25519,"],
                 id="unknown-type"),
    pytest.param(_certificate, 1,
                 ["certificates are not supported", "give the plain public key"],
                 id="certificate"),
    pytest.param(lambda kg: "no-pty " + _pub(kg, "ed25519"), 1,
                 ["key options are not supported", "give the plain public key line"],
                 id="options"),
    pytest.param(lambda kg: 'command="echo hi",no-pty ' + _pub(kg, "ed25519"), 1,
                 ["key options are not supported"], id="options-quoted"),
    pytest.param(lambda kg: "", None,
                 ["holds no public key", "give a file such as ~/.ssh/id_ed25519.pub"],
                 id="empty-file"),
    pytest.param(lambda kg: "# nothing\n\n   # here either\n", None,
                 ["holds no public key"], id="only-comments"),
]


@pytest.mark.parametrize(("make", "line", "parts"), REFUSED)
def test_refused(keygen, make, line, parts):
    with pytest.raises(BadInput) as refused:
        parse_keys(make(keygen), SOURCE)
    message = str(refused.value)
    assert message.startswith(f"{SOURCE}:{line}: " if line else f"{SOURCE} ")
    assert_message(message, *parts)


def test_a_bad_line_after_good_ones_is_named_by_its_number(keygen):
    text = f"{_pub(keygen, 'ed25519')}\n# comment\n{_pub(keygen, 'rsa', 1024)}\n"
    with pytest.raises(BadInput, match=r"^in\.pub:3: RSA key of 1024 bits"):
        parse_keys(text, SOURCE)


def test_check_unique_refuses_a_key_given_twice(keygen):
    line = _pub(keygen, "ed25519", comment="first")
    keys = parse_keys(f"{line}\n{line.rsplit(' ', 1)[0]} second copy\n", SOURCE)
    assert len(keys) == 2
    with pytest.raises(BadInput) as refused:
        check_unique(keys)
    assert_message(str(refused.value), f"key {keys[0].fingerprint} is given twice",
                   "give each key once")


def test_check_unique_accepts_distinct_keys(keygen):
    keys = [parse_key(_pub(keygen, "ed25519")), parse_key(_pub(keygen, "ed25519"))]
    assert check_unique(keys) is None


def test_line_joins_type_data_and_comment():
    assert PublicKey("ssh-ed25519", "AAAA", "a b").line == "ssh-ed25519 AAAA a b"
    assert PublicKey("ssh-ed25519", "AAAA").line == "ssh-ed25519 AAAA"
