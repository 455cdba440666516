"""`unitgen fleet`: one people file, many hosts, one front door. The commands run on the
admin's machine, next to the people file and its lock; the hosts are reached over the
admin's own ssh."""

import json
import time
from pathlib import Path

import typer

from unitgen import credentials, fleet, fleetops, inputs, options, placement, provision
from unitgen.cli.app import app, echo
from unitgen.errors import BadInput, Failed
from unitgen.fleet import Compiled
from unitgen.placement import Locked
from unitgen.render import render_provisioned

fleet_app = typer.Typer(no_args_is_help=True, help="A fleet: one people file, many hosts, one "
                        "front door; placement as a compiler decides it, with a lock file.")
app.add_typer(fleet_app, name="fleet")
PEOPLE = Path("people.toml")
LOCK_LIMIT = 16 << 20


def compiled_from(source: Path, rebalance: bool = False) -> Compiled:
    people = inputs.any_people_file(source)
    lock_file = fleet.lock_path(source)
    lock = placement.load_lock(inputs.read_text(lock_file, "lock file", LOCK_LIMIT),
                               str(lock_file)) if lock_file.exists() else {}
    return fleet.compile_fleet(people, lock, rebalance, where=str(source))


def write_lock(source: Path, state: dict[str, Locked]) -> None:
    inputs.write_out(fleet.lock_path(source), placement.dump_lock(state))


def remote(compiled: Compiled, wait: float = 60) -> fleetops.Remote:
    return fleetops.Remote(fleetops.Ssh(compiled.people.admin.user), compiled, wait)


def repository(compiled: Compiled) -> fleetops.ResticSnapshots:
    return fleetops.ResticSnapshots(compiled)


@fleet_app.command("plan")
def plan(source: options.FleetFile = PEOPLE, rebalance: options.Rebalance = False) -> None:
    """Each person's host and port, then the moves since the lock (nothing changes).

    Example: unitgen fleet plan --from people.toml
    """
    compiled = compiled_from(source, rebalance)
    echo(fleet.plan_lines(compiled, fleet.lock_path(source).name))


def configs(source: Path, out: Path, admin_key: list[Path] | None,
            variant: str, spec: str, suffix: str, backup_secrets: Path | None) -> None:
    """One config per host and one for the gateway into `out`, then the lock: refused while
    people already placed would move. Every host gets the same backup secrets, as they
    share one repository."""
    provision.butane_version(spec, variant)
    if not out.is_dir():
        raise BadInput(f"--out {out} is not a folder; create it or give another")
    compiled = compiled_from(source)
    placed = fleet.placed_moves(compiled)
    if placed:
        first = placed[0]
        raise BadInput(f"{source}: {len(placed)} placed people would move ({first.person}: "
                       f"{first.source} to {first.target or 'nowhere'}); run unitgen fleet "
                       "apply first, then write the configs")
    admin = provision.with_keys(compiled.people.admin,
                                inputs.read_keys(admin_key) if admin_key else ())
    secrets = credentials.provisioned(backup_secrets) if backup_secrets else {}
    for image in provision.unpullable(compiled.base()):
        typer.echo(f"warning: image {image} names no registry, so the new hosts cannot pull "
                   "it; push it to a registry and set image to that reference", err=True)
    written = {}
    for name, host in compiled.hosts().items():
        files = {**render_provisioned(host, variant), **secrets}
        folders = provision.directories(host)
        written[name] = provision.ignition(files, admin, spec, directories=folders) \
            if suffix == "ign" else \
            provision.butane(files, admin, variant, spec, len(host.people), directories=folders)
    door = fleet.gateway_files(compiled, compiled.after)
    users = (fleet.JUMP_USER,)
    written[fleet.GATEWAY_FILE] = provision.ignition(door, admin, spec, users) \
        if suffix == "ign" else provision.butane(door, admin, variant, spec, 0, users)
    for name, text in written.items():
        inputs.write_out(out / f"{name}.{suffix}", text)
        typer.echo(f"wrote {out / f'{name}.{suffix}'}", err=True)
    if compiled.after != compiled.before:
        write_lock(source, compiled.after)
        typer.echo(f"wrote {fleet.lock_path(source)}: {len(compiled.after)} people", err=True)


