"""The provisioning sinks: a host's files as an Ignition config or a Butane config. Pure."""

import base64
import json
from dataclasses import replace

from unitgen import admission, names, restic
from unitgen.errors import BadInput
from unitgen.keys import PublicKey, check_unique
from unitgen.model import Admin, Artifact, Host, pull_policy
from unitgen.registry import PeopleFile
from unitgen.render import environment

# Ignition spec -> the Butane version of each variant that targets it.
SPECS = {
    "3.3.0": {"fcos": "1.4.0", "flatcar": "1.0.0"},
    "3.4.0": {"fcos": "1.5.0", "flatcar": "1.1.0"},
    "3.5.0": {"fcos": "1.6.0"},
}


def butane_version(spec: str, variant: str) -> str:
    if variant not in ("fcos", "flatcar"):
        raise BadInput(f"--variant {variant} is not offered; pick fcos or flatcar")
    version = SPECS.get(spec, {}).get(variant)
    if version is None:
        offered = ", ".join(s for s in SPECS if variant in SPECS[s])
        raise BadInput(f"--spec {spec} is not offered for {variant}; pick one of {offered}")
    return version


def target(people: PeopleFile | None, registered: Host | None,
           admin_keys: tuple[PublicKey, ...]) -> tuple[Host, Admin]:
    """The host to provision and its admin: from a people file, or else this host's registry;
    `admin_keys` join the file's [admin] keys."""
    if people is not None:
        host, admin = admission.admit(people.host, people.wanted), people.admin
    else:
        host, admin = registered, Admin()
    return host, with_keys(admin, admin_keys)


def with_keys(admin: Admin, admin_keys: tuple[PublicKey, ...]) -> Admin:
    """The admin with `admin_keys` joined to their own; a host cannot go without one."""
    keys = (*admin.keys, *admin_keys)
    if not keys:
        raise BadInput("the host needs its admin's key; give --admin-key KEYFILE or keys in "
                       "the people file's [admin] table")
    check_unique(list(keys))
    return replace(admin, keys=keys)


def directories(host: Host) -> dict[str, int]:
    """Folders a fresh host gets before its first backup, root-only: the secrets' (which
    holds nothing unless the admin gave --backup-secrets), restic's cache, and a local
    repository."""
    found = {names.SECRETS: 0o700, names.RESTIC_CACHE: 0o700}
    if restic.backups(host.settings).local:
        found[restic.location(host.settings)] = 0o700
    return found


def unpullable(host: Host) -> list[str]:
    """The images a fresh host cannot pull: those that name no registry."""
    images = {w.image for w in host.workspaces()} | {host.settings.image,
                                                      host.settings.cli_image,
                                                      host.settings.backup_image}
    return sorted(image for image in images if pull_policy(image) == "never")


NOLOGIN = "/usr/sbin/nologin"


def ignition(files: dict[str, Artifact], admin: Admin, spec: str,
             system_users: tuple[str, ...] = (),
             directories: dict[str, int] | None = None) -> str:
    """The Ignition config (JSON) that writes every folder, file and link and the admin's
    login; `system_users` get an account with no shell (the gateway's jump user)."""
    butane_version(spec, "fcos")
    entries = sorted(files.items())
    users = [{"name": admin.user, "sshAuthorizedKeys": [key.line for key in admin.keys]}]
    users += [{"name": name, "system": True, "shell": NOLOGIN} for name in system_users]
    config = {
        "ignition": {"version": spec},
        "passwd": {"users": users},
        "storage": {
            "directories": [{"path": path, "mode": mode, "overwrite": False}
                            for path, mode in sorted((directories or {}).items())],
            "files": [
                {"path": path, "mode": file.mode, "overwrite": True,
                 "contents": {"source": "data:;base64,"
                              + base64.b64encode(file.text.encode()).decode()}}
                for path, file in entries if file.text is not None],
            "links": [{"path": path, "target": file.link, "hard": False, "overwrite": True}
                      for path, file in entries if file.link is not None],
        },
    }
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def _printable(character: str) -> bool:
    """Whether YAML holds the character as it is: its printable set, less a BOM and the
    line separators that YAML 1.1 (libyaml, and Go's yaml that Butane uses) breaks lines at."""
    code = ord(character)
    return (0x20 <= code <= 0x7E or (0xA0 <= code <= 0xD7FF and code not in (0x2028, 0x2029))
            or (0xE000 <= code <= 0xFFFD and code != 0xFEFF) or code >= 0x10000)


def yaml_quoted(text: str) -> str:
    """A YAML double-quoted scalar holding `text` exactly, every other character escaped
    (tojson would write a character beyond U+FFFF as a surrogate pair, which YAML refuses)."""
    def escaped(character: str) -> str:
        code = ord(character)
        if character in '"\\':
            return "\\" + character
        if _printable(character):
            return character
        return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF \
            else f"\\U{code:08x}"

    return '"' + "".join(map(escaped, text)) + '"'


def yaml_block(text: str) -> str:
    """A YAML literal block scalar holding `text` exactly; quoted instead when it holds what
    a block cannot (a character YAML does not print, or a first line that starts blank)."""
    lines = text.removesuffix("\n").split("\n")
    first = next((line for line in lines if line), "")
    if not all(map(_printable, text.replace("\n", "").replace("\t", " "))) or \
            first[:1] in (" ", "\t"):
        return yaml_quoted(text)
    chomp = "+" if text.endswith("\n\n") else "" if text.endswith("\n") else "-"
    return "|" + chomp + "".join(f"\n{' ' * 10}{line}" if line else "\n" for line in lines)


def butane(files: dict[str, Artifact], admin: Admin, variant: str, spec: str,
           people: int, system_users: tuple[str, ...] = (),
           directories: dict[str, int] | None = None) -> str:
    """The same config as a Butane config (YAML), for admins who keep Butane sources."""
    templates = environment("butane")
    templates.filters["block"] = yaml_block
    templates.filters["quoted"] = yaml_quoted
    return templates.get_template("config.bu.j2").render(
        files=sorted(files.items()), directories=sorted((directories or {}).items()),
        admin=admin, variant=variant, version=butane_version(spec, variant), people=people,
        system_users=system_users, nologin=NOLOGIN)
