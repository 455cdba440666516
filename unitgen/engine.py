"""The one place unitgen talks to the Docker engine, through the Docker SDK."""

from pathlib import Path

from unitgen.errors import Failed


def client():  # -> docker.DockerClient; the SDK is imported only when a command needs it
    import docker

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
    import docker

    engine = client()
    try:
        image, _ = engine.images.build(path=str(context), tag=tag, rm=True, pull=False)
    except docker.errors.BuildError as problem:
        log = "".join(step.get("stream", "") for step in problem.build_log).strip()
        tail = log.splitlines()[-1] if log else str(problem)
        raise Failed(f"building {tag} failed: {tail}") from None
    except docker.errors.APIError as problem:
        raise Failed(f"building {tag} failed: {problem.explanation}") from None
    return image.id


def has_image(tag: str) -> bool:
    import docker

    try:
        client().images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def published_ports() -> set[int]:
    """Host ports that running containers publish."""
    ports = set()
    for container in client().containers.list():
        for bindings in (container.ports or {}).values():
            ports.update(int(b["HostPort"]) for b in bindings or [])
    return ports


def remove_volumes(names: list[str]) -> list[str]:
    """Remove the named volumes that exist; return those removed."""
    import docker

    engine, removed = client(), []
    for name in names:
        try:
            engine.volumes.get(name).remove()
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as problem:
            raise Failed(f"could not remove volume {name}: {problem.explanation}") from None
        removed.append(name)
    return removed
