"""The command line: parse, call the core and the edges, print."""

import json
import os
import re
import socket
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from unitgen import archive, ops, registry, validate
from unitgen import keys as sshkeys
from unitgen.errors import BadInput, Failed, UnitgenError
from unitgen.files import Root
from unitgen.model import Admin, Host, Person
from unitgen.ops import load, unit

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="SSH developer workspaces, one container per person, supervised by systemd.",
)
image_app = typer.Typer(no_args_is_help=True, help="The workspace image.")
app.add_typer(image_app, name="image")
key_app = typer.Typer(no_args_is_help=True, help="A person's ssh keys, changed without a "
                      "restart: the workspace reads them at each login.")
app.add_typer(key_app, name="key")

RootOption = Annotated[
    Path, typer.Option("--root", help="Read and write every file under DIR; "
                       "other than / it only writes files.", metavar="DIR")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Names = Annotated[list[str] | None, typer.Argument(help="People's names.", metavar="[USER]...")]
All = Annotated[bool, typer.Option("--all", help="Everyone.")]
User = Annotated[str, typer.Argument(help="The person's name.")]
OnDemandOption = Annotated[bool | None, typer.Option(
    "--on-demand/--always-on", help="Start the workspace at the first ssh connection and "
    "stop it when idle, or keep it running [default: on_demand in the config]",
    show_default=False)]
IdleOption = Annotated[str | None, typer.Option(
    "--idle-stop", help="On demand: stop after this long with no connection, e.g. 1h or "
    "30min [default: idle_stop in the config]")]


@app.callback()
def options(ctx: typer.Context, root: RootOption = Path("/")) -> None:
    ctx.obj = Root(root)


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as problem:
        reason = getattr(problem, "strerror", None) or "not a text file"
        raise BadInput(f"cannot read {what} {path}: {reason}; give the path of a "
                       f"{what}") from None


def read_keys(paths: list[Path]) -> tuple[sshkeys.PublicKey, ...]:
    found = []
    for path in paths:
        found += sshkeys.parse_keys(read_text(path, "public key file"), str(path))
    sshkeys.check_unique(found)
    return tuple(found)


def states(root: Root, names: list[str]) -> dict[str, str]:
    """Each workspace's unit state, from one systemctl call; 'unknown' off the live root."""
    if not root.live:
        return dict.fromkeys(names, "unknown")
    from unitgen import systemctl

    loaded = systemctl.states(unit("*"))
    return {n: "{} ({})".format(*loaded[unit(n)]) for n in names}


def describe(host: Host, person: Person, state: str) -> dict:
    w = host.workspace(person)
    address = host.settings.host or socket.gethostname()
    return {
        "user": w.name,
        "port": w.port,
        "state": state,
        "memory": w.memory,
        "pids": w.pids,
        "image": w.image,
        "keys": [{"type": k.type, "fingerprint": k.fingerprint, "comment": k.comment}
                 for k in w.keys],
        "ssh": f"ssh -p {w.port} user@{address}",
    }


@app.command()
def add(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Argument(help="The person's name: lowercase, "
                                               "e.g. alice.", show_default=False)] = None,
    keyfiles: Annotated[list[Path] | None, typer.Argument(help="Public key files (.pub).",
                                                          metavar="KEYFILE...")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory cap, e.g. 512M or 1G "
                                               "[default: from the config]")] = None,
    port: Annotated[int | None, typer.Option(help="Host port [default: the lowest free "
                                             "one in the range]")] = None,
    image: Annotated[str | None, typer.Option(help="Image [default: from the config]")] = None,
    on_demand: OnDemandOption = None,
    idle_stop: IdleOption = None,
    source: Annotated[Path | None, typer.Option("--from", help="A people file: add "
                                                "everyone in it at once.")] = None,
    start: Annotated[bool, typer.Option("--start", help="Also start the workspace.")] = False,
) -> None:
    """Register a person (or everyone in a people file) and install their workspace,
    enabled at boot. On demand, systemd listens on the port at once and starts the
    workspace at the first connection.

    Example: unitgen add alice alice.pub && systemctl start wormhole@alice
    """
    root: Root = ctx.obj
    if start and not root.live:
        raise BadInput("--start needs the live host; leave out --root to start workspaces")
    if source is not None:
        if user or keyfiles or memory or port or image or on_demand is not None or idle_stop:
            raise BadInput("--from takes names, keys and limits from the file; give no others")
        text = read_text(source, "people file")
        tables = registry.read_people_file(text, str(source))[2]
        if re.search(r"^\s*\[(defaults|firewall|admin)\]", text, re.MULTILINE):
            typer.echo(f"note: the [defaults], [firewall] and [admin] tables of {source} are "
                       "for unitgen ignition; this host's settings are in "
                       "/etc/wormhole/wormhole.toml", err=True)
    elif not user or not keyfiles:
        raise BadInput("give USER and KEYFILE..., or --from FILE; see: unitgen add --help")
    else:
        validate.name(user)
        memory = validate.memory(memory) if memory is not None else None
        image = validate.image(image) if image is not None else None
        idle_stop = validate.timespan(idle_stop) if idle_stop is not None else None
        keys = read_keys(keyfiles)
    busy = ops.busy_ports(root)
    with root.locked():
        before = load(root)
        if source is not None:
            host = registry.place(before, tables, frozenset(busy))
        else:
            host = ops.admit(before, Person(user, port or 0, keys, memory, image,
                                            on_demand=on_demand, idle_stop=idle_stop), busy)
        ops.install(root, host)
    wanted = set(tables) if source is not None else {user}
    added = [host.workspace(p) for p in host.people if p.name in wanted]
    if root.live:
        for missing in ops.activate(added, start):
            typer.echo(f"warning: image {missing} is not on this host; build it with: "
                       "unitgen image build", err=True)
    for w in added:
        mode = ", on demand (idle stop " + w.idle_stop + ")" if w.on_demand else ""
        typer.echo(f"added {w.name}: port {w.port}, memory {w.memory}{mode}, enabled at boot")
    if not start and len(added) == 1 and not added[0].on_demand:
        typer.echo(f"start it with: systemctl start {unit(added[0].name)}")
    elif not start and not all(w.on_demand for w in added):
        typer.echo("start them with: systemctl start wormhole.target")


