"""Per-person access policies: which forwards sshd allows (the options written before each
key in authorized_keys, units/authorized_keys.j2) and which keys may log in. Pure."""

from collections.abc import Iterable

from unitgen.errors import BadInput
from unitgen.keys import PublicKey

FORWARDING = ("none", "loopback")
KEY_POLICIES = ("any", "hardware")
# FIDO security keys: the private key never leaves the device.
HARDWARE_TYPES = ("sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")
HARDWARE_HINT = "make one on the device with: ssh-keygen -t ed25519-sk"


def is_hardware(key: PublicKey) -> bool:
    return key.type in HARDWARE_TYPES


def not_hardware(keys: Iterable[PublicKey]) -> list[PublicKey]:
    return [key for key in keys if not is_hardware(key)]


def check_key_policy(keys: Iterable[PublicKey], policy: str, where: str = "") -> None:
    """Refuse, in one line naming the policy, the first key the policy does not allow."""
    if policy not in KEY_POLICIES:
        raise BadInput(f"{where or 'key_policy'}: '{policy}' is not a key policy; "
                       f"give one of: {', '.join(KEY_POLICIES)}")
    refused = not_hardware(keys) if policy == "hardware" else []
    if refused:
        at = f"{where}: " if where else ""
        key = refused[0]
        raise BadInput(f"{at}key {key.fingerprint} ({key.type}) is not a hardware key and "
                       f'key_policy is "hardware"; {HARDWARE_HINT}')


def holdouts(people: Iterable[tuple[str, str, Iterable[PublicKey]]]) -> dict[str, list[str]]:
    """Who would be locked out by their key policy: name -> fingerprints of their keys that
    the policy does not allow, for each (name, policy, keys) with such keys. For doctor,
    and for the message of a switch to "hardware"."""
    found = {}
    for name, policy, keys in people:
        if policy == "hardware" and (refused := not_hardware(keys)):
            found[name] = [key.fingerprint for key in refused]
    return found
