"""What backups cost: restic (one deduplicated, compressed repository on a remote) against
today's scheme (a full tar.gz per person per day beside the data, the newest 7 kept).

    python -m bench.backup_size [--homes 20] [--days 7] [--idle 100,500]

Part 1, size: `--homes` homes of 5 to 10 MB of mixed content (small text files, large
text files, random binary files; seeded), backed up once a day for `--days` days by
both schemes. Before each day after the first, 1 % of each home's bytes change: in-place
rewrites of random ranges of up to 64 KiB (80 % of the budget; `--pattern files`: whole
files written anew instead) and new small files (20 %). Reported per
day: each scheme's stored bytes against one full copy (the homes' bytes), and the wall
time and CPU of the round.

Part 2, idle homes: `--idle N` tiny homes (20 files, 40 kB) backed up once (which fills
a cache folder on the host shared by all backups), then one round with nothing changed
per cache mode: that folder (as the units keep it), an empty tmpfs, none (--no-cache).

CPU is the sum over each round's containers of their cgroup's CPU time (restic or tar
and gzip themselves); the engine's own work to start the containers is given apart, as
the CPU that dockerd and containerd used during the round. Everything runs on the outer
engine: the backup image as `unitgen image build --backup` builds it, its containers with
the backup unit's flags and script (tests.lab.backup.Runner), a repository server
(tests.lab.backup.RepoServer); all named from WORMHOLE_LAB_PREFIX and removed at the end.
The old scheme's script is taken from git, as it was before restic replaced it (OLD).
"""

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, StrictUndefined

from bench.lab import commit
from tests.lab.backup import BACKUP_IMAGE, RepoServer, Runner, build_images, cgroup_figures
from tests.lab.host import TOP, run

KIB, MIB = 2**10, 2**20
KEEP = 7  # today's default backup_keep
ARCHIVE_IMAGE = "debian:bookworm-slim"  # the same tar and gzip as the workspace image's
OLD = "9c90792^:units/libexec/backup"  # the tar.gz scheme's script, last seen in git there
# The old script, then its container's cgroup figures as tests.lab.backup.MEASURED prints.
ARCHIVE_MEASURED = (
    '/bin/sh /opt/wormhole/backup "$@"; s=$?\n'
    'cpu=$(cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null || '
    "echo $(($(sed -n 's/^usage_usec //p' /sys/fs/cgroup/cpu.stat) * 1000)))\n"
    'mem=$(cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes 2>/dev/null || '
    'cat /sys/fs/cgroup/memory.peak 2>/dev/null || echo 0)\n'
    'echo "cgroup cpu_ns=$cpu mem_max=$mem" >&2\n'
    "exit $s\n"
)


# ---------------------------------------------------------------- the homes and their days

def words(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(3000)]


