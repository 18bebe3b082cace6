"""Compare runs and sweeps without a W&B account: ``python -m mnist_lab.compare PATH...``.

Like W&B's runs table: one row per run, the overridden config keys as columns,
then status, best validation error, test error, epochs, wall time and
images/s, sorted by validation error. Runs that differ only in ``seed`` are also
aggregated per configuration (n, mean, sample standard deviation with n − 1).
``--plot FILE`` draws every run's validation-error curve on one figure.

The sweep summaries (``sweep_summary.md/.csv``) are made by this same code.
Runs are read through :class:`~mnist_lab.record.RunRecord`.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .job import NAME_EXCLUDES
from .record import LOST, RunRecord

FORMATS = ("table", "markdown", "csv")


@dataclass
class RunInfo:
    """One run's figures, as read from its record (error rates as fractions)."""

    path: Path
    overrides: dict[str, str]
    status: str
    val_best: float | None = None
    test_error: float | None = None
    epochs: float | None = None
    wall_s: float | None = None
    images_per_s: float | None = None
    error: str | None = None
    rows: list[dict[str, float]] = field(default_factory=list)


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    """``["model.depth=[4,8]", "seed=1"]`` → ``{"model.depth": "[4,8]", "seed": "1"}``."""
    return dict(o.lstrip("+~").split("=", 1) if "=" in o else (o, "") for o in overrides)


def read_run(run_dir: Path) -> RunInfo:
    """A run's :class:`RunInfo` from its record (a missing summary: status "not started").

    A run that stopped early has no final figures; its best validation error so
    far is taken from its ``metrics.csv``.
    """
    record = RunRecord(run_dir)
    summary, rows = record.read_summary() or {}, record.read_metrics()
    overrides = summary.get("overrides", record.overrides())
    val_best = summary.get("val/best_error")
    if val_best is None and rows:
        val_best = min(r["val/error"] for r in rows)
    return RunInfo(
        path=run_dir, overrides=parse_overrides(overrides),
        status=record.status(summary), val_best=val_best,
        test_error=summary.get("test/error"), epochs=summary.get("epochs"),
        wall_s=summary.get("wall_s"), images_per_s=summary.get("train/images_per_s"),
        error=summary.get("error"), rows=rows,
    )


def is_run_dir(path: Path) -> bool:
    """A directory with a run's record (a refused command's empty Hydra folder is not)."""
    return RunRecord(path).has_record()


def find_runs(paths: list[str | Path], skipped: list[str] | None = None) -> list[RunInfo]:
    """Runs named directly, and the runs inside sweep directories (any depth).

    A path that is not a directory, or holds no run (such as the folder of a
    command that stopped before its first record), is skipped; when
    ``skipped`` is given, a one-line note on each is appended to it.

    Raises:
        FileNotFoundError: no run at all in ``paths``.
    """
    runs: list[RunInfo] = []
    for path in map(Path, paths):
        found = [path] if is_run_dir(path) else sorted(
            (p for p in path.rglob("*") if p.is_dir() and is_run_dir(p)), key=_job_order)
        if not found and skipped is not None:
            skipped.append(f"skipped '{path}': " + ("no such directory" if not path.is_dir() else
                           "not a run or sweep (no summary.json, metrics.csv or checkpoint.pt)"))
        runs.extend(read_run(p) for p in found)
    if not runs:
        raise FileNotFoundError(f"no run or sweep in {', '.join(map(repr, map(str, paths)))} "
                                "(no summary.json, metrics.csv or checkpoint.pt)")
    return runs


def _job_order(path: Path) -> tuple:
    return (str(path.parent), int(path.name) if path.name.isdigit() else math.inf, path.name)


def _sort_key(run: RunInfo) -> tuple:
    return (run.val_best is None, run.val_best if run.val_best is not None else 0.0)


def varying_keys(runs: list[RunInfo]) -> list[str]:
    """Override keys whose value differs between runs (all keys for a single run).

    Keys that only say how or where a run ran (``logger``, ``trainer.device``,
    ``data.root``, ...: ``job.NAME_EXCLUDES``) are left out.
    """
    keys = list(dict.fromkeys(k for r in runs for k in r.overrides
                              if not k.startswith(NAME_EXCLUDES)))
    if len(runs) == 1:
        return keys
    return [k for k in keys if len({r.overrides.get(k) for r in runs}) > 1]


def _short(text: str, limit: int | None) -> str:
    """One line, cut to ``limit`` characters (None: whole)."""
    line = " ".join(text.split())
    return line if limit is None or len(line) <= limit else line[: limit - 1] + "…"


def _pct(x: float | None, as_fraction: bool) -> str:
    if x is None:
        return ""
    return f"{x:.6g}" if as_fraction else f"{100 * x:.2f}%"


