"""Commands about the host itself: its firewall, the configs that provision a fresh one, and
the images."""

from pathlib import Path

import typer

from unitgen import (
    cliimage,
    credentials,
    engine,
    inputs,
    ops,
    options,
    provision,
    resources,
    validate,
)
from unitgen.cli.app import Target, app, image_app
from unitgen.errors import BadInput, one_line
from unitgen.model import Admin, Host
from unitgen.render import render_internal, render_provisioned


@app.command()
def firewall(ctx: typer.Context, off: options.Off = False, internal: options.Internal = False,
             wormhole_ip: options.WormholeIp = None, output: options.Format = "rules") -> None:
    """Install and start the workspace host's firewall, with the egress policy of the config;
    add and remove keep it in step with the ports.

    Example: unitgen firewall    (or: unitgen firewall --internal --wormhole-ip 10.0.0.5)
    """
    if internal:
        if wormhole_ip is None or output not in ("rules", "unit"):
            raise BadInput("--internal needs --wormhole-ip ADDR and --format rules or unit; "
                           "see: unitgen firewall --help")
        files = render_internal(validate.address(wormhole_ip, "--wormhole-ip"))
        typer.echo(files["rules" if output == "rules" else
                         "wormhole-internal-firewall.service"], nl=False)
        return
    target: Target = ctx.obj
    host = ops.firewall(target.root, target.edge, not off)
    typer.echo("firewall off" if off else f"firewall on: egress {host.settings.egress}, admin "
               f"ports {', '.join(map(str, host.settings.admin_ports))}, {len(host.people)} "
               "workspace port(s)")


def provisioning(target: Target, source: Path | None,
                 admin_keys: list[Path] | None) -> tuple[Host, Admin]:
    """The host to provision and its admin, from a people file or the registry."""
    return provision.target(inputs.people_file(source) if source else None,
                            None if source else target.host(),
                            inputs.read_keys(admin_keys) if admin_keys else ())


def emit(text: str, out: Path | None, host: Host) -> None:
    """The config, then its warnings: only once nothing was refused, so that a refusal
    stays one line."""
    if out is None:
        typer.echo(text, nl=False)
    else:
        inputs.write_out(out, text)
        typer.echo(f"wrote {one_line(str(out))}", err=True)
    for image in provision.unpullable(host):
        typer.echo(f"warning: image {image} names no registry, so the new host cannot pull "
                   "it; push it to a registry and set image to that reference", err=True)


@app.command()
def ignition(ctx: typer.Context, source: options.PeopleSource = None,
             admin_key: options.AdminKeys = None, variant: options.Variant = "fcos",
             spec: options.Spec = "3.3.0", backup_secrets: options.BackupSecrets = None,
             out: options.Out = None) -> None:
    """Write the Ignition config that provisions a fresh host with every workspace, backup
    timer, the firewall and the engine settings, at first boot.

    Example: unitgen ignition --from people.toml --admin-key me.pub --out host.ign
    """
    provision.butane_version(spec, variant)
    if out:
        inputs.check_out(out)
    secrets = credentials.provisioned(backup_secrets) if backup_secrets else {}
    host, admin = provisioning(ctx.obj, source, admin_key)
    emit(provision.ignition({**render_provisioned(host, variant), **secrets}, admin, spec,
                            directories=provision.directories(host)), out, host)


@app.command()
def butane(ctx: typer.Context, source: options.PeopleSource = None,
           admin_key: options.AdminKeys = None, variant: options.Variant = "fcos",
           spec: options.Spec = "3.3.0", backup_secrets: options.BackupSecrets = None,
           out: options.Out = None) -> None:
    """Write the same provisioning config as Butane YAML, for fcos or flatcar.

    Example: unitgen butane --variant flatcar --from people.toml --admin-key me.pub
    """
    provision.butane_version(spec, variant)
    if out:
        inputs.check_out(out)
    secrets = credentials.provisioned(backup_secrets) if backup_secrets else {}
    host, admin = provisioning(ctx.obj, source, admin_key)
    emit(provision.butane({**render_provisioned(host, variant), **secrets}, admin, variant,
                          spec, len(host.people), directories=provision.directories(host)),
         out, host)


@image_app.command("build")
def image_build(ctx: typer.Context, tag: options.Tag = None, cli: options.Cli = False,
                backup: options.BackupImage = False) -> None:
    """Build the workspace image from the image/ folder that ships with unitgen, or with
    --cli the image that runs unitgen itself on Fedora CoreOS and Flatcar, or with --backup
    the image every backup runs (restic, from Debian).

    Example: unitgen image build --tag wormhole:2    (or: unitgen image build --backup)
    """
    target: Target = ctx.obj
    if not target.edge.live:
        raise BadInput("image build talks to the engine; leave out --root")
    if cli and backup:
        raise BadInput("--cli and --backup were both given; build one image at a time")
    settings = target.host().settings
    tag = validate.image(tag) if tag else settings.cli_image if cli else \
        settings.backup_image if backup else settings.image
    if cli:
        image_id = cliimage.build(tag)
    else:
        folder = resources.folder("image")
        image_id = engine.build(folder / "backup" if backup else folder, tag)
    typer.echo(f"built {tag} ({image_id.removeprefix('sha256:')[:12]})")
