"""Commands that change who is on the host and what they may do: add, remove, keys, set."""

import json

import typer

from unitgen import inputs, ops, options, plan, status, validate
from unitgen.admission import Wanted
from unitgen.cli.app import Target, app, key_app
from unitgen.errors import BadInput, Failed, one_line
from unitgen.model import Person
from unitgen.names import unit


@app.command()
def add(ctx: typer.Context, user: options.NewUser = None, keyfiles: options.KeyFiles = None,
        memory: options.Memory = None, disk: options.Disk = None, port: options.Port = None,
        image: options.Image = None,
        on_demand: options.OnDemand = None, idle_stop: options.IdleStop = None,
        forwarding: options.Forwarding = None, key_policy: options.KeyPolicy = None,
        source: options.PeopleFile = None, start: options.Start = False) -> None:
    """Register a person (or everyone in a people file) and install their workspace,
    enabled at boot. On demand, systemd listens on the port at once and starts the
    workspace at the first connection.

    Example: unitgen add alice alice.pub && systemctl start wormhole@alice
    """
    target: Target = ctx.obj
    if start and not target.edge.live:
        raise BadInput("--start needs the live host; leave out --root to start workspaces")
    if source is not None:
        if user or keyfiles or memory or disk or port or image or on_demand is not None \
                or idle_stop or forwarding or key_policy:
            raise BadInput("--from takes names, keys and limits from the file; give no others")
        found = inputs.people_file(source)
        wanted = found.wanted
        if not wanted:
            raise BadInput(f"{source} holds no [people.NAME] table; give one for each person")
    elif not user or not keyfiles:
        raise BadInput("give USER and KEYFILE..., or --from FILE; see: unitgen add --help")
    else:
        wanted = [Wanted(Person(
            validate.name(user), port or 0, inputs.read_keys(keyfiles),
            memory=validate.memory(memory) if memory is not None else None,
            disk=validate.disk(disk) if disk is not None else None,
            image=validate.image(image) if image is not None else None,
            on_demand=on_demand,
            idle_stop=validate.timespan(idle_stop) if idle_stop is not None else None,
            forwarding=validate.forwarding(forwarding) if forwarding else None,
            key_policy=validate.key_policy(key_policy) if key_policy else None))]
    added = ops.add(target.root, target.edge, wanted, start)
    for note in added.notes:
        typer.echo(f"note: {note}", err=True)
    if source is not None and found.host_tables:  # only once the file was taken
        typer.echo(f"note: the [defaults], [firewall] and [admin] tables of "
                   f"{one_line(str(source))} are for unitgen ignition; this host's settings "
                   "are in /etc/wormhole/wormhole.toml", err=True)
    for shared in added.shared_keys:
        typer.echo(f"warning: {shared}", err=True)
    if added.disks_later:
        typer.echo(f"warning: not every disk could be made now ({added.disks_later}); each "
                   "workspace makes its own at its start", err=True)
    for missing in added.missing_images:
        how = "unitgen image build --backup" if missing == target.host().settings.backup_image \
            else "unitgen image build"
        typer.echo(f"warning: image {missing} is not on this host; build it with: {how}",
                   err=True)
    for w in added.workspaces:
        mode = ", on demand (idle stop " + w.idle_stop + ")" if w.on_demand else ""
        home = "on volumes, no disk cap" if w.on_volumes else f"disk {w.disk}"
        typer.echo(f"added {w.name}: port {w.port}, memory {w.memory}, {home}{mode}, "
                   "enabled at boot")
    always = [w for w in added.workspaces if not w.on_demand]
    if not start and len(added.workspaces) == 1 and always:
        typer.echo(f"start it with: systemctl start {unit(always[0].name)}")
    elif not start and always:
        typer.echo("start them with: systemctl start wormhole.target")


