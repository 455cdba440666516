"""render(host): the description of a host -> every file it needs, as path -> Artifact. Pure."""

import re
from functools import cache

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from unitgen import registry, resources
from unitgen.model import CONFIG, DOCKER, ETC, PEOPLE, UNIT_DIR, Artifact, Host

UNIT_SUFFIXES = (".service", ".target", ".slice", ".timer", ".socket")
WANTED_BY = re.compile(r"^WantedBy=(.+)$", re.MULTILINE)


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(resources.folder("units")),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _template(name: str, host: Host, **context: object) -> str:
    return _environment().get_template(name).render(
        source=f"units/{name}", etc=ETC, docker=DOCKER, settings=host.settings, **context)


def templates(kind: str) -> list[str]:
    """The unit templates ('units'), or the helper scripts the units run ('libexec')."""
    names = _environment().list_templates()
    if kind == "libexec":
        return sorted(n for n in names if n.startswith("libexec/"))
    return sorted(n for n in names if n.endswith(UNIT_SUFFIXES))


def render(host: Host) -> dict[str, Artifact]:
    files = {CONFIG: Artifact(registry.dump_settings(host.settings), keep=True)}
    for name in templates("libexec"):
        files[f"{ETC}/{name}"] = Artifact(_template(name, host), mode=0o755)
    instances = [w.name for w in host.workspaces()]
    for name in templates("units"):
        text = _template(name, host)
        files[f"{UNIT_DIR}/{name}"] = Artifact(text)
        # What `systemctl enable` would link, for the unit or for each person's instance.
        for target in " ".join(WANTED_BY.findall(text)).split():
            for unit in ([name.replace("@.", f"@{i}.") for i in instances] if "@." in name
                         else [name]):
                files[f"{UNIT_DIR}/{target}.wants/{unit}"] = Artifact(link=f"{UNIT_DIR}/{name}")
    for person, w in zip(host.people, host.workspaces(), strict=True):
        files[f"{PEOPLE}/{w.name}.toml"] = Artifact(registry.dump_person(person))
        files[f"{ETC}/env/{w.name}.env"] = Artifact(_template("person.env.j2", host, w=w))
        keys = _template("authorized_keys.j2", host, w=w)
        files[f"{ETC}/keys/{w.name}/authorized_keys"] = Artifact(keys)
    return files