@app.command()
def remove(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="The person's name.")],
    purge: Annotated[bool, typer.Option("--purge", help="Also delete their home and "
                                        "host key for good.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm --purge.")] = False,
    no_backup: Annotated[bool, typer.Option("--no-backup", help="Skip the final "
                                            "backup.")] = False,
) -> None:
    """Take a final backup, then stop and disable a workspace and remove its configuration;
    the data stays unless --purge --yes.

    Example: unitgen remove alice    (or: unitgen remove alice --purge --yes)
    """
    root: Root = ctx.obj
    validate.name(user)
    if purge and not yes:
        raise BadInput(f"--purge deletes {user}'s home and host key for good; "
                       "add --yes to confirm")
    if purge and not root.live:
        raise BadInput("--purge deletes volumes in the engine; leave out --root to purge")
    with root.locked():
        host = load(root)
        if host.person(user) is None:
            if purge:  # what a remove killed before its purge left behind
                from unitgen import engine

                if gone := engine.remove_volumes(engine.volumes_of(user)):
                    typer.echo(f"{user} was removed already; deleted volumes: {', '.join(gone)}")
                    return
            raise BadInput(f"there is no workspace named {user}; see: unitgen list")
        if root.live:
            from unitgen import systemctl

            if not no_backup:
                final = ops.backup(root, host, [user], lambda _: None)[user]
                typer.echo(f"final backup: {final}")
            systemctl.stop(*ops.all_units(host, user))
        ops.install(root, host.without(user))
    typer.echo(f"removed {user}")
    if purge:
        from unitgen import engine

        gone = engine.remove_volumes(engine.volumes_of(user))
        typer.echo(f"deleted volumes: {', '.join(gone) or 'none were left'}")
    else:
        typer.echo(f"kept {user}'s home and host key; `unitgen add {user} ...` brings them back")


def live(root: Root, command: str) -> None:
    if not root.live:
        raise BadInput(f"{command} needs the engine and systemd; leave out --root")





@app.command()
def backup(ctx: typer.Context, users: Names = None, everyone: All = False) -> None:
    """Back up workspaces now, with the same unit as the timer; print where each archive is.

    Example: unitgen backup alice    (or: unitgen backup --all)
    """
    root: Root = ctx.obj
    live(root, "backup")
    with root.locked(shared=True):
        host = load(root)
    people = ops.select(host, users or [], everyone)
    ops.backup(root, host, [p.name for p in people], typer.echo)


