"""How many people move when a fourth host joins three, placed from scratch, and how long
placement takes. Pure computation, no hosts: python -m bench.placement_moves [TRIALS]"""

import random
import statistics
import sys
import time

from unitgen.placement import FleetHost, FleetPerson, place


def fleet(count: int, people: int) -> list[FleetHost]:
    return [FleetHost(f"h{n}", f"10.0.0.{n + 1}", people=people) for n in range(count)]


def crowd(names: list[str]) -> list[FleetPerson]:
    return [FleetPerson(name, 512 << 20) for name in names]


def random_names(count: int, rng: random.Random) -> list[str]:
    found: set[str] = set()
    while len(found) < count:
        found.add("u" + "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=7)))
    return sorted(found)


def moves(people: list[FleetPerson], capacity: int) -> tuple[float, int]:
    """The share that moves from 3 to 4 hosts, and how many of the moves go elsewhere."""
    before = place(fleet(3, capacity), people).host_of()
    after = place(fleet(4, capacity), people).host_of()
    moved = [name for name in before if before[name] != after[name]]
    return len(moved) / len(people), sum(after[name] != "h3" for name in moved)


def main(trials: int) -> None:
    rng = random.Random(19)
    for count, capacity in ((60, 100_000), (60, 25), (60, 22), (500, 100_000), (500, 175)):
        fixed, _ = moves(crowd([f"p{n:03d}" for n in range(count)]), capacity)
        runs = [moves(crowd(random_names(count, rng)), capacity) for _ in range(trials)]
        shares = [share for share, _ in runs]
        over = sum(share > 0.30 for share in shares)
        print(f"{count} people, people = {capacity} per host: p000.. move {fixed:.3f}; "
              f"{trials} random name sets: median {statistics.median(shares):.3f}, "
              f"max {max(shares):.3f}, above 0.30 in {over}; moves not onto the new host: "
              f"max {max(other for _, other in runs)}")
    for count, hosts in ((500, 4), (5000, 20)):
        people = crowd([f"p{n:04d}" for n in range(count)])
        times = []
        for _ in range(5):
            start = time.process_time()
            place(fleet(hosts, 100_000), people)
            times.append(time.process_time() - start)
        print(f"place {count} people on {hosts} hosts: median of 5 {statistics.median(times):.3f}"
              " s CPU")


if __name__ == "__main__":
    main(int(sys.argv[1]) if sys.argv[1:] else 100)
