"""The one place unitgen talks to the Docker engine, through the Docker SDK."""

from functools import cache
from pathlib import Path

from unitgen import hostpath
from unitgen.errors import Failed
from unitgen.names import LIBEXEC, MOVE_LABEL, RESTORE_LABEL, USER_LABEL, container


@cache
def sdk():  # -> the docker module
    """The Docker SDK, imported at its first use: it adds about 0.15 s to a start, which the
    commands that never reach the engine do not pay."""
    import docker

    return docker


@cache
def client():  # -> docker.DockerClient
    docker = sdk()
    try:
        engine = docker.from_env()
        engine.ping()
    except docker.errors.DockerException as problem:
        raise Failed(
            f"the Docker engine is not reachable ({str(problem).splitlines()[0][:120]}); "
            "start it with: systemctl start docker"
        ) from None
    return engine


def build(context: Path, tag: str) -> str:
    """Build the image in `context` into `tag`; return the image id."""
    docker, engine = sdk(), client()
    try:
        image, _ = engine.images.build(path=str(context), tag=tag, rm=True, pull=False)
    except docker.errors.BuildError as problem:
        log = "".join(step.get("stream", "") for step in problem.build_log).strip()
        tail = log.splitlines()[-1] if log else str(problem)
        raise Failed(f"building {tag} failed at: {tail}; fix that step in "
                     "image/Dockerfile") from None
    except docker.errors.APIError as problem:
        raise Failed(f"building {tag} failed: {problem.explanation}; check the engine with: "
                     "unitgen doctor") from None
    return image.id


def has_image(tag: str) -> bool:
    docker = sdk()
    try:
        client().images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def published_ports() -> set[int]:
    """Host ports that running containers publish, from one list call."""
    return {port["PublicPort"] for container in client().api.containers()
            for port in container["Ports"] if "PublicPort" in port}


def workspaces() -> dict[str, dict]:
    """Every workspace container, running or not, by person: the engine's list entry."""
    found = client().api.containers(all=True, filters={"label": USER_LABEL})
    return {c["Labels"][USER_LABEL]: c for c in found
            if c["Names"] == [f"/{container(c['Labels'][USER_LABEL])}"]}


def remove_volumes(names: list[str]) -> list[str]:
    """Remove the named volumes that exist; return those removed."""
    docker, engine, removed = sdk(), client(), []
    for name in names:
        try:
            engine.volumes.get(name).remove()
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as problem:
            raise Failed(f"could not remove volume {name}: {problem.explanation}; see what uses "
                         f"it with: docker ps -a --filter volume={name}") from None
        removed.append(name)
    return removed


def running_image(container: str) -> str | None:
    """The image id a running container was made from, or None when it does not run."""
    docker = sdk()
    try:
        found = client().containers.get(container)
    except docker.errors.NotFound:
        return None
    return found.image.id if found.status == "running" else None


def image_id(reference: str) -> str | None:
    docker = sdk()
    try:
        return client().images.get(reference).id
    except docker.errors.ImageNotFound:
        return None


def volumes_of(user: str) -> list[str]:
    """Every volume of a person, whatever its generation."""
    found = client().volumes.list(filters={"label": f"{USER_LABEL}={user}"})
    return sorted(v.name for v in found)


def all_volumes() -> set[str]:
    """Every volume of every person, from one list call."""
    return {v.name for v in client().volumes.list(filters={"label": USER_LABEL})}


def clear_restores(user: str) -> None:
    """Remove what a killed restore or move of the person left: its containers, which hold
    the disk it was filling."""
    for label in (RESTORE_LABEL, MOVE_LABEL):
        for leftover in client().containers.list(all=True,
                                                  filters={"label": f"{label}={user}"}):
            leftover.remove(force=True)


def _run_once(image: str, command: list[str], label: str, user: str, mounts: list,
              binds: dict) -> tuple[int, str]:
    """Run a short-lived container with no network and a read-only root; its exit status
    and output. Host folders are bound with -v, so that they are relabelled for SELinux (:z,
    as the units bind them), where a Mount never relabels."""
    container = client().containers.create(
        image, command[1:], entrypoint=[command[0]], mounts=mounts, volumes=binds,
        network_disabled=True, read_only=True, tmpfs={"/tmp": "mode=1777"},
        labels={label: user})
    try:
        container.start()
        status = container.wait()["StatusCode"]
        return status, container.logs().decode(errors="replace").strip()
    finally:
        container.remove(force=True)


def extract_onto_disk(image: str, archive: Path, user: str, mount: str) -> None:
    """Fill a new disk, mounted at `mount` (a host path), from a verified archive. The
    caller made the disk, and deletes it on failure."""
    binds = {str(hostpath.outside(archive.parent)): {"bind": "/archive", "mode": "ro,z"},
             mount: {"bind": "/restore", "mode": "z"}}
    command = ["tar", "--extract", "--gzip", "--numeric-owner", "--same-permissions",
               "--file", f"/archive/{archive.name}", "--directory", "/restore"]
    status, log = _run_once(image, command, RESTORE_LABEL, user, [], binds)
    if status:
        reason = log.splitlines()[-1] if log else f"status {status}"
        raise Failed(f"extracting {archive.name} failed: {reason}; pick another archive")


def migrate(image: str, user: str, volumes: tuple[str, str], mount: str) -> str:
    """Copy a person's home and host key from their volumes onto their new disk, mounted at
    `mount`, and compare every entry (libexec/migrate); the volumes are mounted read-only.
    Returns the script's last line; raises Failed with its reason."""
    docker = sdk()
    home, hostkeys = volumes
    mounts = [docker.types.Mount("/from/home", home, type="volume", read_only=True,
                                 no_copy=True),
              docker.types.Mount("/from/hostkeys", hostkeys, type="volume", read_only=True,
                                 no_copy=True)]
    binds = {mount: {"bind": "/to", "mode": "z"},
             LIBEXEC: {"bind": "/opt/wormhole", "mode": "ro,z"}}
    status, log = _run_once(image, ["/bin/sh", "/opt/wormhole/migrate"], MOVE_LABEL, user,
                            mounts, binds)
    last = log.splitlines()[-1] if log else f"status {status}"
    if status:
        raise Failed(f"{last.removeprefix('migrate: ')}")
    return last
