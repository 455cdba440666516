"""A stand-in for unitgen.edge.Live that records what operations ask of systemd and the
engine, and answers from plain data: the fast tests drive unitgen.ops with it."""

from unitgen.names import generation_of


class FakeEdge:
    live = True

    def __init__(self, images: dict[str, str] | None = None, broken: set[int] = frozenset(),
                 busy: set[int] = frozenset()) -> None:
        self.calls: list[tuple] = []
        self.images = dict(images or {"wormhole:latest": "sha256:old"})
        self.broken = set(broken)  # ports whose sshd does not answer
        self.busy = frozenset(busy)
        self.volumes: set[str] = set()
        self.running: dict[str, str] = {}  # container -> image id
        self.active_units: set[str] = set()

    def _record(self, *call: object) -> None:
        self.calls.append(call)

    def check(self) -> None:
        self._record("check")

    def daemon_reload(self) -> None:
        self._record("daemon-reload")

    def start(self, *units: str) -> None:
        self._record("start", *units)

    def stop(self, *units: str) -> None:
        self._record("stop", *units)

    def restart(self, *units: str) -> None:
        self._record("restart", *units)

    def reset_failed(self, *units: str) -> None:
        self._record("reset-failed", *units)

    def try_reload(self, *units: str) -> None:
        self._record("try-reload", *units)

    def results(self, units: list[str]) -> dict[str, str]:
        return dict.fromkeys(units, "success")

    def active(self, unit: str) -> bool:
        return unit in self.active_units

    def create_volumes(self, name: str, volumes: tuple[str, ...]) -> None:
        self.volumes |= set(volumes)

    def volumes_of(self, name: str) -> list[str]:
        return sorted(v for v in self.volumes if generation_of(name, v) is not None)

    def remove_volumes(self, volumes: list[str]) -> list[str]:
        gone = [v for v in volumes if v in self.volumes]
        self.volumes -= set(gone)
        return gone

    def extract(self, image: str, archive: object, name: str, volumes: tuple[str, str]) -> None:
        self._record("extract", name, *volumes)
        self.volumes |= set(volumes)

    def clear_restores(self, name: str) -> None:
        self._record("clear-restores", name)

    def running_image(self, container: str) -> str | None:
        return self.running.get(container)

    def image_id(self, reference: str) -> str | None:
        return self.images.get(reference)

    def has_image(self, reference: str) -> bool:
        return reference in self.images

    def answers(self, address: str, port: int, timeout: float) -> bool:
        return port not in self.broken

    def busy_ports(self) -> frozenset[int]:
        return self.busy

    def restarted(self) -> list[str]:
        return [unit for call in self.calls if call[0] == "restart" for unit in call[1:]]
