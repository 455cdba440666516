"""Commands that move a workspace's data or image: backup, restore, upgrade."""


import typer

from unitgen import hostpath, inputs, ops, options, plan, validate
from unitgen.admission import Wanted
from unitgen.cli.app import Target, app
from unitgen.errors import BadInput
from unitgen.model import Person


@app.command()
def backup(ctx: typer.Context, users: options.Names = None, everyone: options.All = False) -> None:
    """Back up workspaces now, with the same unit as the timer; print where each archive is.

    Example: unitgen backup alice    (or: unitgen backup --all)
    """
    target: Target = ctx.obj
    target.live("backup")
    host = target.host()
    people = plan.select(host, users or [], everyone)
    ops.backup(target.root, target.edge, host, [p.name for p in people], typer.echo)


@app.command()
def restore(ctx: typer.Context, user: options.User, source: options.Archive = None,
            key: options.RestoreKeys = None, port: options.NewPort = None,
            disk: options.NewPersonDisk = None,
            no_backup: options.NoBackupFirst = False) -> None:
    """Restore a workspace from a backup onto a new disk, switching over only once it
    answers; on any failure the workspace keeps its data as it was. An archive that does
    not fit the person's disk cap is refused before anything changes.

    Example: unitgen restore alice    (or: unitgen restore alice ARCHIVE --key alice.pub)
    """
    target: Target = ctx.obj
    target.live("restore")
    validate.name(user)
    if disk and not key:
        raise BadInput("--disk is for a person this host does not know yet, with their --key; "
                       f"to change {user}'s, run: unitgen set {user} --disk SIZE")
    wanted = Wanted(Person(user, port or 0, inputs.read_keys(key),
                           disk=validate.disk(disk) if disk else None)) if key else None
    archive = hostpath.inside(source).resolve() if source else None
    used = ops.restore(target.root, target.edge, user, archive, wanted, not no_backup,
                       typer.echo)
    typer.echo(f"restored {user} from {source or used}")


@app.command()
def upgrade(ctx: typer.Context, users: options.Names = None, everyone: options.All = False,
            image: options.NewImage = None, batch: options.Batch = None) -> None:
    """Recreate containers from their image, batch by batch, checking each answers; a failing
    batch goes back to its previous image. Without names, only install what a newer
    unitgen renders differently and restart what that changed.

    Example: unitgen image build && unitgen upgrade --all
    """
    target: Target = ctx.obj
    target.live("upgrade")
    image = validate.image(image) if image is not None else None
    ops.upgrade(target.root, target.edge, users or [], everyone, image, batch, typer.echo)


