"""Run tables, as W&B's runs table shows them: text, Markdown or CSV, and curves.

One row per run, the overridden config keys that differ as columns, then
status, best validation error, test error, epochs, wall time and images/s,
sorted by validation error; then the aggregate over seeds (n, mean, sample
standard deviation with n − 1) and how to resume lost runs. Error rates are
percentages for people and fractions in CSV.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .runs import Aggregate, RunInfo, aggregate_seeds, lost_notes, varying_keys

FORMATS = ("table", "markdown", "csv")


def _sort_key(run: RunInfo) -> tuple:
    return (run.val_best is None, run.val_best if run.val_best is not None else 0.0)


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
        rows.append([name, *(r.overrides.get(k, "") for k in keys), str(r.status),
                     _pct(r.val_best, fractions), _pct(r.test_error, fractions),
                     "" if r.epochs is None else f"{r.epochs:.2f}".rstrip("0").rstrip("."),
                     "" if r.wall_s is None else f"{r.wall_s:.1f}",
                     "" if r.images_per_s is None else f"{r.images_per_s:.0f}",
                     *([_short(r.error or "", None if fractions else 120)] if errors else [])])
    return columns, rows


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

    Raises:
        ValueError: ``aggregate_only``, but no configuration ran with two seeds or more.
    """
    fractions = fmt == "csv"
    aggs = aggregate_seeds(runs)
    if aggregate_only and not aggs:
        raise ValueError("nothing to aggregate: no configuration completed with two or more "
                         "seeds (runs that differ only in seed=...). Leave out --aggregate "
                         "to see the runs.")
    aggregate = render(*aggregate_table(aggs, varying_keys(runs), fractions), fmt)
    if aggregate_only:
        return aggregate
    text = render(*runs_table(runs, fractions, base), fmt)
    keys = varying_keys(runs)
    if fmt != "csv" and any(k not in r.overrides for r in runs for k in keys):
        text += "\n(A blank cell: that run left the key at its default.)\n"
    if aggs and fmt != "csv":
        text += "\nAggregated over seeds (mean, sample std with n - 1):\n\n" + aggregate
    notes = lost_notes(runs)
    if notes and fmt != "csv":
        text += "\n" + "".join(f"{'- ' if fmt == 'markdown' else ''}{n}\n" for n in notes)
    return text


def plot_runs(runs: list[RunInfo], path: str | Path) -> Path:
    """Every run's validation-error curve on one figure, written to ``path`` (.png, .pdf, .svg).

    Each curve is labelled by the overrides that differ between the runs; runs that
    differ only in ``seed`` share a colour.
    """
    from .. import plots

    keys, labels, groups = varying_keys(runs), {}, {}
    for r in runs:
        label = ",".join(f"{k}={r.overrides[k]}" for k in keys if k in r.overrides) or r.path.name
        label = label if label not in labels else f"{label} ({r.path.name})"
        labels[label] = r.rows
        groups[label] = ",".join(f"{k}={r.overrides.get(k)}" for k in keys if k != "seed")
    return plots.save(plots.val_error_overlay(labels, groups=groups), path)