@app.command()
def restore(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="The person's name.")],
    source: Annotated[Path | None, typer.Argument(help="The archive [default: the newest "
                                                  "backup]", metavar="[ARCHIVE]")] = None,
    key: Annotated[list[Path] | None, typer.Option(help="Key file, to restore a person "
                                                   "this host does not know yet.")] = None,
    port: Annotated[int | None, typer.Option(help="Port for a new person.")] = None,
    no_backup: Annotated[bool, typer.Option("--no-backup", help="Skip the backup of the "
                                            "current data first.")] = False,
) -> None:
    """Restore a workspace from a backup onto new volumes, switching over only once it
    answers; on any failure the workspace keeps its data as it was.

    Example: unitgen restore alice    (or: unitgen restore alice ARCHIVE --key alice.pub)
    """
    root: Root = ctx.obj
    live(root, "restore")
    validate.name(user)
    with root.locked():
        host = load(root)
        person = host.person(user)
        if source is None:
            found = archive.complete(ops.backup_folder(root, host, user))
            if not found:
                raise BadInput(f"there is no backup of {user} in "
                               f"{ops.backup_folder(root, host, user)}; give an ARCHIVE")
            source = found[-1]
        archive.verify(source.resolve())
        if person is None:
            if not key:
                raise BadInput(f"{user} is not on this host; give their --key to add them "
                               "with the restored data")
            person = ops.admit(host, Person(user, port or 0, read_keys(key)),
                               ops.busy_ports(root)).person(user)
        elif not no_backup:
            made = ops.backup(root, host, [user], lambda _: None)[user]
            typer.echo(f"backed up the current data first: {made}")
        host = ops.restore(root, host, person, source.resolve(), typer.echo)
    from unitgen import systemctl

    systemctl.start(ops.timer(user))
    typer.echo(f"restored {user} from {source}")


@app.command()
def upgrade(
    ctx: typer.Context,
    users: Names = None,
    everyone: All = False,
    image: Annotated[str | None, typer.Option(help="Move them onto this image.")] = None,
    batch: Annotated[int | None, typer.Option(min=1, help="Workspaces per batch "
                                              "[default: upgrade_batch from the config]")] = None,
) -> None:
    """Recreate containers from their image, batch by batch, checking each answers; a failing
    batch goes back to its previous image. Without names, only install what a newer
    unitgen renders differently and restart what that changed.

    Example: unitgen image build && unitgen upgrade --all
    """
    root: Root = ctx.obj
    live(root, "upgrade")
    image = validate.image(image) if image is not None else None
    with root.locked():
        host = load(root)
        if batch is not None:
            host = Host(replace(host.settings, upgrade_batch=batch), host.people)
        people = ops.select(host, users or [], everyone) if users or everyone else []
        if image is not None and not people:
            raise BadInput("--image needs names or --all; give USER... or --all")
        ops.upgrade(root, host, people, image, typer.echo)


@app.command()
def status(ctx: typer.Context, users: Names = None, as_json: JsonOption = False) -> None:
    """Every workspace (or the named ones) at a glance: unit and container state, uptime,
    memory used and cap, OOM kills, processes, last backup, last login; then totals.

    Example: unitgen status    (or: unitgen status alice --json)
    """
    root: Root = ctx.obj
    live(root, "status")
    from unitgen import status as board

    with root.locked(shared=True):
        host = load(root)
    names = [p.name for p in ops.select(host, users, not users)]
    rows = board.gather(root, host, names)
    if as_json:
        typer.echo(json.dumps({"workspaces": rows, "summary": board.summary(rows)}, indent=2))
        return
    for line in board.table(rows):
        typer.echo(line)


