"""render(host): the description of a host -> every file it needs, as path -> Artifact. Pure."""

import ipaddress
import re
from functools import cache

from unitgen import guard, names, registry, resources, restic, timespec, validate
from unitgen.errors import BadInput
from unitgen.model import Artifact, Host, Person, Workspace
from unitgen.names import BRIDGE, CONFIG, DISKS, DOCKER, ETC, FIREWALL, UNIT_DIR

UNIT_SUFFIXES = (".service", ".target", ".slice", ".timer", ".socket")
WANTED_BY = re.compile(r"^WantedBy=(.+)$", re.MULTILINE)


@cache
def environment(folder: str = "units", kind: str | None = None):  # -> jinja2.Environment
    """The templates of units/ (or butane/), strict about every name they use; with a `kind`,
    every value written goes through the guard for that kind of file. Jinja2 is imported
    here, so that commands that render nothing start without it."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(
        loader=FileSystemLoader(resources.folder(folder)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=(lambda value: guard.check(value, kind)) if kind else None,
    )


def _template(name: str, host: Host, **context: object) -> str:
    return environment("units", guard.kind_of(name)).get_template(name).render(
        source=f"units/{name}", etc=ETC, docker=DOCKER, disks=DISKS, settings=host.settings,
        **context)


def restic_script() -> str:
    """The script every restic container runs, as installed in ETC/libexec: unitgen's own
    runs pass it inline, so that they need nothing installed (a host being recovered)."""
    return _template("libexec/wormhole-restic", Host(), **backup_context(Host()))


def _destination(name: str) -> tuple[str, int]:
    """Where a template from units/ is installed: units in the unit folder, scripts in
    ETC/libexec, anything else in ETC under the template's group."""
    group, _, base = name.rpartition("/")
    if base.endswith(UNIT_SUFFIXES):
        return f"{UNIT_DIR}/{base}", 0o644
    if group.endswith("libexec"):
        return f"{ETC}/libexec/{base}", 0o755
    return f"{ETC}/{group}/{base}", 0o644


def _installed(host: Host) -> list[str]:
    """The templates the host installs: the base ones, and the firewall's when it is on.
    (*.j2 are per-person files; internal/ is for other hosts.)"""
    folders = {"", "libexec"} | ({"firewall", "firewall/libexec"} if host.firewall else set())
    return sorted(n for n in environment().list_templates()
                  if n.rpartition("/")[0] in folders and not n.endswith(".j2"))


def _links(path: str, text: str, instances: list[str]) -> dict[str, Artifact]:
    """What `systemctl enable` would link, for the unit or for each person's instance."""
    base = path.rpartition("/")[2]
    units = [base.replace("@.", f"@{i}.") for i in instances] if "@." in base else [base]
    return {f"{UNIT_DIR}/{target}.wants/{unit}": Artifact(link=path)
            for target in " ".join(WANTED_BY.findall(text)).split() for unit in units}


def _context(host: Host) -> dict:
    allow = [validate.egress_rule(rule, "") for rule in host.settings.egress_allow]
    # Who may open ssh to the workspaces: everyone (None), or these networks by IP version.
    sources = [ipaddress.ip_network(s, strict=False) for s in host.settings.allow_from]
    return {"bridge": BRIDGE, "ports": [p.port for p in host.people], "allow": allow,
            "sources": {4: [str(n) for n in sources if n.version == 4],
                        6: [str(n) for n in sources if n.version == 6]} if sources else None,
            **backup_context(host)}


def backup_context(host: Host) -> dict:
    """What the backup units and their script name: the repository, the secrets, the
    cache and the flags every restic container gets."""
    backups = restic.backups(host.settings)
    return {"backups": backups, "shown": backups.location, "secrets": names.SECRETS,
            "mounted": restic.MOUNTED, "cache": names.RESTIC_CACHE, "hold": names.HOLD,
            "repository_file": names.REPOSITORY_FILE, "repository_unit": names.REPOSITORY_UNIT,
            "backup_bridge": names.BACKUP_BRIDGE, "restic_env": restic.ENVIRONMENT,
            "check_parts": restic.CHECK_PARTS, "writable_secrets": False}


def render(host: Host, checked: bool = True) -> dict[str, Artifact]:
    """Every file of the host, once its people can run side by side (unless not `checked`:
    a registry edited by hand may hold a conflict that doctor shows, or that a change is
    about to remove)."""
    if checked:
        validate.host(host)
    files = {CONFIG: Artifact(registry.dump_settings(host.settings), keep=True)}
    if host.firewall:
        files[FIREWALL] = Artifact(registry.dump_firewall(True))
    everyone = [w.name for w in host.workspaces()]
    always = [w.name for w in host.workspaces() if not w.on_demand]
    for name in _installed(host):
        text = _template(name, host, **_context(host))
        path, mode = _destination(name)
        files[path] = Artifact(text, mode=mode)
        files.update(_links(path, text, always if name == "wormhole@.service" else everyone))
    previous = host.predecessors()
    for person, w in zip(host.people, host.workspaces(), strict=True):
        files.update(_person(host, person, w, previous.get(w.name)))
    files[names.CLI_ENV] = Artifact(_template("cli.env.j2", host))
    return files


