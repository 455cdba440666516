"""SSH public keys: parsing, checking and fingerprints. Pure: text in, data out."""

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from unitgen.errors import BadInput

MIN_RSA_BITS = 2048
ECDSA_CURVES = {
    "ecdsa-sha2-nistp256": "nistp256",
    "ecdsa-sha2-nistp384": "nistp384",
    "ecdsa-sha2-nistp521": "nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com": "nistp256",
}
ED25519_TYPES = ("ssh-ed25519", "sk-ssh-ed25519@openssh.com")
ACCEPTED_TYPES = (*ED25519_TYPES, *ECDSA_CURVES, "ssh-rsa")
NEW_KEY_HINT = "make one with: ssh-keygen -t ed25519"
WHOLE_LINE = "copy the whole line from the .pub file"


@dataclass(frozen=True)
class PublicKey:
    type: str
    data: str
    comment: str = ""

    @property
    def line(self) -> str:
        return " ".join(part for part in (self.type, self.data, self.comment) if part)

    @property
    def summary(self) -> dict[str, str]:
        """The key as list, show and key list describe it."""
        return {"type": self.type, "fingerprint": self.fingerprint, "comment": self.comment}

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(base64.b64decode(self.data)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _fields(blob: bytes) -> list[bytes]:
    """Split an SSH wire-format blob into its length-prefixed fields."""
    fields, offset = [], 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise ValueError("truncated")
        (size,) = struct.unpack(">I", blob[offset : offset + 4])
        offset += 4
        if offset + size > len(blob):
            raise ValueError("truncated")
        fields.append(blob[offset : offset + size])
        offset += size
    return fields


def _check_blob(key_type: str, blob: bytes) -> str | None:
    """The problem with a decoded key, or None when it is sound."""
    try:
        fields = _fields(blob)
    except ValueError:
        return "the key data is truncated"
    if not fields or fields[0] != key_type.encode():
        return f"the key data does not hold a {key_type} key"
    body = fields[1:]
    if key_type in ED25519_TYPES:
        expected = 2 if key_type.startswith("sk-") else 1
        sound = len(body) == expected and len(body[0]) == 32
    elif key_type in ECDSA_CURVES:
        expected = 3 if key_type.startswith("sk-") else 2
        sound = len(body) == expected and body[0] == ECDSA_CURVES[key_type].encode()
    else:
        if len(body) != 2:
            return "the key data is not an RSA key"
        bits = int.from_bytes(body[1], "big").bit_length()
        if bits < MIN_RSA_BITS:
            return f"RSA key of {bits} bits is too weak (at least {MIN_RSA_BITS}); {NEW_KEY_HINT}"
        sound = True
    return None if sound else f"the key data is not a valid {key_type} key"


def parse_key(line: str) -> PublicKey:
    """One public key line, `TYPE BASE64 [COMMENT]`; raises ValueError naming the problem."""
    if not line.isprintable():
        raise ValueError("the key line holds a line break or a control character; "
                         "give one key per line")
    parts = line.split(None, 2)
    if not parts:
        raise ValueError("the line is empty; give a public key line")
    key_type = parts[0]
    if key_type == "ssh-dss":
        raise ValueError(f"DSA keys are weak and no longer accepted by OpenSSH; {NEW_KEY_HINT}")
    if key_type not in ACCEPTED_TYPES:
        if any(p in ACCEPTED_TYPES for p in line.split()[1:]):
            raise ValueError("key options are not supported; give the plain public key line")
        if key_type.endswith("-cert-v01@openssh.com"):
            raise ValueError("certificates are not supported; give the plain public key")
        accepted = ", ".join(ACCEPTED_TYPES)
        raise ValueError(f"'{key_type[:40]}' is not a supported key type; give one of: "
                         f"{accepted}")
    if len(parts) < 2:
        raise ValueError(f"the key data is missing after the key type; {WHOLE_LINE}")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the key data is not valid base64; {WHOLE_LINE}") from None
    problem = _check_blob(key_type, blob)
    if problem:
        raise ValueError(problem if "; " in problem else f"{problem}; {WHOLE_LINE}")
    return PublicKey(key_type, parts[1], parts[2].strip() if len(parts) > 2 else "")


def parse_keys(text: str, source: str) -> list[PublicKey]:
    """Every key in a key file's text; blank lines and # comments are skipped."""
    if "PRIVATE KEY-----" in text or text.startswith("PuTTY-User-Key-File"):
        raise BadInput(
            f"{source} is a private key; give the public key instead "
            "(the .pub file, or: ssh-keygen -y -f KEY > KEY.pub)"
        )
    found = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            found.append(parse_key(line))
        except ValueError as problem:
            raise BadInput(f"{source}:{number}: {problem}") from None
    if not found:
        raise BadInput(f"{source} holds no public key; give a file such as ~/.ssh/id_ed25519.pub")
    return found


def check_unique(keys: list[PublicKey], where: str = "") -> None:
    seen: set[str] = set()
    for key in keys:
        if key.data in seen:
            at = f"{where}: " if where else ""
            raise BadInput(f"{at}key {key.fingerprint} is given twice; give each key once")
        seen.add(key.data)
