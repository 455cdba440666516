"""The last check of every value a template writes into a generated file. Validation gives
the friendly message first; this guard is the defence behind it: whatever reached rendering,
a value never becomes an extra line, key, rule or shell command. Each kind of file has its
own rule, applied by the template environment to every {{ value }} it writes. Pure."""

import re
import unicodedata

from unitgen.errors import BREAKS, BadInput

# What may stand in a value, by the kind of file it is written into. Units and env files are
# read by systemd; scripts by sh; rulesets by iptables-restore; key files by sshd.
SAFE = {
    "unit": re.compile(r"[^\"'\\]*"),  # no quoting or escapes; % and $ are escaped below
    "env": re.compile(r"[A-Za-z0-9._:/@+,=\[\] -]*"),
    "script": re.compile(r"[A-Za-z0-9._:/@+,=-]*"),
    "rules": re.compile(r"[A-Za-z0-9._:/]*"),
    "keys": re.compile(r".*", re.DOTALL),
}


def _breaks(text: str) -> bool:
    return any(unicodedata.category(c) in BREAKS for c in text)


def check(value: object, kind: str) -> str:
    """The value as it may be written into a file of `kind`; BadInput when it may not."""
    text = "" if value is None else str(value)
    if _breaks(text):
        raise BadInput(f"{text[:60]!r} holds a line break or a control character, which no "
                       f"{kind} file may hold; fix the value that gave it")
    if not SAFE[kind].fullmatch(text) or (kind != "unit" and text.startswith("-")):
        raise BadInput(f"{text[:60]!r} holds characters a {kind} file must not be given "
                       "there; fix the value that gave it")
    if kind == "unit":  # literal to systemd: no specifier, no variable
        return text.replace("%", "%%").replace("$", "$$")
    return text


def kind_of(template: str) -> str:
    """Which kind of file a template in units/ writes."""
    folder, _, base = template.rpartition("/")
    if folder.endswith("libexec"):
        return "script"
    if base.startswith("rules"):
        return "rules"
    if base.endswith(".env.j2"):
        return "env"
    return {"authorized_keys.j2": "keys"}.get(base, "unit")
