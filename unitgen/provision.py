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
    keys = (*admin.keys, *admin_keys)
    if not keys:
        raise BadInput("the host needs its admin's key; give --admin-key KEYFILE or keys in "
                       "the people file's [admin] table")
    check_unique(list(keys))
    return host, replace(admin, keys=keys)


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


def ignition(files: dict[str, Artifact], admin: Admin, spec: str,
             directories: dict[str, int] | None = None) -> str:
    """The Ignition config (JSON) that writes every folder, file and link and the admin's
    login."""
    butane_version(spec, "fcos")
    entries = sorted(files.items())
    config = {
        "ignition": {"version": spec},
        "passwd": {"users": [{"name": admin.user,
                              "sshAuthorizedKeys": [key.line for key in admin.keys]}]},
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


def yaml_block(text: str) -> str:
    """A YAML literal block scalar holding `text` exactly."""
    chomp = "+" if text.endswith("\n\n") else "" if text.endswith("\n") else "-"
    return "|" + chomp + "".join(f"\n{' ' * 10}{line}" if line else "\n"
                                 for line in text.splitlines())


def butane(files: dict[str, Artifact], admin: Admin, variant: str, spec: str,
           people: int, directories: dict[str, int] | None = None) -> str:
    """The same config as a Butane config (YAML), for admins who keep Butane sources."""
    templates = environment("butane")
    templates.filters["block"] = yaml_block
    return templates.get_template("config.bu.j2").render(
        files=sorted(files.items()), directories=sorted((directories or {}).items()),
        admin=admin, variant=variant,
        version=butane_version(spec, variant), people=people)