def _person(host: Host, person: Person, w: Workspace, previous: str | None
            ) -> dict[str, Artifact]:
    """The files of one person: registry, env file, keys, and their units' drop-ins."""
    files = {
        names.person_file(w.name): Artifact(registry.dump_person(person)),
        names.env_file(w.name): Artifact(_template("person.env.j2", host, w=w)),
        names.keys_file(w.name): Artifact(_template("authorized_keys.j2", host, w=w)),
    }
    dropins = names.dropins(names.unit(w.name))
    if previous is not None:
        order = Artifact(_template("start-order.conf.j2", host, w=w, previous=previous))
        files[f"{dropins}/10-start-order.conf"] = order
        files[f"{names.dropins(names.data_unit(w.name))}/10-start-order.conf"] = order
    if w.on_demand:
        files[f"{dropins}/20-on-demand.conf"] = Artifact(
            _template("on-demand.conf.j2", host, w=w))
        socket = f"{UNIT_DIR}/{names.proxy_socket(w.name)}"
        files[socket] = Artifact(_template("proxy.socket.j2", host, w=w))
        files.update(_links(socket, files[socket].text, []))
    else:
        socket = f"{UNIT_DIR}/{names.hold_socket(w.name)}"
        files[socket] = Artifact(_template("hold.socket.j2", host, w=w))
        files.update(_links(socket, files[socket].text, []))
    return files


def paths(host: Host) -> set[str]:
    """The paths render gives the host."""
    return set(render(host, checked=False))


# Where the wrapper goes: Fedora CoreOS links /usr/local into /var; Flatcar's /usr is read-only.
WRAPPER = {"fcos": "/usr/local/bin/unitgen", "flatcar": "/opt/bin/unitgen"}
# The maintenance window, as the variant's update agent reads it: Zincati, or locksmith.
UPDATES = {"fcos": ("zincati.toml", "/etc/zincati/config.d/55-wormhole-updates.toml"),
           "flatcar": ("update.conf", "/etc/flatcar/update.conf")}


def _host_template(name: str, **context: object) -> str:
    """A template of butane/host/: a file of the provisioned host outside unitgen's folders."""
    return environment("butane", "script").get_template(f"host/{name}").render(
        source=f"butane/host/{name}", etc=ETC, docker=DOCKER, **context)


def wrapper(host: Host) -> str:
    """The sh script that runs unitgen from its CLI image on a host without Python."""
    return _host_template("unitgen", cli_image=host.settings.cli_image)


def render_provisioned(host: Host, variant: str = "fcos") -> dict[str, Artifact]:
    """Everything a fresh host needs: the host's files; the engine settings the units rely on
    (butane/files/); the wrapper and the unit that fetches the CLI image; and the update
    agent's maintenance window when the config has one."""
    files = render(host)
    butane = environment("butane")
    for name in butane.list_templates():
        if name.startswith("files/"):
            files[name.removeprefix("files")] = Artifact(butane.get_template(name).render())
    files[WRAPPER[variant]] = Artifact(wrapper(host), mode=0o755)
    unit = f"{UNIT_DIR}/wormhole-cli.service"
    files[unit] = Artifact(_host_template("wormhole-cli.service"))
    files.update(_links(unit, files[unit].text, []))
    files.update(_window(host, variant))
    return dict(sorted(files.items()))


def _window(host: Host, variant: str) -> dict[str, Artifact]:
    found = timespec.window(host.settings.update_window)
    if found is None:
        return {}
    days, start, minutes = found
    if variant == "flatcar" and len(days) > 1:
        raise BadInput(f"update_window {host.settings.update_window!r}: Flatcar's reboot window "
                       "has one day or every day (*); give one of them")
    if variant == "fcos" and not days:
        days = timespec.DAYS
    name, path = UPDATES[variant]
    return {path: Artifact(_host_template(name, days=days, start=start, minutes=minutes))}


def render_internal(address: str) -> dict[str, str]:
    """The strong firewall of an internal host that only `address` may reach: the ruleset
    and the unit that loads it, by name."""
    tool = "ip6tables" if ":" in address else "iptables"
    rules = f"{ETC}/internal-firewall.rules"
    return {name.rpartition("/")[2]: _template(name, Host(), address=address, tool=tool,
                                               rules=rules)
            for name in ("internal/rules", "internal/wormhole-internal-firewall.service")}
