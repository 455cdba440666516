"""python -m bench.profile --workspaces N [--ways unitgen,seed]: where the CPU of one start
goes. On a fresh lab host, each way starts its N workspaces one at a time, each step run to
its end and then sshd's banner awaited, and the CPU each step used is split by process:
systemd and the commands it ran, dockerd, containerd and what they ran, the shims and runc,
the processes inside the container, and the start command itself. The rest of the host's
CPU counter (the kernel's own threads, softirqs) is `unattributed`."""

import argparse
import json
from datetime import UTC, datetime

from bench.lab import REMOTE, commit, lab_host, machine, measured, probe, public_key, step, wipe
from bench.ways import WAYS as BENCH_WAYS
from bench.ways import Person, people, write_people
from tests.lab.host import TOP, Host

RESULTS = TOP / "bench/results"
NETWORK = "bench-own"
# The steps of one start, each a shell command with $1 = NAME and $2 = PORT, and what runs
# once before the first (for unitgen, the shared network, so that no person's start pays for
# it; its hold sockets listen already, as the way's own set-up starts them as at boot).
UNITGEN = (["systemctl start wormhole-network.service"],
           ["systemctl start wormhole-data@$1.service", "systemctl start wormhole@$1"])
WAYS = {
    "unitgen": UNITGEN,
    "unitgen-volumes": UNITGEN,
    "seed": ([], [f"sh {REMOTE}/seed.sh $1 $2"]),
    # the seed's runs on a network like unitgen's (a bridge of its own, no traffic between
    # containers): what such a network adds to a start, the engine's DNS resolver above all
    "seed-own-network": ([f"docker network inspect {NETWORK} >/dev/null 2>&1 || docker "
                          f"network create --driver bridge --opt "
                          f"com.docker.network.bridge.enable_icc=false {NETWORK}"],
                         [f"NETWORK={NETWORK} sh {REMOTE}/seed.sh $1 $2"]),
}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.profile",
                                     description="Where the CPU of one start goes.")
    parser.add_argument("--workspaces", type=int, default=20, metavar="N")
    parser.add_argument("--ways", default="unitgen,seed", type=lambda text: text.split(","))
    parser.add_argument("--label", default="", help="a suffix for the result file's name")
    args = parser.parse_args()
    if set(args.ways) - set(WAYS) or not 1 <= args.workspaces <= 200:
        parser.error(f"--ways: choose from {','.join(WAYS)}; --workspaces: 1 to 200")
    return args


def profile_way(host: Host, way: str, everyone: list[Person], key: str) -> dict:
    step(f"{way}: clearing the host")
    wipe(host)
    write_people(host, everyone, key)
    if way in BENCH_WAYS:  # the bench's own set-up of the way: registered, holds listening
        BENCH_WAYS[way].prepare(host, everyone, key)
    once, steps = WAYS[way]
    for command in once:
        host.sh(command)
    step(f"{way}: starting {len(everyone)} workspaces one at a time")
    found = probe(host, "startcpu", "--names", ",".join(n for n, _ in everyone),
                  "--ports", ",".join(str(p) for _, p in everyone), *steps,
                  timeout=120 + 30 * len(everyone))
    n = len(everyone)
    result = []
    for done in found["steps"]:
        parts = {part: seconds / n for part, seconds in done["parts_s"].items()}
        parts["unattributed"] = done["total_s"] / n - sum(parts.values())
        result.append({"step": done["step"], "per_start_s": done["total_s"] / n,
                       "parts_s": dict(sorted(parts.items(), key=lambda kv: -kv[1]))})
    return {"steps": result, "per_start_s": sum(s["per_start_s"] for s in result)}


def table(document: dict) -> str:
    lines = []
    for way, found in document["ways"].items():
        lines.append(f"{way}: {1000 * found['per_start_s']:.0f} ms of CPU per start")
        for done in found["steps"]:
            lines.append(f"  {done['step']}: {1000 * done['per_start_s']:.0f} ms")
            lines += [f"    {1000 * seconds:6.0f}  {part}" for part, seconds in
                      done["parts_s"].items() if abs(seconds) >= 0.0005]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict:
    document = {"started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "unitgen": commit(), "workspaces": args.workspaces, "ways": {}}
    with lab_host("wormhole-bench-profile") as host:
        document["machine"] = machine(host)
        key = public_key(host)
        for way in args.ways:
            document["ways"][way] = profile_way(host, way, people(args.workspaces), key)
    return document


def main() -> None:
    args = parse()
    document = measured(run, args)
    suffix = f"-{args.label}" if args.label else ""
    path = RESULTS / f"{document['started'][:10]}-profile-{args.workspaces}{suffix}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(table(document))
    print(f"results: {path.relative_to(TOP)}")


if __name__ == "__main__":
    main()
