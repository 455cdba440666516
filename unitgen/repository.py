"""unitgen's own restic runs: the snapshots that restore, status and doctor read, what a
snapshot holds and what it takes on a disk, a restore onto a new disk, and the marker of a
person who left. Each runs in a short-lived container from the backup image with the flags
of the backup units (units/include/restic-run.j2): the repository's network only, a
read-only root, no capability (a restore keeps the engine's default ones, to set owners
and modes), the secrets folder read-only, and the script the units run."""

import base64
import json
import platform
import subprocess
from dataclasses import dataclass

from unitgen import engine, hostpath, names, restic
from unitgen.disk import Need
from unitgen.errors import BadInput, Failed

# Failures that are the admin's input, not the moment: exit 2, nothing changed.
INPUT_KINDS = {"wrong password", "no password", "refused", "no repository"}
LOCK_WAIT = {"WORMHOLE_LOCK_WAIT": "120", "WORMHOLE_LOCK_STEP": "10"}


@dataclass(frozen=True)
class Inspected:
    """What a snapshot holds besides the data: the person's record and their host key."""

    record: str | None
    host_key: bool


def host_name() -> str:
    """The machine's host name, as a unit's %H gives it: the name snapshots carry when the
    config sets no `host`."""
    if hostpath.mount() is None:
        return platform.node()
    done = subprocess.run(hostpath.command(["uname", "-n"]), capture_output=True, text=True)
    return done.stdout.strip()


def _network(b: restic.Backups) -> dict:
    if b.local:
        return {"network_mode": "none"}
    client = engine.client()
    if not client.networks.list(names=[b.network]):
        # What the repository unit creates at its first start, for a run before it.
        client.networks.create(b.network, driver="bridge", labels={"wormhole.network": "1"},
                               options={"com.docker.network.bridge.name": names.BACKUP_BRIDGE,
                                        "com.docker.network.bridge.enable_icc": "false"})
    return {"network": b.network}


def _binds(b: restic.Backups) -> dict:
    """Host folders as the units mount them (host paths: unitgen may run from its CLI
    image), each relabelled for SELinux."""
    binds = {names.SECRETS: {"bind": restic.MOUNTED, "mode": "ro,z"},
             names.RESTIC_CACHE: {"bind": "/cache", "mode": "z"}}
    if b.sftp:
        binds[f"{names.SECRETS}/ssh"] = {"bind": "/root/.ssh", "mode": "ro,z"}
    if b.local:
        binds[b.location] = {"bind": b.location, "mode": "z"}
    return binds


def _image(b: restic.Backups) -> None:
    if engine.has_image(b.image):
        return
    if b.pull == "never":
        raise Failed(f"the backup image {b.image} is not on this host; build it with: "
                     "unitgen image build --backup")
    try:
        engine.client().images.pull(b.image)
    except engine.sdk().errors.APIError as problem:
        raise Failed(f"pulling the backup image {b.image} failed: {problem.explanation}; "
                     "check backup_image in the config") from None


def run(b: restic.Backups, args: list[str], label: str, *, mounts: tuple = (),
        volumes: dict | None = None, tmpfs: dict | None = None, caps: bool = False,
        timeout: float | None = None, labels: dict | None = None) -> str:
    """The script of the units in the backup image with `args` (`run ARGS...` runs restic
    ARGS), given inline; its standard output, or one line naming the failure. `caps`: keep
    the engine's default capabilities (a restore sets owners); otherwise none."""
    from unitgen.render import restic_script

    _image(b)
    hostpath.inside(names.RESTIC_CACHE).mkdir(mode=0o700, parents=True, exist_ok=True)
    container = engine.client().containers.create(
        b.image, ["-c", restic_script(), "wormhole-restic", *args], entrypoint=["/bin/sh"],
        mounts=list(mounts),
        volumes={**_binds(b), **(volumes or {})}, read_only=True,
        tmpfs={"/tmp": "size=256m", **(tmpfs or {})},
        environment={**restic.ENVIRONMENT, **LOCK_WAIT},
        labels={names.BACKUP_LABEL: label, **(labels or {})},
        security_opt=["no-new-privileges"], cap_drop=None if caps else ["ALL"],
        mem_limit="512m", **_network(b))
    try:
        container.start()
        status = _wait(container, timeout, args)
        out = container.logs(stdout=True, stderr=False).decode(errors="replace")
        err = container.logs(stdout=False, stderr=True).decode(errors="replace")
    finally:
        container.remove(force=True)
    if status:
        kind, line, fix = restic.failure(err)
        error = BadInput if kind in INPUT_KINDS else Failed
        verb = args[1] if args[0] == "run" else args[0]
        raise error(f"restic {verb} failed ({kind}): {line}; {fix}")
    return out


