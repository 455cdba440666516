"""The provisioning sinks: a host's files as an Ignition config or a Butane config. Pure."""

import base64
import json

from unitgen.errors import BadInput
from unitgen.model import Admin, Artifact

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


def ignition(files: dict[str, Artifact], admin: Admin, spec: str) -> str:
    """The Ignition config (JSON) that writes every file and link and the admin's login."""
    butane_version(spec, "fcos")
    entries = sorted(files.items())
    config = {
        "ignition": {"version": spec},
        "passwd": {"users": [{"name": admin.user,
                              "sshAuthorizedKeys": [key.line for key in admin.keys]}]},
        "storage": {
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
           people: int) -> str:
    """The same config as a Butane config (YAML), for admins who keep Butane sources."""
    from unitgen.render import environment

    templates = environment("butane")
    templates.filters["block"] = yaml_block
    return templates.get_template("config.bu.j2").render(
        files=sorted(files.items()), admin=admin, variant=variant,
        version=butane_version(spec, variant), people=people)
