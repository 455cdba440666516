"""The result file, its plot and the table."""

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = (  # heading, width, how to get the figure from one way's figures
    ("N", 5, None),
    ("way", 15, None),
    ("up s", 7, lambda w: w["bringup"]["seconds"]),
    ("up cpu", 6, lambda w: w["bringup"]["cpu_s"]),
    ("failed", 6, lambda w: w["bringup"]["failed"]),
    ("MiB/ws", 6, lambda w: w["memory_mib"]["total"]),
    ("shim", 5, lambda w: w["memory_mib"]["shim"]),
    ("sup", 5, lambda w: w["memory_mib"]["supervisor"]),
    ("cont", 5, lambda w: w["memory_mib"]["container"]),
    ("engine", 6, lambda w: w["memory_mib"]["dockerd"] + w["memory_mib"]["containerd"]),
    ("kmem", 5, lambda w: w["memory_mib"].get("kmem")),
    ("p50 N", 6, lambda w: w["login_ms"]["all"]["p50"]),
    ("p95 N", 6, lambda w: w["login_ms"]["all"]["p95"]),
    ("p50 1", 6, lambda w: w["login_ms"]["one"]["p50"]),
    ("p95 1", 6, lambda w: w["login_ms"]["one"]["p95"]),
    ("idle%", 6, lambda w: w["idle_cpu"]["percent_of_one_core"]),
    ("status s", 8, lambda w: w.get("status", {}).get("median_s")),
    ("tries out", 9, lambda w: _lockout(w, "refused") + _lockout(w, "failed")
     if "lockout" in w["bringup"] else None),
    ("try p95", 7, lambda w: w["bringup"].get("lockout", {}).get("p95_s")),
)


def _lockout(way: dict, outcome: str) -> int:
    return way["bringup"]["lockout"][outcome]


def targets(run: dict, cores: int) -> dict:
    """Issue 7's targets at one N, judged on the unitgen way (and the seed's, for the
    bring-up). floor_s: the least CPU any way here spent on its bring-up, spread evenly
    over the cores; no way doing the same work is up sooner on this machine."""
    unitgen, seed = run["ways"].get("unitgen"), run["ways"].get("seed")
    if unitgen is None:
        return {}
    logins, status = unitgen["login_ms"], unitgen.get("status", {}).get("median_s")
    found = {
        "no_failures": unitgen["bringup"]["failed"] == 0,
        "memory_at_most_6_mib": unitgen["memory_mib"]["total"] <= 6,
        "login_p95_at_most_twice_one": logins["all"]["p95"] <= 2 * logins["one"]["p95"],
        "status_at_most_1_s": None if status is None else status <= 1,
    }
    volumes = run["ways"].get("unitgen-volumes")
    if volumes is not None:  # issue 18: disks cost at most a tenth more than volumes
        up, before = unitgen["bringup"]["seconds"], volumes["bringup"]["seconds"]
        found["disks_bringup_within_10_percent"] = None if None in (up, before) else \
            up <= 1.1 * before
        found["disks_memory_within_10_percent"] = \
            unitgen["memory_mib"]["total"] <= 1.1 * volumes["memory_mib"]["total"]
    found.update(second_round(run))
    if seed is not None and seed["bringup"]["seconds"] is not None:
        up = unitgen["bringup"]["seconds"]
        half = seed["bringup"]["seconds"] / 2
        found["bringup_at_most_half_of_seed"] = up is not None and up <= half
        found["bringup"] = {"unitgen_s": up, "half_of_seed_s": half,
                            "floor_s": min(w["bringup"]["cpu_s"] for w in run["ways"].values())
                            / cores}
    return found


