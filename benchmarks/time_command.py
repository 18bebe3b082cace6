"""Wall time of a whole command, repeated: prints each run and the median (seconds).

    python benchmarks/time_command.py -n 3 -- python run.py hydra.run.dir=runs/seed{i}

``{i}`` in an argument becomes the repetition number (0, 1, ...), e.g. to give
each run its own directory. The command's output goes to ``--log`` (appended;
discarded without it), so only the timings print.
Use it on a quiet machine: timings share the CPU with everything else.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--log", type=Path, help="append the commands' output to this file")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    times = []
    for i in range(args.n):
        argv = [a.replace("{i}", str(i)) for a in command]
        out = open(args.log, "a") if args.log else subprocess.DEVNULL
        start = time.perf_counter()
        rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT).returncode
        times.append(time.perf_counter() - start)
        print(f"run {i}: {times[-1]:.1f} s (exit code {rc}): {' '.join(argv)}", flush=True)
        if rc != 0:
            return rc
    print(f"median of {args.n}: {statistics.median(times):.1f} s "
          f"(min {min(times):.1f}, max {max(times):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
