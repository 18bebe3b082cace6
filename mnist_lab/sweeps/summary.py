"""A sweep's own record: its summaries and its W&B group.

- **Summary.** ``sweep_summary.md``, ``sweep_summary.csv`` and
  ``sweep_val_error.png`` in the sweep directory, rewritten at the end of every
  job (so they exist even when a job fails or the sweep is killed) and of the
  sweep, from the run records (:mod:`.runs` and :mod:`.report`, the code of
  ``python -m mnist_lab.compare``).
- **Pareto front.** For a study of several objectives (noted in ``sweep.json`` by the
  Optuna sweeper), ``sweep_summary.md`` lists the completed runs that no other run
  beats in every objective, and ``sweep_summary.csv`` marks them (``pareto_front``).
- **W&B group.** ``<preset>-<first start time>``, fixed in ``sweep.json`` in the
  sweep directory at the sweep's first start (:func:`sweep_group`): the same for
  every job, on any host, and for every later invocation into that directory.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator

from ..errors import UserError
from ..record.folder import RunRecord, Status
from ..record.atomic import create_exclusively, replace_atomically
from .report import render, report, runs_table, plot_runs
from .runs import RunInfo, find_runs

log = logging.getLogger(__name__)
SWEEP_RECORD = "sweep.json"
SUMMARY_MD, SUMMARY_CSV = "sweep_summary.md", "sweep_summary.csv"
SUMMARY_PLOT = "sweep_val_error.png"


SUMMARY_LOCK = ".summary.lock"
LOCK_WAIT_S, LOCK_STALE_S = 60.0, 120.0


@contextmanager
def _locked(sweep_dir: Path) -> Iterator[None]:
    """Serialise summary writers (parallel jobs, on several hosts, end at the same time).

    A lock file created only if absent (:func:`~mnist_lab.record.atomic.create_exclusively`,
    atomic on NFS, where ``flock`` may not work). One left by a writer that died (older
    than :data:`LOCK_STALE_S`) is removed. After :data:`LOCK_WAIT_S` the summary is
    written anyway: each writer reads every job's own record and replaces the files
    atomically (per-host temp names), so at worst an older view wins until the next
    writer, and the sweep's last writer (its end) sees every job.
    """
    path = sweep_dir / SUMMARY_LOCK
    deadline, held = time.monotonic() + LOCK_WAIT_S, False
    while not held and time.monotonic() < deadline:
        held = create_exclusively(path, f"{socket.gethostname()} {os.getpid()}")
        if not held:
            try:
                if time.time() - path.stat().st_mtime > LOCK_STALE_S:
                    path.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
            time.sleep(0.2)
    try:
        yield
    finally:
        if held:
            path.unlink(missing_ok=True)


def write_summary(sweep_dir: str | Path) -> Path | None:
    """Write the sweep's summary files from its job directories; None if none yet."""
    sweep_dir = Path(sweep_dir)
    with _locked(sweep_dir):
        try:
            runs = find_runs([sweep_dir])
        except FileNotFoundError:
            return None
        counts = {str(s): sum(r.status == s for r in runs) for s in {r.status for r in runs}}
        if (planned := _planned_jobs(sweep_dir)) > len(runs):
            counts[str(Status.NOT_STARTED)] = planned - len(runs)
        total = sum(counts.values())
        heading = (f"# Sweep {sweep_dir.name}\n\n{total} job{'s' * (total != 1)}: "
                   + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + "\n\n")
        markdown = heading + report(runs, "markdown", base=sweep_dir)
        columns, rows = runs_table(runs, fractions=True, base=sweep_dir)
        objectives = _objectives(sweep_dir)
        if len(objectives) > 1:
            front = pareto_front(runs, list(objectives.values()))
            markdown += pareto_section(front, objectives, sweep_dir)
            on_front = {_name(path, sweep_dir) for path, _ in front}
            columns = [*columns, "pareto_front"]
            rows = [[*row, "yes" if row[0] in on_front else ""] for row in rows]
        table = render(columns, rows, "csv")
        replace_atomically(sweep_dir / SUMMARY_MD, lambda tmp: tmp.write_text(markdown))
        replace_atomically(sweep_dir / SUMMARY_CSV, lambda tmp: tmp.write_text(table))
        plot_runs(runs, sweep_dir / SUMMARY_PLOT)
    return sweep_dir / SUMMARY_MD


def _objectives(sweep_dir: Path) -> dict[str, str]:
    """The study's objectives noted in ``sweep.json`` (name → summary key); {} if none."""
    try:
        return dict(json.loads((sweep_dir / SWEEP_RECORD).read_text()).get("objectives") or {})
    except (OSError, ValueError, AttributeError):
        return {}