def runs_table(runs: list[RunInfo], fractions: bool = False,
               base: Path | None = None) -> tuple[list[str], list[list[str]]]:
    """(columns, rows) of the runs table, sorted by best validation error.

    Error rates as percentages for people, or as fractions (``fractions``) for files.
    """
    keys = varying_keys(runs)
    errors = any(r.error for r in runs)
    columns = ["run", *keys, "status", "val/best_error", "test/error", "epochs",
               "wall_s", "images_per_s", *(["error"] if errors else [])]
    rows = []
    for r in sorted(runs, key=_sort_key):
        inside = base is not None and r.path.is_relative_to(base)
        name = str(r.path.relative_to(base)) if inside else str(r.path)
        rows.append([name, *(r.overrides.get(k, "") for k in keys), r.status,
                     _pct(r.val_best, fractions), _pct(r.test_error, fractions),
                     "" if r.epochs is None else f"{r.epochs:g}",
                     "" if r.wall_s is None else f"{r.wall_s:.1f}",
                     "" if r.images_per_s is None else f"{r.images_per_s:.0f}",
                     *([_short(r.error or "", None if fractions else 120)] if errors else [])])
    return columns, rows


@dataclass
class Aggregate:
    """Runs of one configuration that differ only in ``seed``."""

    config: dict[str, str]
    n: int
    val_mean: float
    val_std: float
    test_mean: float | None
    test_std: float | None


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n − 1 in the denominator; NaN for n = 1)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def aggregate_seeds(runs: list[RunInfo]) -> list[Aggregate]:
    """Completed runs grouped by their overrides without ``seed``; groups of n ≥ 2."""
    groups: dict[tuple, list[RunInfo]] = {}
    for r in runs:
        if r.status == "completed" and r.val_best is not None:
            config = tuple(sorted((k, v) for k, v in r.overrides.items() if k != "seed"))
            groups.setdefault(config, []).append(r)
    result = []
    for config, members in groups.items():
        if len(members) < 2 or len({m.overrides.get("seed") for m in members}) < 2:
            continue
        val = _mean_std([m.val_best for m in members])
        tests = [m.test_error for m in members if m.test_error is not None]
        test = _mean_std(tests) if len(tests) == len(members) else (None, None)
        result.append(Aggregate(dict(config), len(members), *val, *test))
    return sorted(result, key=lambda a: a.val_mean)


def aggregate_table(aggs: list[Aggregate], keys: list[str],
                    fractions: bool = False) -> tuple[list[str], list[list[str]]]:
    """(columns, rows) of the per-configuration aggregate over seeds."""
    keys = [k for k in keys if k != "seed"]
    columns = [*keys, "n", "val/best_error mean", "val/best_error std",
               "test/error mean", "test/error std"]
    rows = [[*(a.config.get(k, "") for k in keys), str(a.n), _pct(a.val_mean, fractions),
             _pct(a.val_std, fractions), _pct(a.test_mean, fractions), _pct(a.test_std, fractions)]
            for a in aggs]
    return columns, rows


def render(columns: list[str], rows: list[list[str]], fmt: str) -> str:
    """The table as aligned text, Markdown or CSV."""
    if fmt == "csv":
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([columns, *rows])
        return out.getvalue()
    if fmt == "markdown":
        escape = lambda c: c.replace("|", "\\|")  # noqa: E731
        lines = ["| " + " | ".join(map(escape, columns)) + " |",
                 "|" + "|".join("---" for _ in columns) + "|"]
        return "\n".join(lines + ["| " + " | ".join(map(escape, r)) + " |" for r in rows]) + "\n"
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    fmt_row = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt_row(columns), fmt_row(["-" * w for w in widths]),
                      *map(fmt_row, rows)]) + "\n"


def report(runs: list[RunInfo], fmt: str, base: Path | None = None,
           aggregate_only: bool = False) -> str:
    """The runs table, then the seed aggregate when there is one.

    CSV is one table: the runs, or with ``aggregate_only`` the aggregate.
    """
    fractions = fmt == "csv"
    aggs = aggregate_seeds(runs)
    aggregate = render(*aggregate_table(aggs, varying_keys(runs), fractions), fmt)
    if aggregate_only:
        return aggregate
    text = render(*runs_table(runs, fractions, base), fmt)
    if aggs and fmt != "csv":
        text += "\nAggregated over seeds (mean, sample std with n - 1):\n\n" + aggregate
    notes = lost_notes(runs)
    if notes and fmt != "csv":
        text += "\n" + "".join(f"{'- ' if fmt == 'markdown' else ''}{n}\n" for n in notes)
    return text


def lost_notes(runs: list[RunInfo]) -> list[str]:
    """How to resume each ``lost`` run (its process ended while it was running)."""
    notes = []
    for r in runs:
        if r.status != LOST:
            continue
        sweep_dir = r.path.parent
        how = (f"run the sweep's command again with hydra.sweep.dir={sweep_dir}"
               if (sweep_dir / "multirun.yaml").is_file()
               else f"python run.py trainer.resume={r.path}")
        notes.append(f"lost: {r.path} stopped while running (killed, or its machine failed); "
                     f"it continues from its last checkpoint with: {how}")
    return notes


def plot_runs(runs: list[RunInfo], path: str | Path) -> Path:
    """Every run's validation-error curve on one figure, written as a PNG.

    Each curve is labelled by the overrides that differ between the runs.
    """
    from . import plots

    keys, labels = varying_keys(runs), {}
    for r in runs:
        label = ",".join(f"{k}={r.overrides[k]}" for k in keys if k in r.overrides) or r.path.name
        labels[label if label not in labels else f"{label} ({r.path.name})"] = r.rows
    return plots.save(plots.val_error_overlay(labels), path)


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
    except (FileNotFoundError, ValueError, OSError) as error:
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