@app.command()
def remove(ctx: typer.Context, user: options.User, purge: options.Purge = False,
           yes: options.Yes = False, no_backup: options.NoFinalBackup = False) -> None:
    """Take a final backup, then stop and disable a workspace and remove its configuration;
    the data stays unless --purge --yes.

    Example: unitgen remove alice    (or: unitgen remove alice --purge --yes)
    """
    target: Target = ctx.obj
    validate.name(user)
    if purge and not yes:
        raise BadInput(f"--purge deletes {user}'s home and host key for good; "
                       "add --yes to confirm")
    if purge and not target.edge.live:
        raise BadInput("--purge deletes volumes in the engine; leave out --root to purge")
    ops.remove(target.root, target.edge, user, purge, not no_backup, typer.echo)


@key_app.command("add")
def key_add(ctx: typer.Context, user: options.User, keyfiles: options.KeyFiles) -> None:
    """Give a person more keys; their next login may use them.

    Example: unitgen key add alice new-laptop.pub
    """
    new = inputs.read_keys(keyfiles)
    target: Target = ctx.obj
    ops.change(target.root, target.edge, validate.name(user), lambda p: plan.add_keys(p, new))
    for key in new:
        typer.echo(f"added {key.fingerprint} to {user}")


@key_app.command("remove")
def key_remove(ctx: typer.Context, user: options.User,
               fingerprint: options.Fingerprint) -> None:
    """Take a key away from a person; their next login with it is refused.

    Example: unitgen key remove alice SHA256:abc...
    """
    target: Target = ctx.obj
    ops.change(target.root, target.edge, validate.name(user),
               lambda p: plan.remove_key(p, fingerprint))
    typer.echo(f"removed {fingerprint} from {user}")


@key_app.command("list")
def key_list(ctx: typer.Context, user: options.User, as_json: options.Json = False) -> None:
    """A person's keys with their fingerprints.

    Example: unitgen key list alice --json
    """
    keys = [k.summary for k in ctx.obj.host().need(validate.name(user)).keys]
    if as_json:
        typer.echo(json.dumps(keys, indent=2))
        return
    for key in keys:
        typer.echo(status.key_line(key))


@app.command("set")
def set_limits(ctx: typer.Context, user: options.User, memory: options.NewMemory = None,
               disk: options.NewDisk = None, cpus: options.Cpus = None,
               pids: options.Pids = None, on_demand: options.OnDemand = None,
               idle_stop: options.IdleStop = None, forwarding: options.Forwarding = None,
               key_policy: options.KeyPolicy = None, restart: options.Restart = False) -> None:
    """Change a person's limits, which apply at the workspace's next start (now with
    --restart), or the way it runs, which changes at once. A larger disk grows online where
    the host allows it; a smaller one only when the data fits, with a restart.

    Example: unitgen set alice --memory 1G --disk 20G --cpus 1.5 --pids 512 --restart
    """
    target: Target = ctx.obj
    if restart:
        target.live("--restart")
    limits = validate.limits(memory=memory, disk=disk, cpus=cpus, pids=pids,
                             on_demand=on_demand, idle_stop=idle_stop, forwarding=forwarding,
                             key_policy=key_policy)
    said = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in limits.items())
    applied = ops.set_limits(target.root, target.edge, validate.name(user), limits, restart)
    if not applied.answers:
        raise Failed(f"{user} did not answer after the restart with {said}; see: "
                     f"journalctl -u {unit(user)}")
    others = {k: v for k, v in limits.items() if k != "disk"}
    at_login = set(others) <= {"forwarding", "key_policy"}
    if others:
        said = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in others.items())
        typer.echo(f"{user}: {said}, " + ("restarted" if restart else "from the next login"
                                          if at_login else
                                          "from the next start (or: unitgen set ... --restart)"))
    if applied.disk:
        typer.echo(f"{user}: {applied.disk}")
    for line in status.holdouts(target.host(), {user}):
        typer.echo(f"warning: {line}", err=True)