def second_round(run: dict) -> dict:
    """Issue 20's targets that this run measured: nobody locked out during the start (the
    logins tried then: none refused or failed, p95 at most 5 s), CPU per start no more than
    the seed's, bring-up no slower than the parallel way's, idle CPU no more than the
    seed's."""
    ways = run["ways"]
    unitgen, seed, parallel = ways["unitgen"], ways.get("seed"), ways.get("parallel")
    found = {}
    tried = unitgen["bringup"].get("lockout")
    if tried and tried["tries"]:
        found["nobody_locked_out"] = tried["refused"] == tried["failed"] == 0 and \
            tried["p95_s"] is not None and tried["p95_s"] <= 5
    if seed is not None:
        found["cpu_per_start_at_most_seed"] = \
            unitgen["bringup"]["cpu_s"] <= seed["bringup"]["cpu_s"]
        found["idle_cpu_at_most_seed"] = unitgen["idle_cpu"]["percent_of_one_core"] <= \
            seed["idle_cpu"]["percent_of_one_core"]
    if parallel is not None:
        up, theirs = unitgen["bringup"]["seconds"], parallel["bringup"]["seconds"]
        found["bringup_at_most_parallel"] = None if None in (up, theirs) else up <= theirs
    n = run["workspaces"]
    found["cpu_per_start_s"] = {name: w["bringup"]["cpu_s"] / n for name, w in ways.items()}
    return found


def verdicts(document: dict) -> str:
    lines = []
    for run in document["runs"]:
        found = run.get("targets", {})
        lines += [f"N={run['workspaces']} {name}: {'met' if met else 'NOT met'}"
                  for name, met in found.items() if isinstance(met, bool)]
        if "cpu_per_start_s" in found:
            lines.append(f"N={run['workspaces']} CPU per start (core-s): " + ", ".join(
                f"{way} {seconds:.2f}" for way, seconds in found["cpu_per_start_s"].items()))
        if "bringup" in found:
            b = found["bringup"]
            lines.append(f"N={run['workspaces']} bring-up: unitgen {cell(b['unitgen_s'], 0)} s,"
                         f" half of the seed's {b['half_of_seed_s']:.1f} s, the least bring-up "
                         f"CPU over the cores {b['floor_s']:.1f} s")
    return "\n".join(lines)


def paths(document: dict) -> tuple[Path, Path]:
    day = document["started"][:10]
    stem = RESULTS / f"{day}-{document['settings']['workspaces']}"
    return stem.with_suffix(".json"), stem.with_suffix(".png")


def write(document: dict) -> Path:
    return save(paths(document)[0], document)


def save(result: Path, document: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    result.write_text(json.dumps(document, indent=1) + "\n")
    return result


def cell(value: object, width: int) -> str:
    if value is None:
        return "-".rjust(width)
    if isinstance(value, float):
        return f"{value:{width}.{1 if value >= 10 else 2}f}"
    return str(value).rjust(width)


def table(document: dict) -> str:
    lines = [" ".join(heading.rjust(width) for heading, width, _ in COLUMNS)]
    for run in document["runs"]:
        for name, figures in run["ways"].items():
            values = [run["workspaces"], name, *(get(figures) for _, _, get in COLUMNS[2:])]
            lines.append(" ".join(cell(v, width) for v, (_, width, _) in zip(values, COLUMNS,
                                                                             strict=True)))
    return "\n".join(lines)


def nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else value


def plot(document: dict) -> Path:
    """Bring-up time and memory per workspace against N, one line per way; a bring-up
    with failures has no point."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (up, mem) = pyplot.subplots(1, 2, figsize=(11, 4.5))
    for way in document["settings"]["ways"]:
        points = [(run["workspaces"], run["ways"][way]) for run in document["runs"]
                  if way in run["ways"]]
        n = [size for size, _ in points]
        up.plot(n, [nan_if_none(w["bringup"]["seconds"]) for _, w in points], "o-", label=way)
        mem.plot(n, [w["memory_mib"]["total"] for _, w in points], "o-", label=way)
    machine = document["machine"]
    for axes, title in ((up, "bring-up: start until every ssh login works (s)"),
                        (mem, "host memory per idle workspace (MiB PSS)")):
        axes.set_title(title, fontsize=10)
        axes.set_xlabel("workspaces (N)")
        axes.set_ylim(bottom=0)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(f"unitgen {document['unitgen']['commit'][:10]}, {machine['cores']} cores, "
                    f"{machine['memory_gib']:.0f} GiB, {document['started']}", fontsize=10)
    figure.tight_layout()
    _, image = paths(document)
    figure.savefig(image, dpi=100)
    pyplot.close(figure)
    return image
