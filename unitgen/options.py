"""The command line's arguments and options, each with its help, named once."""

from pathlib import Path
from typing import Annotated

import typer

Root = Annotated[Path, typer.Option("--root", help="Read and write every file under DIR; "
                                    "other than / it only writes files.", metavar="DIR")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Names = Annotated[list[str] | None, typer.Argument(help="People's names.", metavar="[USER]...")]
All = Annotated[bool, typer.Option("--all", help="Everyone.")]
User = Annotated[str, typer.Argument(help="The person's name.")]
NewUser = Annotated[str | None, typer.Argument(help="The person's name: lowercase, e.g. alice.",
                                               show_default=False)]
KeyFiles = Annotated[list[Path] | None, typer.Argument(help="Public key files (.pub).",
                                                       metavar="KEYFILE...")]
Memory = Annotated[str | None, typer.Option(help="Memory cap, e.g. 512M or 1G [default: from "
                                            "the config]")]
NewMemory = Annotated[str | None, typer.Option("--memory", help="Memory cap, e.g. 1G.")]
Disk = Annotated[str | None, typer.Option(help="Disk cap of the home and host key, e.g. 10G "
                                          "[default: from the config]")]
NewDisk = Annotated[str | None, typer.Option(
    "--disk", help="Disk cap, e.g. 20G: a larger one grows the disk (online where the host "
    "allows it, else at the next start); a smaller one only when the data fits.")]
Cpus = Annotated[float | None, typer.Option(help="CPU cap, e.g. 1.5; 0 for none.")]
Pids = Annotated[int | None, typer.Option(help="Process limit.")]
Port = Annotated[int | None, typer.Option(help="Host port [default: the lowest free one in "
                                          "the range]")]
Image = Annotated[str | None, typer.Option(help="Image [default: from the config]")]
OnDemand = Annotated[bool | None, typer.Option(
    "--on-demand/--always-on", help="Start the workspace at the first ssh connection and "
    "stop it when idle, or keep it running [default: on_demand in the config]",
    show_default=False)]
IdleStop = Annotated[str | None, typer.Option(
    "--idle-stop", help="On demand: stop after this long with no connection, e.g. 1h or "
    "30min [default: idle_stop in the config]")]
Forwarding = Annotated[str | None, typer.Option(
    "--forwarding", help="none, or loopback: local forwards (ssh -L, -D) to the workspace's own "
    "loopback, for editors over ssh [default: forwarding in the config]")]
KeyPolicy = Annotated[str | None, typer.Option(
    "--key-policy", help="any, or hardware: only FIDO security keys (sk-...) [default: "
    "key_policy in the config]")]
PeopleFile = Annotated[Path | None, typer.Option("--from", help="A people file: add everyone "
                                                 "in it at once.")]
Start = Annotated[bool, typer.Option("--start", help="Also start the workspace.")]
Purge = Annotated[bool, typer.Option("--purge", help="Also delete their home and host key for "
                                     "good.")]
Yes = Annotated[bool, typer.Option("--yes", help="Confirm --purge.")]
NoFinalBackup = Annotated[bool, typer.Option("--no-backup", help="Skip the final backup.")]
Source = Annotated[str | None, typer.Argument(
    help="A snapshot id (see unitgen snapshots), or the path of a .tar.gz archive of "
    "unitgen's earlier backups [default: the newest snapshot]", metavar="[SNAPSHOT|ARCHIVE]",
    show_default=False)]
Snapshot = Annotated[str | None, typer.Argument(
    help="A snapshot id (see unitgen snapshots) [default: the newest]", metavar="[SNAPSHOT]",
    show_default=False)]
Repair = Annotated[bool, typer.Option(
    "--repair", help="After a damaged pack was removed from the repository (see the "
    "README): rebuild its index, and read every file again so that what the pack held is "
    "saved anew.")]
AsOf = Annotated[str | None, typer.Option("--as-of", help="The newest snapshot at or before "
                                          "TIME, e.g. 2026-12-01 or 2026-12-01T18:00Z (UTC).",
                                          metavar="TIME")]
FromHost = Annotated[str | None, typer.Option("--from-host", help="Snapshots of another host "
                                              "name, e.g. a lost host's [default: this "
                                              "host's]", metavar="NAME")]
AnyUser = Annotated[str | None, typer.Argument(help="The person's name.", metavar="[USER]",
                                              show_default=False)]
RestoreKeys = Annotated[list[Path] | None, typer.Option(
    "--key", help="Key file, to restore a person this host does not know yet.")]
NewPort = Annotated[int | None, typer.Option(help="Port for a new person.")]
NewPersonDisk = Annotated[str | None, typer.Option("--disk", help="Disk cap for a new person "
                                                   "[default: from the config]")]
NoBackupFirst = Annotated[bool, typer.Option("--no-backup", help="Skip the backup of the "
                                             "current data first.")]
NewImage = Annotated[str | None, typer.Option("--image", help="Move them onto this image.")]
Batch = Annotated[int | None, typer.Option(min=1, help="Workspaces per batch [default: "
                                           "upgrade_batch from the config]")]
Restart = Annotated[bool, typer.Option("--restart", help="Apply now: restart the workspace.")]
Follow = Annotated[bool, typer.Option("-f", "--follow", help="Keep printing new lines.")]
Fingerprint = Annotated[str, typer.Argument(help="SHA256:... as key list shows it.")]
Off = Annotated[bool, typer.Option("--off", help="Take the firewall out.")]
Internal = Annotated[bool, typer.Option("--internal", help="Print the strong firewall of an "
                                        "internal host instead.")]
WormholeIp = Annotated[str | None, typer.Option(help="With --internal: the workspace host's "
                                                "address.")]
Format = Annotated[str, typer.Option("--format", help="With --internal: 'rules' (for "
                                     "iptables-restore) or 'unit'.")]
Spec = Annotated[str, typer.Option("--spec", help="Ignition spec: 3.3.0 (Fedora CoreOS and "
                                   "Flatcar both accept it), 3.4.0 or 3.5.0.")]
PeopleSource = Annotated[Path | None, typer.Option("--from", help="A people file [default: "
                                                   "this host's registry]")]
AdminKeys = Annotated[list[Path] | None, typer.Option("--admin-key", help="The admin's public "
                                                      "key (repeatable).")]
Out = Annotated[Path | None, typer.Option("--out", help="Write to FILE [default: standard "
                                          "output]")]
Variant = Annotated[str, typer.Option(help="fcos or flatcar.")]
Tag = Annotated[str | None, typer.Option(help="Tag to build [default: image, or cli_image with "
                                          "--cli, backup_image with --backup, from the "
                                          "config]")]
Cli = Annotated[bool, typer.Option("--cli", help="Build the CLI image instead: unitgen and its "
                                   "dependencies, for hosts without Python.")]
BackupImage = Annotated[bool, typer.Option("--backup", help="Build the backup image instead: "
                                           "restic, which every backup runs.")]
BackupSecrets = Annotated[Path | None, typer.Option(
    "--backup-secrets", help="A folder with the backup repository's password (and "
    "repository, env, ssh/ if it needs them), to put on the new host (root only); without "
    "it the host makes a new password at first use.", metavar="DIR")]
FleetFile = Annotated[Path, typer.Option("--from", help="The fleet's people file; its lock is "
                                          "the .lock file beside it (people.toml: people.lock).",
                                          metavar="FILE")]
Rebalance = Annotated[bool, typer.Option("--rebalance", help="Place everyone as if there were no "
                                         "lock: people move to hosts added since.")]
OutDir = Annotated[Path, typer.Option("--out", help="The folder for one config per host and "
                                      "one for the gateway.", metavar="DIR")]
Wait = Annotated[float, typer.Option("--wait", min=1, help="Seconds a moved workspace has to "
                                     "answer the gateway.")]
FleetUser = Annotated[str, typer.Argument(help="The person's name.", metavar="USER")]
