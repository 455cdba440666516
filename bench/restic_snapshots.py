"""How the cost of one idle restic backup grows with the snapshots in the repository.

    python -m bench.restic_snapshots [--snapshots 0,500,1500] [--runs 5]

restic 0.14 finds a backup's parent by reading every snapshot in the repository, and
reads every index file; both grow with each backup until prune merges the index. The
benchmark fills a repository with snapshots of other (tiny) homes, and at each size
times the backup of one idle home `--runs` times:
- `tmpfs`: the cache in an empty tmpfs, as the units run it;
- `persistent`: a cache folder kept on the host between runs (warmed first);
- `parent`: an empty tmpfs cache, with the parent snapshot given (`--parent ID`);
and once more after `prune` has merged the index. CPU is the backup container's
cgroup CPU time (restic alone); medians of the runs. The containers get the backup
unit's flags and script (tests.lab.backup.Runner) and run on the outer engine against a
repository server of their own (tests.lab.backup.RepoServer), named from
WORMHOLE_LAB_PREFIX and removed at the end.
"""

import argparse
import json
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.lab import commit
from tests.lab.backup import BACKUP_IMAGE, RepoServer, Runner, build_images
from tests.lab.host import TOP, run
from unitgen import restic

FILL = ('i=0; while [ "$i" -lt "$1" ]; do restic backup --host fill --tag user=f$i '
        '/fill/home /fill/hostkeys >/dev/null || exit 1; i=$((i+1)); done')


def tiny_home(folder: Path) -> None:
    for tree in restic.TREES:
        (folder / tree).mkdir(parents=True)
        for number in range(20):
            (folder / tree / f"f{number}").write_bytes(os.urandom(2000))
    (folder / restic.RECORD).write_text('name = "probe"\n')


def fill(runner: Runner, folder: Path, count: int) -> None:
    if count:
        mounts = [f"--mount=type=bind,src={folder / t},dst=/fill/{t},readonly"
                  for t in restic.TREES]
        run("docker", "run", *runner.flags(cache="tmpfs"), *mounts, "--entrypoint", "/bin/sh",
            BACKUP_IMAGE, "-c", FILL, "sh", str(count), timeout=7200)


def backup(runner: Runner, folder: Path, mode: str, cache: Path) -> dict:
    extra = ()
    if mode == "parent":
        found = runner.snapshots("--tag", "user=probe")
        extra = ("--parent", restic.pick(found, "probe", restic.Pick(), "bench").id)
    start = time.monotonic()
    figures = runner.backup("probe", folder, cache=str(cache) if mode == "persistent"
                            else "tmpfs", extra=extra)
    return {**figures, "wall_s": time.monotonic() - start}


def measure(runner: Runner, folder: Path, cache: Path, runs: int) -> dict:
    backup(runner, folder, "persistent", cache)  # warms the persistent cache
    result = {}
    for mode in ("tmpfs", "persistent", "parent"):
        figures = [backup(runner, folder, mode, cache) for _ in range(runs)]
        result[mode] = {key: round(statistics.median(f[key] for f in figures), 3)
                        for key in ("cpu_s", "wall_s", "mem_max_mib")}
    for kind in ("index", "snapshots"):
        result[f"{kind}_files" if kind == "index" else kind] = int(
            runner.server.exec(f"ls /srv/restic/{kind} | wc -l").stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.restic_snapshots",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snapshots", default="0,500,1500")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    build_images()
    started = datetime.now(UTC)
    result = {"started": started.isoformat(timespec="seconds"), **commit(),
              "runs": args.runs, "load_before": os.getloadavg(), "sizes": []}
    server = RepoServer("bench-snap").start()
    try:
        runner = Runner(server)
        runner.measured("init")
        folder, cache = runner.folder / "probe", runner.folder / "probe-cache"
        tiny_home(folder)
        tiny_home(runner.folder / "filler")
        cache.mkdir()
        backup(runner, folder, "tmpfs", cache)
        done = 0
        for target in [int(n) for n in args.snapshots.split(",")]:
            fill(runner, runner.folder / "filler", target - done)
            done = target
            result["sizes"].append({"filled": target,
                                    **measure(runner, folder, cache, args.runs)})
            print(json.dumps(result["sizes"][-1]), flush=True)
        runner.measured("prune", cache="tmpfs")
        result["after_prune"] = measure(runner, folder, cache, args.runs)
        print("after prune", json.dumps(result["after_prune"]), flush=True)
    finally:
        server.destroy()
    result["minutes"] = round((datetime.now(UTC) - started).total_seconds() / 60, 1)
    out = args.out or TOP / "bench" / "results" / f"{started:%Y-%m-%d}-restic-snapshots.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
