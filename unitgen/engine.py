"""The one place unitgen talks to the Docker engine, through the Docker SDK."""

from functools import cache
from pathlib import Path

from unitgen import hostpath
from unitgen.errors import Failed
from unitgen.names import RESTORE_LABEL, USER_LABEL, container


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


def create_volumes(user: str, volumes: tuple[str, ...]) -> None:
    """Create a person's volumes if missing (the data unit does the same at start)."""
    engine = client()
    for name in volumes:
        engine.volumes.create(name, labels={USER_LABEL: user})


def clear_restores(user: str) -> None:
    """Remove what a killed restore of the person left running: its extraction containers,
    which hold the volumes it was filling."""
    for leftover in client().containers.list(all=True,
                                              filters={"label": f"{RESTORE_LABEL}={user}"}):
        leftover.remove(force=True)


def extract(image: str, archive: Path, user: str, volumes: tuple[str, str]) -> None:
    """Create the two volumes and fill them from a verified archive, in a container with
    no network and a read-only root; on failure the new volumes are removed again."""
    docker, engine = sdk(), client()
    home, hostkeys = volumes
    create_volumes(user, volumes)
    mounts = [
        docker.types.Mount("/restore/home", home, type="volume", no_copy=True),
        docker.types.Mount("/restore/hostkeys", hostkeys, type="volume", no_copy=True),
    ]
    # The engine needs the folder's host path (unitgen may run from its CLI image), and a
    # bind relabels it for SELinux (:z, as the backup unit's) where a Mount never does.
    folder = {str(hostpath.outside(archive.parent)): {"bind": "/archive", "mode": "ro,z"}}
    command = ["--extract", "--gzip", "--numeric-owner", "--same-permissions",
               "--file", f"/archive/{archive.name}", "--directory", "/restore"]
    container = engine.containers.create(image, command, entrypoint=["tar"], mounts=mounts,
                                         volumes=folder, network_disabled=True,
                                         read_only=True, labels={RESTORE_LABEL: user})
    try:
        container.start()
        status = container.wait()["StatusCode"]
        log = container.logs().decode(errors="replace").strip()
    finally:
        container.remove(force=True)
    if status:
        remove_volumes(list(volumes))
        reason = log.splitlines()[-1] if log else f"status {status}"
        raise Failed(f"extracting {archive.name} failed: {reason}; pick another archive")