@app.command()
def doctor(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Check the engine, systemd, the generated files, images, ports, the firewall, the
    backup folder and the clock; say how to fix each problem. Exits 1 if any check fails.

    Example: unitgen doctor
    """
    root: Root = ctx.obj
    live(root, "doctor")
    from unitgen import doctor as checks

    with root.locked(shared=True):
        host = load(root)
        found = checks.run(root, host)
    if as_json:
        typer.echo(json.dumps([vars(c) for c in found], indent=2))
    else:
        for c in found:
            fix = f" -> {c.fix}" if c.fix else ""
            typer.echo(f"{c.level.upper():<4} {c.what}: {c.detail}{fix}")
    if any(c.level == "fail" for c in found):
        raise typer.Exit(1)


def change(root: Root, user: str, edit: Callable[[Person], Person]) -> Person:
    """Change one person's record under the lock and install the result."""
    validate.name(user)
    with root.locked():
        host = load(root)
        person = host.person(user)
        if person is None:
            raise BadInput(f"there is no workspace named {user}; see: unitgen list")
        changed = edit(person)
        ops.install(root, host.with_person(changed))
    return changed





@key_app.command("add")
def key_add(ctx: typer.Context, user: User,
            keyfiles: Annotated[list[Path], typer.Argument(metavar="KEYFILE...")]) -> None:
    """Give a person more keys; their next login may use them.

    Example: unitgen key add alice new-laptop.pub
    """
    new = read_keys(keyfiles)

    def edit(person: Person) -> Person:
        held = next((k for k in new if k.data in {old.data for old in person.keys}), None)
        if held is not None:
            raise BadInput(f"{user} has key {held.fingerprint} already; give a new key")
        return replace(person, keys=(*person.keys, *new))

    change(ctx.obj, user, edit)
    for key in new:
        typer.echo(f"added {key.fingerprint} to {user}")


@key_app.command("remove")
def key_remove(ctx: typer.Context, user: User,
               fingerprint: Annotated[str, typer.Argument(help="SHA256:... as key list "
                                                          "shows it.")]) -> None:
    """Take a key away from a person; their next login with it is refused.

    Example: unitgen key remove alice SHA256:abc...
    """
    def edit(person: Person) -> Person:
        kept = tuple(k for k in person.keys if k.fingerprint != fingerprint)
        if len(kept) == len(person.keys):
            raise BadInput(f"{user} has no key {fingerprint}; see: unitgen key list {user}")
        if not kept:
            raise BadInput(f"{fingerprint} is {user}'s last key; add another first")
        return replace(person, keys=kept)

    change(ctx.obj, user, edit)
    typer.echo(f"removed {fingerprint} from {user}")


@key_app.command("list")
def key_list(ctx: typer.Context, user: User, as_json: JsonOption = False) -> None:
    """A person's keys with their fingerprints.

    Example: unitgen key list alice --json
    """
    root: Root = ctx.obj
    validate.name(user)
    with root.locked(shared=True):
        person = load(root).person(user)
    if person is None:
        raise BadInput(f"there is no workspace named {user}; see: unitgen list")
    keys = [{"fingerprint": k.fingerprint, "type": k.type, "comment": k.comment}
            for k in person.keys]
    if as_json:
        typer.echo(json.dumps(keys, indent=2))
    for k in [] if as_json else keys:
        typer.echo(f"{k['fingerprint']} {k['type']} {k['comment']}".rstrip())


@app.command("set")
def set_limits(
    ctx: typer.Context,
    user: User,
    memory: Annotated[str | None, typer.Option(help="Memory cap, e.g. 1G.")] = None,
    cpus: Annotated[float | None, typer.Option(help="CPU cap, e.g. 1.5; 0 for none.")] = None,
    pids: Annotated[int | None, typer.Option(help="Process limit.")] = None,
    on_demand: OnDemandOption = None,
    idle_stop: IdleOption = None,
    restart: Annotated[bool, typer.Option("--restart", help="Apply now: restart the "
                                          "workspace.")] = False,
) -> None:
    """Change a person's limits, which apply at the workspace's next start (now with
    --restart), or the way it runs, which changes at once.

    Example: unitgen set alice --memory 1G --cpus 1.5 --pids 512 --restart
    """
    root: Root = ctx.obj
    if restart:
        live(root, "--restart")
    limits = {key: check(value) for key, value, check in (
        ("memory", memory, validate.memory), ("cpus", cpus, validate.cpus),
        ("pids", pids, validate.pids), ("idle_stop", idle_stop, validate.timespan),
        ("on_demand", on_demand, bool)) if value is not None}
    if not limits:
        raise BadInput("give --memory, --cpus, --pids, --on-demand/--always-on or "
                       "--idle-stop; see: unitgen set --help")
    validate.name(user)
    with root.locked():
        before = load(root)
        if (person := before.person(user)) is None:
            raise BadInput(f"there is no workspace named {user}; see: unitgen list")
        person = replace(person, **limits)
        ops.switch(root, before, before.with_person(person), user)
    said = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in limits.items())
    if restart:
        if ops.restart_and_check(load(root), [person]):
            raise Failed(f"{user} did not answer after the restart with {said}; see: "
                         f"journalctl -u {unit(user)}")
        typer.echo(f"{user}: {said}, restarted")
    else:
        typer.echo(f"{user}: {said}, from the next start (or: unitgen set ... --restart)")