def _name(path: Path, sweep_dir: Path) -> str:
    return str(path.relative_to(sweep_dir)) if path.is_relative_to(sweep_dir) else str(path)


def pareto_front(runs: list[RunInfo], keys: list[str]) -> list[tuple[Path, list[float]]]:
    """The completed runs on the Pareto front of ``keys`` (``summary.json`` keys, all
    minimised): those that no other run matches or beats in every key while beating
    them in one (the definition Optuna's ``Study.best_trials`` uses). Sorted by the first
    key; a run missing a value is left out. Returns (run folder, values) pairs.
    """
    points = []
    for run in runs:
        if run.status is not Status.COMPLETED:
            continue
        summary = RunRecord(run.path).read_summary() or {}
        values = [summary.get(k) for k in keys]
        if all(isinstance(v, (int, float)) and v == v for v in values):
            points.append((run.path, [float(v) for v in values]))

    def dominated(a: list[float]) -> bool:
        return any(all(o <= v for o, v in zip(b, a)) and any(o < v for o, v in zip(b, a))
                   for _, b in points)

    return sorted(((p, v) for p, v in points if not dominated(v)), key=lambda pv: pv[1])


def pareto_section(front: list[tuple[Path, list[float]]], objectives: dict[str, str],
                   sweep_dir: Path) -> str:
    """The Markdown section that lists the Pareto front (error rates as percentages)."""
    names = list(objectives)
    lines = [f"\n## Pareto front ({', '.join(names)}; all minimised)\n",
             "| run | " + " | ".join(objectives.values()) + " |",
             "|---|" + "---|" * len(names)]
    for path, values in front:
        shown = [f"{100 * v:.2f}%" if key.endswith("error") else f"{v:g}"
                 for key, v in zip(objectives.values(), values)]
        lines.append(f"| {_name(path, sweep_dir)} | " + " | ".join(shown) + " |")
    if not front:
        lines.append("| (no completed run yet) |" + " |" * len(names))
    return "\n".join(lines) + "\n"


def refresh_summary(sweep_dir: str | Path) -> Path | None:
    """:func:`write_summary`, but a failure is a warning: it never fails a job or a sweep."""
    try:
        return write_summary(sweep_dir)
    except Exception as error:  # a damaged record, a full disk: the jobs' own records stand
        log.warning("The summary of sweep %s was not written: %s: %s", sweep_dir,
                    type(error).__name__, error)
        return None


def record_plan(sweep_dir: str | Path, jobs: int) -> None:
    """Note in ``sweep.json`` how many jobs the sweep has, so that its summary counts the
    jobs that have not started (a sweep stopped early)."""
    path = Path(sweep_dir) / SWEEP_RECORD
    data = json.loads(path.read_text()) if path.is_file() else {}
    text = json.dumps({**data, "jobs": jobs}, indent=2) + "\n"
    replace_atomically(path, lambda tmp: tmp.write_text(text))


def _planned_jobs(sweep_dir: Path) -> int:
    """The job count :func:`record_plan` noted; 0 when none was (Optuna, older sweeps)."""
    try:
        return int(json.loads((sweep_dir / SWEEP_RECORD).read_text()).get("jobs", 0))
    except (OSError, ValueError):
        return 0


def finish_sweep(sweep_dir: Path) -> None:
    """At the end of a sweep (also with failed jobs): its summary, and where its record is."""
    summary = refresh_summary(sweep_dir)
    log.info("Sweep record: %s; summary: %s", sweep_dir, summary or "none (no job ran)")


def sweep_group(sweep_dir: str | Path, preset: str) -> str:
    """The sweep's W&B group, ``<preset>-<start time>`` (``depth-2026-11-29_10-15-02``).

    Kept in ``<sweep dir>/sweep.json``, written once at the sweep's first start
    and read by every later invocation into that directory and by every job, on
    any host (a cluster's sweep directory may be on NFS, shared by many hosts).

    Raises:
        UserError: ``sweep.json`` exists but cannot be read.
    """
    path = Path(sweep_dir) / SWEEP_RECORD
    if not path.is_file():
        started = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        create_exclusively(path, json.dumps({"sweep": preset, "started_at": started,
                                       "wandb_group": f"{preset}-{started}"}, indent=2) + "\n")
    try:
        return json.loads(path.read_text())["wandb_group"]
    except (ValueError, KeyError) as error:
        raise UserError(f"The sweep record '{path}' cannot be read ({error!r}). Delete it "
                        "to give the sweep's later W&B runs a new group.") from None