def text(rng: random.Random, vocabulary: list[str], size: int) -> bytes:
    """Prose-like text: compresses about 2.5 times, and is unique to its file."""
    chosen = rng.choices(vocabulary, k=size // 6 + 8)
    return "\n".join(" ".join(chosen[i:i + 12]) for i in range(0, len(chosen), 12)) \
        .encode()[:size]


def make_home(folder: Path, rng: random.Random, vocabulary: list[str]) -> int:
    """One home of 5 to 10 MB: 55 % small text files, 15 % large text files, 30 % random
    binary files; owned by uid 1000 as in a workspace. Returns its size."""
    target = rng.randint(5 * MIB, 10 * MIB)
    user = folder / "home" / "user"
    plan = [("small", 0.55, 2 * KIB, 64 * KIB), ("large", 0.15, 512 * KIB, 1536 * KIB),
            ("binary", 0.30, 128 * KIB, 2 * MIB)]
    for kind, share, low, high in plan:
        budget, number = int(target * share), 0
        while budget > 0:
            size = min(budget, rng.randint(low, high))
            place = user / kind / f"d{number % 8}" / f"{kind}-{number}.{kind[:3]}"
            place.parent.mkdir(parents=True, exist_ok=True)
            place.write_bytes(rng.randbytes(size) if kind == "binary"
                              else text(rng, vocabulary, size))
            budget, number = budget - size, number + 1
    keys = folder / "hostkeys"
    keys.mkdir()
    (keys / "ssh_host_ed25519_key").write_bytes(rng.randbytes(411))
    (keys / "ssh_host_ed25519_key").chmod(0o600)
    write_record(folder)
    for path in [folder / "home", *(folder / "home").rglob("*")]:
        os.chown(path, 1000, 1000)
    return tree_bytes(folder)


def write_record(folder: Path) -> None:
    """The person's registry file, which the backup unit saves beside the trees."""
    (folder / "person.toml").write_text(f'name = "{folder.name}"\nport = 2200\n')


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def content(path: Path, rng: random.Random, vocabulary: list[str], size: int) -> bytes:
    return rng.randbytes(size) if path.suffix == ".bin" else text(rng, vocabulary, size)


def rewrite_ranges(files: list[Path], rng: random.Random, vocabulary: list[str], budget: int,
                   range_max: int) -> int:
    """In-place rewrites of random ranges of 1 KiB to `range_max`, in files picked in
    proportion to their size, as a program writing into its files does."""
    sizes, changed = [p.stat().st_size for p in files], 0
    while changed < budget:
        path = rng.choices(files, weights=sizes)[0]
        size = path.stat().st_size
        length = min(size, rng.randint(KIB, range_max), budget - changed + KIB)
        offset = rng.randint(0, size - length)
        with open(path, "r+b") as handle:
            handle.seek(offset)
            handle.write(content(path, rng, vocabulary, length))
        changed += length
    return changed


def rewrite_files(files: list[Path], rng: random.Random, vocabulary: list[str],
                  budget: int) -> int:
    """Whole files written anew (same size, new content), as an editor saves them: files
    no larger than what is left of the budget, picked at random."""
    changed = 0
    while changed < budget:
        fitting = [p for p in files if p.stat().st_size <= max(budget - changed, 2 * KIB)]
        if not fitting:
            break
        path = rng.choice(fitting)
        path.write_bytes(content(path, rng, vocabulary, path.stat().st_size))
        changed += path.stat().st_size
    return changed


def change_home(folder: Path, rng: random.Random, vocabulary: list[str], share: float,
                range_max: int, day: int, pattern: str = "ranges") -> int:
    """Change `share` of the home's bytes: rewrites (80 %) by `pattern`, and new text
    files of 4 to 32 KiB (20 %). Returns the bytes changed."""
    files = sorted(p for p in (folder / "home").rglob("*") if p.is_file())
    budget = int(sum(p.stat().st_size for p in files) * share)
    if pattern == "ranges":
        changed = rewrite_ranges(files, rng, vocabulary, int(budget * 0.8), range_max)
    else:
        changed = rewrite_files(files, rng, vocabulary, int(budget * 0.8))
    new = folder / "home" / "user" / "new" / f"day{day}"
    new.mkdir(parents=True, exist_ok=True)
    number = 0
    while changed < budget:
        size = rng.randint(4 * KIB, 32 * KIB)
        (new / f"note-{number}.txt").write_bytes(text(rng, vocabulary, size))
        changed, number = changed + size, number + 1
    for path in [new.parent, new, *new.iterdir()]:
        os.chown(path, 1000, 1000)
    return changed


def make_idle_home(folder: Path, rng: random.Random) -> None:
    (folder / "home" / "user").mkdir(parents=True)
    for number in range(20):
        (folder / "home" / "user" / f"f{number}").write_bytes(rng.randbytes(2000))
    (folder / "hostkeys").mkdir()
    (folder / "hostkeys" / "ssh_host_ed25519_key").write_bytes(rng.randbytes(411))
    write_record(folder)


# ---------------------------------------------------------------- running a round

def engine_cpu() -> float:
    """CPU seconds the outer engine's dockerd and containerd have used so far (utime +
    stime); the engines of other people's lab hosts, in other mount namespaces, are left
    out."""
    total, ours = 0.0, os.readlink("/proc/self/ns/mnt")
    for name in ("dockerd", "containerd"):
        pids = subprocess.run(["pidof", name], capture_output=True, text=True).stdout.split()
        for pid in pids:
            try:
                if os.readlink(f"/proc/{pid}/ns/mnt") != ours:
                    continue
            except OSError:
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def container_cpu(name: str) -> float:
    """CPU seconds a running container has used so far, from its cgroup on the host."""
    full = run("docker", "inspect", "--format", "{{.Id}}", name).stdout.strip()
    v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{full}/cpuacct.usage")
    if v1.exists():
        return int(v1.read_text()) / 1e9
    for v2 in (Path(f"/sys/fs/cgroup/system.slice/docker-{full}.scope/cpu.stat"),
               Path(f"/sys/fs/cgroup/docker/{full}/cpu.stat")):
        if v2.exists():
            usage = dict(line.split() for line in v2.read_text().splitlines())
            return int(usage["usage_usec"]) / 1e6
    raise RuntimeError(f"no cgroup of {name} found")


def clients_cpu() -> float:
    """CPU seconds of this process's finished children: the docker clients."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def archive_backup(work: Path, name: str, folder: Path, archives: Path) -> dict:
    """The old wormhole-backup@NAME: its units/libexec/backup in a short-lived container."""
    (archives / name).mkdir(exist_ok=True, mode=0o700)
    done = run("docker", "run", "--rm", "--network", "none",
               "--read-only", "--cpu-shares", "256", "--memory", "256M",
               "--mount", f"type=bind,src={folder / 'home'},dst=/data/home,readonly",
               "--mount", f"type=bind,src={folder / 'hostkeys'},dst=/data/hostkeys,readonly",
               "--mount", f"type=bind,src={archives / name},dst=/backups",
               "--mount", f"type=bind,src={work / 'old'},dst=/opt/wormhole,readonly",
               "--entrypoint", "/bin/sh", ARCHIVE_IMAGE, "-c", ARCHIVE_MEASURED, "sh", name,
               str(KEEP))
    return cgroup_figures(done.stderr)


def restic_backup(runner: Runner, name: str, folder: Path, cache: str = "folder") -> dict:
    """`cache`: "folder" (the units' shared cache), "tmpfs", "none" (--no-cache), or a
    folder's path."""
    extra = ("--no-cache",) if cache == "none" else ()
    return runner.backup(name, folder, cache=cache, extra=extra)


def round_of(backup, homes: dict[str, Path], parallel: int, server: str, **kwargs) -> dict:
    """Every home backed up, `parallel` at a time: wall time, CPU, memory."""
    engine, client, start = engine_cpu(), clients_cpu(), time.monotonic()
    served = container_cpu(server)
    with ThreadPoolExecutor(parallel) as pool:
        figures = list(pool.map(lambda item: backup(*item, **kwargs), homes.items()))
    wall = time.monotonic() - start
    cpus = [f["cpu_s"] for f in figures]
    return {"wall_s": round(wall, 2), "cpu_s": round(sum(cpus), 2),
            "cpu_s_per_backup_median": round(statistics.median(cpus), 3),
            "repository_server_cpu_s": round(container_cpu(server) - served, 2),
            "engine_cpu_s": round(engine_cpu() - engine, 2),
            "docker_client_cpu_s": round(clients_cpu() - client, 2),
            "load_average_1min_after": round(os.getloadavg()[0], 2),
            "mem_max_mib": round(max(f["mem_max_mib"] for f in figures), 1)}


def write_old_script(work: Path) -> None:
    template = run("git", "-C", str(TOP), "show", OLD).stdout
    (work / "old").mkdir()
    rendered = Environment(undefined=StrictUndefined, keep_trailing_newline=True) \
        .from_string(template).render(source="units/libexec/backup")
    (work / "old" / "backup").write_text(rendered)


# ---------------------------------------------------------------- the two parts

def size_part(runner: Runner, work: Path, args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    vocabulary = words(rng)
    homes = {f"p{i:02d}": work / "homes" / f"p{i:02d}" for i in range(args.homes)}
    sizes = {name: make_home(folder, rng, vocabulary) for name, folder in homes.items()}
    archives = work / "archives"
    archives.mkdir()
    days = []
    for day in range(1, args.days + 1):
        changed = 0
        if day > 1:
            changed = sum(change_home(folder, rng, vocabulary, args.change, args.range_max, day,
                                      args.pattern) for folder in homes.values())
        full = sum(tree_bytes(folder) for folder in homes.values())
        days.append({
            "day": day, "full_copy_bytes": full, "changed_bytes": changed,
            "restic": {**round_of(lambda n, f: restic_backup(runner, n, f, "tmpfs"), homes,
                                  args.parallel, runner.server.name),
                       "stored_bytes": tree_bytes(runner.folder / "data")},
            "targz": {**round_of(lambda n, f: archive_backup(work, n, f, archives), homes,
                                 args.parallel, runner.server.name),
                      "stored_bytes": tree_bytes(archives)},
        })
        last = days[-1]
        print(f"day {day}: full copy {full / MIB:.1f} MiB, changed {changed / MIB:.2f} MiB; "
              f"restic {last['restic']['stored_bytes'] / MIB:.1f} MiB "
              f"({last['restic']['wall_s']} s, {last['restic']['cpu_s']} CPU-s); "
              f"tar.gz {last['targz']['stored_bytes'] / MIB:.1f} MiB "
              f"({last['targz']['wall_s']} s, {last['targz']['cpu_s']} CPU-s)", flush=True)
    final = days[-1]
    ratio = {scheme: round(final[scheme]["stored_bytes"] / final["full_copy_bytes"], 3)
             for scheme in ("restic", "targz")}
    return {"homes": args.homes, "initial_bytes": sum(sizes.values()), "days": days,
            "ratio_to_one_full_copy": ratio,
            "targets": {"restic at most 1.3 full copies": ratio["restic"] <= 1.3,
                        "today's about 7 full copies (archives are compressed)": ratio["targz"]}}


def idle_part(runner: Runner, count: int, parallel: int, modes: list[str]) -> dict:
    """The first round fills the repository and the persistent cache; then one idle round
    per cache mode."""
    rng = random.Random(count)
    homes = {f"i{i:03d}": runner.folder / "idle" / f"i{i:03d}" for i in range(count)}
    for folder in homes.values():
        make_idle_home(folder, rng)
    persistent = runner.folder / "cache"
    persistent.mkdir(exist_ok=True)
    caches = {"persistent": str(persistent), "tmpfs": "tmpfs", "none": "none"}
    result = {"homes": count, "parallel": parallel,
              "first": round_of(lambda n, f: restic_backup(runner, n, f, str(persistent)),
                                homes, parallel, runner.server.name)}
    print(f"idle {count}: first round {result['first']}", flush=True)
    for mode in modes:
        result[mode] = round_of(lambda n, f, c=caches[mode]: restic_backup(runner, n, f, c),
                                homes, parallel, runner.server.name)
        result[mode]["snapshots_in_repository"] = len(runner.snapshots())
        print(f"idle {count}, cache {mode}: {result[mode]}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.backup_size", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--homes", type=int, default=20)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--change", type=float, default=0.01, help="share of bytes per day")
    parser.add_argument("--range-max", type=int, default=64 * KIB,
                        help="largest in-place rewrite, bytes (default 64 KiB)")
    parser.add_argument("--pattern", choices=("ranges", "files"), default="ranges",
                        help="rewrites: random ranges in place (default), or whole files")
    parser.add_argument("--parallel", type=int, default=4, help="backups at once")
    parser.add_argument("--idle", default="100", help="idle-home counts, e.g. 100,500; 0: none")
    parser.add_argument("--idle-modes", default="persistent,tmpfs,none")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    build_images()
    started = datetime.now(UTC)
    result = {"started": started.isoformat(timespec="seconds"), **commit(),
              "restic": run("docker", "run", "--rm", BACKUP_IMAGE, "version").stdout.strip(),
              "cores": os.cpu_count(), "load_before": os.getloadavg(),
              "settings": {k: v for k, v in vars(args).items() if k != "out"}}
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as folder:
        work = Path(folder)
        write_old_script(work)
        if args.homes:
            with repository("bench-size") as runner:
                result["size"] = size_part(runner, work, args)
        for count in [int(c) for c in args.idle.split(",") if int(c)]:
            with repository(f"bench-idle{count}") as runner:
                result[f"idle_{count}"] = idle_part(runner, count, args.parallel,
                                                    args.idle_modes.split(","))
    result["minutes"] = round((datetime.now(UTC) - started).total_seconds() / 60, 1)
    suffix = "" if args.pattern == "ranges" else f"-{args.pattern}"
    out = args.out or TOP / "bench" / "results" / f"{started:%Y-%m-%d}-backup-size{suffix}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


@contextmanager
def repository(name: str) -> Iterator[Runner]:
    """A fresh repository server and its runner, the repository created; removed after."""
    server = RepoServer(name).start()
    try:
        runner = Runner(server)
        runner.measured("init")
        yield runner
    finally:
        server.destroy()


if __name__ == "__main__":
    main()
