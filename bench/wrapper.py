"""How long unitgen takes through the wrapper on a host without Python: `unitgen --help` and
`unitgen list`, each run 10 times (after 2 to warm up) inside a fresh Fedora CoreOS-like lab
host with the CLI image present, as the admin runs them. Medians and spreads go to a result
file. Run: python -m bench.wrapper [--runs 10]"""

import argparse
import json
import os
import platform
import statistics
import time

from tests.lab.host import TOP, Host, run
from unitgen import render
from unitgen.model import Host as Described
from unitgen.model import Settings

IMAGE = "wormhole-lab/unitgen:bench"
LAB = "wormhole-lab/fcos:1"
# Times each run in nanoseconds with the host's own date: the host has no Python.
TIMED = """
for i in $(seq "$1"); do
  start=$(date +%s%N); unitgen $2 >/dev/null 2>&1 || exit 1; end=$(date +%s%N)
  echo $((end - start))
done
"""


def measure(host: Host, command: str, runs: int, warmup: int) -> dict:
    host.exec("bash", "-lc", TIMED, "timed", str(warmup), command)
    nanos = [int(n) for n in host.exec("bash", "-lc", TIMED, "timed", str(runs),
                                       command).stdout.split()]
    seconds = [n / 1e9 for n in nanos]
    return {"command": f"unitgen {command}", "runs": runs, "median_s": statistics.median(seconds),
            "min_s": min(seconds), "max_s": max(seconds), "all_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    run(str(TOP / ".venv/bin/unitgen"), "image", "build", "--cli", "--tag", IMAGE, timeout=900)
    host = Host.start(f"wormhole-bench-wrapper-{os.getpid()}", image=LAB)
    try:
        host.load_image(IMAGE)
        host.put("/usr/local/bin/unitgen", render.wrapper(Described(Settings(cli_image=IMAGE))))
        host.exec("chmod", "0755", "/usr/local/bin/unitgen")
        load = os.getloadavg()[0]
        figures = [measure(host, command, args.runs, args.warmup) for command in ("--help", "list")]
    finally:
        host.destroy()
    result = {"date": time.strftime("%Y-%m-%d"), "machine": platform.node(),
              "cores": os.cpu_count(), "load_average_1m": load, "target_s": 1.5,
              "figures": figures,
              "met": figures[0]["median_s"] <= 1.5}
    out = TOP / "bench/results" / f"{result['date']}-wrapper.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    for figure in figures:
        print(f"{figure['command']}: median {figure['median_s']:.2f} s "
              f"(min {figure['min_s']:.2f}, max {figure['max_s']:.2f}, {figure['runs']} runs)")
    print(f"target unitgen --help <= 1.5 s: {'met' if result['met'] else 'NOT met'}; {out}")


if __name__ == "__main__":
    main()
