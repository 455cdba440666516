"""Commands that look without changing anything: status, doctor, logs, list, show."""

import json

import typer

from unitgen import doctor as checks
from unitgen import journal, ops, options, plan, status, validate
from unitgen.cli.app import Target, app, echo


@app.command("status")
def status_(ctx: typer.Context, users: options.Names = None, as_json: options.Json = False) -> None:
    """Every workspace (or the named ones) at a glance: unit and container state, uptime,
    memory used and cap, OOM kills, processes, the age of the last snapshot (FAILED when
    the last backup failed), last login; then totals and the backups' state.

    Example: unitgen status    (or: unitgen status alice --json)
    """
    target: Target = ctx.obj
    target.live("status")
    host = target.host()
    names = [p.name for p in plan.select(host, users, not users)]
    rows, backups = status.gather(target.root, host, names, ops.backups(host, target.edge))
    echo(json.dumps({"workspaces": rows, "summary": status.summary(rows), "backups": backups},
                    indent=2) if as_json else status.table(rows, backups))


@app.command()
def doctor(ctx: typer.Context, as_json: options.Json = False) -> None:
    """Check the engine, systemd, the generated files, images, ports, the firewall, the
    backups (secrets, repository, failed units, people without a recent snapshot) and the
    clock; say how to fix each problem. Exits 1 if any check fails.

    Example: unitgen doctor
    """
    target: Target = ctx.obj
    target.live("doctor")
    with target.root.locked(shared=True):
        found = checks.run(target.root, ops.load(target.root))
    echo(json.dumps([vars(c) for c in found], indent=2) if as_json else checks.lines(found))
    if any(c.level == "fail" for c in found):
        raise typer.Exit(1)


@app.command()
def logs(ctx: typer.Context, user: options.User, follow: options.Follow = False) -> None:
    """A workspace's journal: its starts and stops and sshd's log of logins.

    Example: unitgen logs alice -f
    """
    target: Target = ctx.obj
    target.live("logs")
    target.host().need(validate.name(user))
    journal.show(user, follow)


@app.command("list")
def list_(ctx: typer.Context, as_json: options.Json = False) -> None:
    """One line per workspace.

    Example: unitgen list --json
    """
    target: Target = ctx.obj
    host = target.host()
    found = status.unit_states([p.name for p in host.people], target.edge.live)
    rows = [status.describe(host, p, found[p.name]) for p in host.people]
    echo(json.dumps(rows, indent=2) if as_json else status.list_lines(rows))


@app.command()
def show(ctx: typer.Context, user: options.User, as_json: options.Json = False) -> None:
    """A workspace's port, state, memory cap, keys and ssh command.

    Example: unitgen show alice
    """
    target: Target = ctx.obj
    host = target.host()
    person = host.need(validate.name(user))
    info = status.describe(host, person, status.unit_states([user], target.edge.live)[user],
                           target.root)
    echo(json.dumps(info, indent=2) if as_json else status.show_lines(info))