@fleet_app.command("ignition")
def ignition(out: options.OutDir, source: options.FleetFile = PEOPLE,
             admin_key: options.AdminKeys = None, variant: options.Variant = "fcos",
             spec: options.Spec = "3.3.0", backup_secrets: options.BackupSecrets = None) -> None:
    """Write one Ignition config per host (DIR/HOST.ign) and one for the front door
    (DIR/gateway.ign), and record the placement in the lock.

    Example: unitgen fleet ignition --out configs/ --backup-secrets secrets/
    """
    configs(source, out, admin_key, variant, spec, "ign", backup_secrets)


@fleet_app.command("butane")
def butane(out: options.OutDir, source: options.FleetFile = PEOPLE,
           admin_key: options.AdminKeys = None, variant: options.Variant = "fcos",
           spec: options.Spec = "3.3.0", backup_secrets: options.BackupSecrets = None) -> None:
    """The same configs as Butane YAML (DIR/HOST.bu, DIR/gateway.bu), for fcos or flatcar.

    Example: unitgen fleet butane --variant flatcar --out configs/
    """
    configs(source, out, admin_key, variant, spec, "bu", backup_secrets)


@fleet_app.command("ssh-config")
def ssh_config(user: options.FleetUser, source: options.FleetFile = PEOPLE) -> None:
    """The person's ~/.ssh/config block: their workspace through the front door, the same
    wherever it is placed. Give it to them once.

    Example: unitgen fleet ssh-config alice >> alice.config
    """
    typer.echo(fleet.ssh_config(compiled_from(source), user), nl=False)


@fleet_app.command("status")
def status(source: options.FleetFile = PEOPLE, as_json: options.Json = False) -> None:
    """Every host's `unitgen status`, asked over the admin's ssh at once, as one table; and
    whether the gateway is in step with the lock. A host that does not answer is a row.

    Example: unitgen fleet status    (ssh command: UNITGEN_FLEET_SSH, default ssh)
    """
    compiled = compiled_from(source)
    started = time.monotonic()
    found = fleetops.status(compiled, remote(compiled))
    found["seconds"] = round(time.monotonic() - started, 2)
    echo(json.dumps(found, indent=2) if as_json
         else fleetops.status_lines(found, fleet.lock_path(source).name))


@fleet_app.command("apply")
def apply(source: options.FleetFile = PEOPLE, rebalance: options.Rebalance = False,
          wait: options.Wait = 60) -> None:
    """Make the plan's moves, one person at a time, writing the lock after each: newcomers
    added, leavers removed (their data kept), and moves by last backup, restore, check,
    switch of the front door, and removal from the old host. A failed move leaves the
    person where they were.

    Example: unitgen fleet plan && unitgen fleet apply
    """
    compiled = compiled_from(source, rebalance)
    typer.echo(f"{len(compiled.moves)} move(s) to make")
    result = fleetops.Apply(compiled, remote(compiled, wait), repository(compiled),
                            lambda state: write_lock(source, state), typer.echo).run()
    if result.leftovers:
        raise Failed(f"every move was made, but the old hosts still hold: "
                     f"{'; '.join(result.leftovers)}; remove them there with unitgen remove")
    typer.echo(f"applied; {fleet.lock_path(source).name} holds {len(result.state)} people")


@fleet_app.command("backup")
def backup(users: options.Names = None, source: options.FleetFile = PEOPLE) -> None:
    """Back up people now on their hosts into the fleet's restic repository, where moves and
    lost hosts find their last snapshot (everyone by default).

    Example: unitgen fleet backup    (or: unitgen fleet backup alice bob)
    """
    compiled = compiled_from(source)
    fleetops.backup(compiled, remote(compiled), repository(compiled), users or [],
                    typer.echo)