def _wait(container, timeout: float | None, args: list[str]) -> int:
    import requests

    try:
        return container.wait(timeout=timeout)["StatusCode"]
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
        container.kill()
        raise Failed(f"restic {args[1] if args[0] == 'run' else args[0]} failed (unreachable): "
                     f"the repository did not answer within {timeout:.0f} s; check the "
                     "repository's address and the network") from None


def snapshots(b: restic.Backups, tag: str | None = None,
              timeout: float | None = None) -> list[restic.Snapshot]:
    """The repository's snapshots (those with `tag`, such as user=alice), oldest first."""
    listing = run(b, ["run", "snapshots", "--json", "--no-lock",
                      *(["--tag", tag] if tag else [])], "snapshots", timeout=timeout)
    return restic.snapshots(json.loads(listing or "[]"))


def inspect(b: restic.Backups, chosen: dict[str, restic.Snapshot]) -> dict[str, Inspected]:
    """For each person, what their chosen snapshot holds; one container for everyone."""
    pairs = [word for user, s in sorted(chosen.items()) for word in (s.id, user)]
    found = {}
    for line in run(b, ["inspect", *pairs], "inspect").splitlines():
        user, key, *record = line.split(" ")
        text = base64.b64decode(record[0]).decode(errors="replace") if record and record[0] \
            else None
        found[user] = Inspected(text, key == "yes")
    missing = sorted(set(chosen) - set(found))
    if missing:
        raise Failed(f"restic could not read the snapshot of {missing[0]}; see: unitgen "
                     f"snapshots {missing[0]}")
    return found


def data_binds(user: str, mount: str) -> dict:
    """Where a restore writes the person's home and host key: the folders of their new disk,
    mounted aside at `mount` (a host path), where the snapshot's trees land under the
    restore target. The one place to change when the data moves again."""
    return {f"{mount}/{tree}": {"bind": restic.restore_mount(user, tree), "mode": "z"}
            for tree in restic.TREES}


def restore_onto_disk(b: restic.Backups, snapshot: restic.Snapshot, user: str,
                      mount: str) -> None:
    """Restore the snapshot onto a new disk, mounted at `mount` (a host path, its home/ and
    hostkeys/ made), restic reading every file back (--verify). The caller made the disk,
    and deletes it on failure."""
    run(b, ["run", *restic.restore_command(snapshot.id)], f"restore-{user}",
        volumes=data_binds(user, mount), tmpfs={restic.RESTORE_TARGET: ""}, caps=True,
        labels={names.RESTORE_LABEL: user})


def need(b: restic.Backups, snapshot: restic.Snapshot, user: str) -> Need:
    """What the snapshot's home and host key take on a disk, from its listing."""
    listing = run(b, ["run", "ls", "--json", "--no-lock", snapshot.id], "ls")
    return restic.need(listing, user)


def mark_removed(b: restic.Backups, user: str) -> None:
    run(b, ["mark", user, b.host], "mark")


def host_key(b: restic.Backups, snapshot: restic.Snapshot, user: str) -> str | None:
    """The public host key the snapshot holds (type and base64), or None."""
    path = f"{names.backup_path(user, 'hostkeys')}/{restic.HOST_KEY}.pub"
    try:
        text = run(b, ["run", "dump", "--no-lock", snapshot.id, path], "dump")
    except Failed:  # not in the snapshot (a wrong password is BadInput and goes on)
        return None
    parts = text.split()
    return " ".join(parts[:2]) if len(parts) >= 2 else None


def rebuild_index(b: restic.Backups) -> None:
    """The index anew from the packs there are: after a damaged pack was removed, what it
    held is missing from the index, so that the next backups save it again."""
    run(b, ["run", "rebuild-index"], "repair")
