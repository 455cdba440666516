"""python -m bench --workspaces N [--ways unitgen,seed,parallel,attached] [--sweep]
[--idle SECONDS] [--logins K]: run the same N workspaces several ways on a fresh lab host
and compare (unitgen-volumes, unitgen with homes on volumes, only when named)."""

import argparse
import time
from datetime import UTC, datetime

from bench import report
from bench.lab import commit, lab_host, machine, measured, public_key, step, wipe
from bench.measure import measure
from bench.ways import DEFAULT, FIRST_PORT, WAYS, Person, people, write_people
from tests.lab.host import TOP, Host

PORT_MAX = 2999
SWEEP = (1, 2, 5, 10)  # tenths of N: 50, 100, 250, 500 for N = 500


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run the same N "
                                     "workspaces several ways on a fresh lab host and compare.")
    parser.add_argument("--workspaces", type=int, required=True, metavar="N")
    parser.add_argument("--ways", default=",".join(DEFAULT), type=lambda text: text.split(","))
    parser.add_argument("--sweep", action="store_true",
                        help="also measure at N/10, N/5 and N/2")
    parser.add_argument("--idle", type=float, default=60, metavar="SECONDS",
                        help="how long all N sit idle for the CPU figure")
    parser.add_argument("--logins", type=int, default=200, metavar="K",
                        help="timed logins with N running, and with 1 running")
    parser.add_argument("--tries", type=int, default=50, metavar="K",
                        help="logins tried at random moments early in each start")
    parser.add_argument("--window", type=float, default=120, metavar="SECONDS",
                        help="...in its first SECONDS")
    args = parser.parse_args()
    unknown = sorted(set(args.ways) - set(WAYS))
    if unknown or not args.ways:
        parser.error(f"--ways: unknown way {unknown}; choose from {','.join(WAYS)}")
    if not 1 <= args.workspaces <= PORT_MAX - FIRST_PORT + 1:
        parser.error(f"--workspaces: give 1 to {PORT_MAX - FIRST_PORT + 1}")
    if args.idle <= 0 or args.logins < 1 or args.tries < 0 or args.window <= 0:
        parser.error("--idle and --window must be above 0, --logins at least 1 and --tries "
                     "at least 0")
    return args


def sizes(n: int, sweep: bool) -> list[int]:
    return sorted({max(1, n * tenths // 10) for tenths in SWEEP}) if sweep else [n]


def one_way(host: Host, name: str, everyone: list[Person], key: str,
            args: argparse.Namespace) -> dict:
    """Clear the host, then measure one way."""
    step(f"{name} N={len(everyone)}: clearing the host")
    began = time.monotonic()
    wipe(host)
    write_people(host, everyone, key)
    cleared = time.monotonic()
    figures = measure(host, WAYS[name], everyone, key, args.idle, args.logins,
                      (args.tries, args.window))
    return {**figures, "clear_s": cleared - began, "wall_s": time.monotonic() - began}


def run(args: argparse.Namespace) -> dict:
    document = {"started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "complete": False, "unitgen": commit(),
                "settings": {"workspaces": args.workspaces, "ways": args.ways,
                             "sizes": sizes(args.workspaces, args.sweep), "idle_s": args.idle,
                             "logins": args.logins, "tries": args.tries,
                             "window_s": args.window},
                "runs": []}
    with lab_host() as host:
        document["machine"] = machine(host)
        key = public_key(host)
        for n in document["settings"]["sizes"]:
            everyone = people(n)
            document["runs"].append({"workspaces": n, "ways": {}})
            for name in args.ways:
                document["runs"][-1]["ways"][name] = one_way(host, name, everyone, key, args)
                report.write(document)
            document["runs"][-1]["targets"] = report.targets(document["runs"][-1],
                                                             document["machine"]["cores"])
    document["finished"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document["complete"] = True
    return document


def main() -> None:
    args = parse()
    document = measured(run, args)
    result = report.write(document)
    image = report.plot(document)
    print(report.table(document))
    print(report.verdicts(document))
    print(f"results: {result.relative_to(TOP)}\nplot: {image.relative_to(TOP)}")


if __name__ == "__main__":
    main()