@app.command()
def logs(ctx: typer.Context, user: User,
         follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing new "
                                              "lines.")] = False) -> None:
    """A workspace's journal: its starts and stops and sshd's log of logins.

    Example: unitgen logs alice -f
    """
    root: Root = ctx.obj
    live(root, "logs")
    validate.name(user)
    with root.locked(shared=True):
        if load(root).person(user) is None:
            raise BadInput(f"there is no workspace named {user}; see: unitgen list")
    os.execvp("journalctl", ["journalctl", "--unit", unit(user), *(["--follow"] if follow
                                                                    else ["--no-pager"])])


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """One line per workspace.

    Example: unitgen list --json
    """
    root: Root = ctx.obj
    with root.locked(shared=True):
        host = load(root)
    found = states(root, [p.name for p in host.people])
    rows = [describe(host, p, found[p.name]) for p in host.people]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'USER':<16} {'PORT':>5}  {'STATE':<20} {'MEMORY':>6}  IMAGE")
    for r in rows:
        typer.echo(f"{r['user']:<16} {r['port']:>5}  {r['state']:<20} {r['memory']:>6}  "
                   f"{r['image']}")


@app.command()
def show(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="The person's name.")],
    as_json: JsonOption = False,
) -> None:
    """A workspace's port, state, memory cap, keys and ssh command.

    Example: unitgen show alice
    """
    root: Root = ctx.obj
    validate.name(user)
    with root.locked(shared=True):
        host = load(root)
    person = host.person(user)
    if person is None:
        raise BadInput(f"there is no workspace named {user}; see: unitgen list")
    info = describe(host, person, states(root, [user])[user])
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    for key in ("user", "port", "state", "memory", "pids", "image"):
        typer.echo(f"{key:<8} {info[key]}")
    for k in info["keys"]:
        typer.echo(f"{'key':<8} {k['fingerprint']} {k['type']} {k['comment']}".rstrip())
    typer.echo(f"{'ssh':<8} {info['ssh']}")


@app.command()
def firewall(
    ctx: typer.Context,
    off: Annotated[bool, typer.Option("--off", help="Take the firewall out.")] = False,
    internal: Annotated[bool, typer.Option("--internal", help="Print the strong firewall "
                                           "of an internal host instead.")] = False,
    wormhole_ip: Annotated[str | None, typer.Option(help="With --internal: the workspace "
                                                    "host's address.")] = None,
    output: Annotated[str, typer.Option("--format", help="With --internal: 'rules' "
                                        "(for iptables-restore) or 'unit'.")] = "rules",
) -> None:
    """Install and start the workspace host's firewall, with the egress policy of the config;
    add and remove keep it in step with the ports.

    Example: unitgen firewall    (or: unitgen firewall --internal --wormhole-ip 10.0.0.5)
    """
    if internal:
        if wormhole_ip is None or output not in ("rules", "unit"):
            raise BadInput("--internal needs --wormhole-ip ADDR and --format rules or unit; "
                           "see: unitgen firewall --help")
        from unitgen.render import render_internal

        files = render_internal(validate.address(wormhole_ip, "--wormhole-ip"))
        typer.echo(files["rules" if output == "rules" else
                         "wormhole-internal-firewall.service"], nl=False)
        return
    root: Root = ctx.obj
    with root.locked():
        was = load(root)
        host = replace(was, firewall=not off)
        if root.live:
            from unitgen import systemctl

            systemctl.check()
            if off and was.firewall:
                systemctl.stop(ops.FIREWALL_UNIT)
        ops.install(root, host)
        if root.live and not off:
            systemctl.restart(ops.FIREWALL_UNIT)
    policy = host.settings.egress
    typer.echo("firewall off" if off else f"firewall on: egress {policy}, admin ports "
               f"{', '.join(map(str, host.settings.admin_ports))}, {len(host.people)} "
               "workspace port(s)")


SpecOption = Annotated[str, typer.Option("--spec", help="Ignition spec: 3.3.0 (Fedora CoreOS "
                                         "and Flatcar both accept it), 3.4.0 or 3.5.0.")]
