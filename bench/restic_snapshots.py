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
cgroup CPU time (restic alone); medians of the runs.
"""

import argparse
import json
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.lab import commit
from tests.lab import restic as lab_restic
from tests.lab.host import TOP, run
from unitgen import restic

FILL = ('i=0; while [ "$i" -lt "$1" ]; do restic backup --host fill --tag user=f$i '
        '/fill/home /fill/hostkeys >/dev/null || exit 1; i=$((i+1)); done')


def tiny_home(folder: Path) -> None:
    for tree in restic.TREES:
        (folder / tree).mkdir(parents=True)
        for number in range(20):
            (folder / tree / f"f{number}").write_bytes(os.urandom(2000))


def mounts(folder: Path, user: str, dst=restic.source) -> list[str]:
    return [f"--mount=type=bind,src={folder / t},dst={dst(user, t)},readonly"
            for t in restic.TREES]


def fill(lab: lab_restic.Lab, folder: Path, count: int) -> None:
    if count:
        run("docker", "run", *lab.flags(), *mounts(folder, "", lambda _u, t: f"/fill/{t}"),
            "--entrypoint", "/bin/sh", lab.images[0], "-c", FILL, "sh", str(count),
            timeout=7200)


def backup(lab: lab_restic.Lab, folder: Path, mode: str, cache: Path) -> dict:
    extra = []
    if mode == "parent":
        extra = ["--parent", restic.pick(lab.snapshots("--tag", "user=probe"), "probe").id]
    flags = lab.flags(cache="" if mode == "persistent" else "tmpfs")
    if mode == "persistent":
        flags.append(f"--mount=type=bind,src={cache},dst=/cache")
    start = time.monotonic()
    done = run("docker", "run", *flags, *mounts(folder, "probe"), "--entrypoint", "/bin/sh",
               lab.images[0], "-c", lab_restic.MEASURED, "sh",
               *restic.backup_command("probe", "bench"), *extra)
    return {**lab_restic.cgroup_figures(done.stderr), "wall_s": time.monotonic() - start}


def measure(lab: lab_restic.Lab, folder: Path, cache: Path, runs: int) -> dict:
    backup(lab, folder, "persistent", cache)  # warms the persistent cache
    result = {}
    for mode in ("tmpfs", "persistent", "parent"):
        figures = [backup(lab, folder, mode, cache) for _ in range(runs)]
        result[mode] = {key: round(statistics.median(f[key] for f in figures), 3)
                        for key in ("cpu_s", "wall_s", "mem_max_mib")}
    result["index_files"] = int(lab.server_exec("ls /srv/restic/index | wc -l").stdout)
    result["snapshots"] = int(lab.server_exec("ls /srv/restic/snapshots | wc -l").stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.restic_snapshots",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snapshots", default="0,500,1500")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--prefix", default=os.environ.get("RESTIC_LAB_PREFIX",
                                                           "wormhole-bench-restic-"))
    args = parser.parse_args()
    images = lab_restic.build_images(args.prefix)
    started = datetime.now(UTC)
    result = {"started": started.isoformat(timespec="seconds"), **commit(),
              "runs": args.runs, "load_before": os.getloadavg(), "sizes": []}
    lab = lab_restic.Lab(f"{args.prefix}snap-", images).start()
    try:
        lab.script("restic-init", writable_secrets=True)
        folder, cache = lab.folder / "probe", lab.folder / "cache"
        tiny_home(folder)
        tiny_home(lab.folder / "filler")
        cache.mkdir()
        backup(lab, folder, "tmpfs", cache)
        done = 0
        for target in [int(n) for n in args.snapshots.split(",")]:
            fill(lab, lab.folder / "filler", target - done)
            done = target
            result["sizes"].append({"filled": target, **measure(lab, folder, cache, args.runs)})
            print(json.dumps(result["sizes"][-1]), flush=True)
        lab.command("prune")
        result["after_prune"] = measure(lab, folder, cache, args.runs)
        print("after prune", json.dumps(result["after_prune"]), flush=True)
    finally:
        lab.destroy()
    result["minutes"] = round((datetime.now(UTC) - started).total_seconds() / 60, 1)
    out = TOP / "bench" / "results" / f"{started:%Y-%m-%d}-restic-snapshots.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
