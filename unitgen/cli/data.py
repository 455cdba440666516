"""Commands that move a workspace's data or image: backup, snapshots, restore, upgrade."""

import json
from datetime import UTC
from pathlib import Path

import typer

from unitgen import hostpath, inputs, ops, options, plan, restic, validate
from unitgen.admission import Wanted
from unitgen.cli.app import Target, app, echo
from unitgen.errors import BadInput
from unitgen.model import Person


@app.command()
def backup(ctx: typer.Context, users: options.Names = None, everyone: options.All = False,
           repair: options.Repair = False) -> None:
    """Back up workspaces now into the restic repository, with the same unit as the timer;
    print each new snapshot.

    Example: unitgen backup alice    (or: unitgen backup --all --repair)
    """
    target: Target = ctx.obj
    target.live("backup")
    host = target.host()
    people = plan.select(host, users or [], everyone)
    ops.backup(target.root, target.edge, host, [p.name for p in people], typer.echo, repair)


@app.command()
def snapshots(ctx: typer.Context, users: options.Names = None,
              from_host: options.FromHost = None, as_json: options.Json = False) -> None:
    """The repository's snapshots of this host (or of --from-host), of everyone or of the
    named people, oldest first.

    Example: unitgen snapshots alice    (or: unitgen snapshots --from-host old-host --json)
    """
    target: Target = ctx.obj
    target.live("snapshots")
    host = target.host()
    wanted = [validate.name(u) for u in users or []]
    b = ops.backups(host, target.edge)
    found = [s for s in target.edge.snapshots(b, f"host={from_host or b.host}")
             if not wanted or s.user in wanted]
    if as_json:
        echo(json.dumps([s.view() for s in found], indent=2))
        return
    echo([f"{'ID':<8}  {'TIME (UTC)':<16}  {'USER':<16}  {'HOST':<20}  WHAT"] + [
        f"{s.short_id:<8}  {s.time.astimezone(UTC):%Y-%m-%d %H:%M}  "
        f"{s.user or '-':<16}  {s.host:<20}  "
        f"{'removed (the person left)' if s.removed else 'home, host key, record'}"
        for s in found])


@app.command("host-key")
def host_key(ctx: typer.Context, user: options.User, snapshot: options.Snapshot = None,
             as_of: options.AsOf = None, from_host: options.FromHost = None) -> None:
    """Print the snapshot's id and the workspace host key it holds (type and base64): the
    snapshot a restore would take (the newest, an id, or --as-of, of this host or
    --from-host).

    Example: unitgen host-key alice --from-host h1
    """
    target: Target = ctx.obj
    target.live("host-key")
    choice = restic.Pick(restic.snapshot_id(snapshot) if snapshot else None,
                         restic.when(as_of) if as_of else None,
                         validate.SETTINGS["host"](from_host, "--from-host") if from_host
                         else None)
    found, key = ops.host_key(target.edge, target.host(), validate.name(user), choice)
    typer.echo(f"{found} {key}")


def _source(text: str | None) -> tuple[Path | None, str | None]:
    """An archive path, or a snapshot id."""
    if text is None:
        return None, None
    if "/" in text or text.endswith(".tar.gz"):
        return hostpath.inside(text).resolve(), None
    return None, restic.snapshot_id(text)


@app.command()
def restore(ctx: typer.Context, user: options.AnyUser = None, source: options.Source = None,
            everyone: options.All = False, as_of: options.AsOf = None,
            from_host: options.FromHost = None, key: options.RestoreKeys = None,
            port: options.NewPort = None, disk: options.NewPersonDisk = None,
            no_backup: options.NoBackupFirst = False) -> None:
    """Restore a workspace from its newest snapshot (or a snapshot id, the newest --as-of a
    time, or an archive of the tar.gz era) onto a new disk, switching over only once it
    answers; on any failure the workspace keeps its data as it was. A backup that does not
    fit the person's disk cap is refused before anything changes. With --all, everyone
    this host's snapshots hold, with the port, keys and limits recorded in them: how a
    lost host comes back.

    Example: unitgen restore alice    (or: unitgen restore --all --from-host old-host)
    """
    target: Target = ctx.obj
    target.live("restore")
    choice = restic.Pick(None, restic.when(as_of) if as_of else None,
                         validate.SETTINGS["host"](from_host, "--from-host") if from_host
                         else None)
    if everyone:
        if user or source or key or port or disk:
            raise BadInput("--all restores everyone from their own snapshots; give no name, "
                           "source, --key, --port or --disk")
        done = ops.restore_all(target.root, target.edge, choice, not no_backup, typer.echo)
        typer.echo(f"restored {len(done)} workspace(s): {', '.join(done)}")
        return
    if user is None:
        raise BadInput("give a name, or --all; see: unitgen restore --help")
    validate.name(user)
    if disk and not key:
        raise BadInput("--disk is for a person this host does not know yet, with their --key; "
                       f"to change {user}'s, run: unitgen set {user} --disk SIZE")
    archive, snapshot = _source(source)
    if archive is not None and (as_of or from_host):
        raise BadInput("an archive was given; --as-of and --from-host choose among snapshots")
    choice = restic.Pick(snapshot, choice.as_of, choice.host)
    wanted = Wanted(Person(user, port or 0, inputs.read_keys(key),
                           disk=validate.disk(disk) if disk else None)) if key else None
    used = ops.restore(target.root, target.edge, user, archive, choice, wanted, not no_backup,
                       typer.echo)
    typer.echo(f"restored {user} from {used}")


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