FromOption = Annotated[Path | None, typer.Option("--from", help="A people file "
                                                 "[default: this host's registry]")]
AdminKeyOption = Annotated[list[Path] | None, typer.Option("--admin-key", help="The admin's "
                                                           "public key (repeatable).")]
OutOption = Annotated[Path | None, typer.Option("--out", help="Write to FILE "
                                                "[default: standard output]")]


def provisioning(root: Root, source: Path | None,
                 admin_keys: list[Path] | None) -> tuple[Host, Admin]:
    """The host to provision and its admin, from a people file or the registry."""
    if source is not None:
        host, admin, tables = registry.read_people_file(read_text(source, "people file"),
                                                        str(source))
        host = registry.place(host, tables)
    else:
        with root.locked(shared=True):
            host, admin = load(root), Admin()
    keys = (*admin.keys, *(read_keys(admin_keys) if admin_keys else ()))
    if not keys:
        raise BadInput("the host needs its admin's key; give --admin-key KEYFILE or keys in "
                       "the people file's [admin] table")
    sshkeys.check_unique(list(keys))
    for image in sorted({w.image for w in host.workspaces()} | {host.settings.image}):
        if host.workspace(Person("x", 1, (), image=image)).pull == "never":
            typer.echo(f"warning: image {image} names no registry, so the new host cannot pull "
                       "it; push it to a registry and set image to that reference", err=True)
    return host, replace(admin, keys=keys)


def emit(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
        return
    from unitgen.files import write_atomic

    write_atomic(out.resolve(), text)
    typer.echo(f"wrote {out}", err=True)


@app.command()
def ignition(ctx: typer.Context, source: FromOption = None, admin_key: AdminKeyOption = None,
             spec: SpecOption = "3.3.0", out: OutOption = None) -> None:
    """Write the Ignition config that provisions a fresh host with every workspace, backup
    timer, the firewall and the engine settings, at first boot.

    Example: unitgen ignition --from people.toml --admin-key me.pub --out host.ign
    """
    from unitgen import provision
    from unitgen.render import render_provisioned

    provision.butane_version(spec, "fcos")
    host, admin = provisioning(ctx.obj, source, admin_key)
    emit(provision.ignition(render_provisioned(host), admin, spec), out)


@app.command()
def butane(ctx: typer.Context, source: FromOption = None, admin_key: AdminKeyOption = None,
           variant: Annotated[str, typer.Option(help="fcos or flatcar.")] = "fcos",
           spec: SpecOption = "3.3.0", out: OutOption = None) -> None:
    """Write the same provisioning config as Butane YAML, for fcos or flatcar.

    Example: unitgen butane --variant flatcar --from people.toml --admin-key me.pub
    """
    from unitgen import provision
    from unitgen.render import render_provisioned

    provision.butane_version(spec, variant)
    host, admin = provisioning(ctx.obj, source, admin_key)
    files = render_provisioned(host)
    emit(provision.butane(files, admin, variant, spec, len(host.people)), out)


@image_app.command("build")
def image_build(
    ctx: typer.Context,
    tag: Annotated[str | None, typer.Option(help="Tag to build [default: the configured "
                                            "image]")] = None,
) -> None:
    """Build the workspace image from the image/ folder that ships with unitgen.

    Example: unitgen image build --tag wormhole:2
    """
    root: Root = ctx.obj
    if not root.live:
        raise BadInput("image build talks to the engine; leave out --root")
    from unitgen import engine, resources

    tag = validate.image(tag) if tag else load(root).settings.image
    image_id = engine.build(resources.folder("image"), tag)
    typer.echo(f"built {tag} ({image_id.removeprefix('sha256:')[:12]})")


def main() -> None:
    try:
        status = app(standalone_mode=False)
    except UnitgenError as problem:
        fail(str(problem), problem.exit_code)
    except typer.TyperException as problem:
        message = problem.format_message()
        if "\n" in message:  # a command given no arguments answers with its help
            typer.echo(message)
            sys.exit(0)
        context = getattr(problem, "ctx", None)
        hint = f"; see: {context.command_path} --help" if context else ""
        fail(message.rstrip(".") + hint, problem.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        fail("interrupted", 130)
    sys.exit(status if isinstance(status, int) else 0)


def fail(message: str, status: int) -> None:
    print(f"unitgen: error: {message}", file=sys.stderr)
    sys.exit(status)
