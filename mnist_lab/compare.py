"""Compare runs and sweeps without a W&B account: ``python -m mnist_lab.compare PATH...``.

Like W&B's runs table: one row per run, the overridden config keys as columns,
then status, best validation error, test error, epochs, wall time and
images/s, sorted by validation error. Runs that differ only in ``seed`` are also
aggregated per configuration (n, mean, sample standard deviation with n − 1).
``--plot FILE`` draws every run's validation-error curve on one figure. The
sweep summaries (``sweep_summary.md/.csv``) are made by the same code
(:mod:`mnist_lab.sweeps.report`).
"""

from __future__ import annotations

import argparse
import sys

from .errors import UserError
from .sweeps.report import FORMATS, plot_runs, report
from .sweeps.runs import find_runs


def main(argv: list[str] | None = None) -> int:
    """Command line: print the table; exit 2 when no path holds a run."""
    parser = argparse.ArgumentParser(
        prog="python -m mnist_lab.compare",
        description="Compare runs and sweeps: one row per run, sorted by validation error.")
    parser.add_argument("paths", nargs="+", help="run directories or sweep directories")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table (default), markdown or csv (error rates as fractions)")
    parser.add_argument("--aggregate", action="store_true",
                        help="print only the aggregate over seeds (n, mean, sample std)")
    parser.add_argument("--plot", metavar="FILE",
                        help="write the validation-error curves here (.png, .pdf or .svg)")
    args = parser.parse_args(argv)
    skipped: list[str] = []
    try:
        runs = find_runs(args.paths, skipped)
        text = report(runs, args.format, aggregate_only=args.aggregate)
        plot = plot_runs(runs, args.plot) if args.plot else None
    except (FileNotFoundError, ValueError, OSError, UserError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    finally:
        for note in skipped:
            print(note, file=sys.stderr)
    print(text, end="")
    if plot:
        print(f"\nvalidation-error curves: {plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
