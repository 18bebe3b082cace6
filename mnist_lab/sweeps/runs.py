"""Run records as rows: find the runs under some paths, read their figures, group seeds.

Runs are read through :class:`~mnist_lab.record.folder.RunRecord`; a run whose process
is gone while it says ``running`` reads as ``lost`` (see :meth:`RunRecord.status`).
"""

from __future__ import annotations

import logging
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..config.job import NAME_EXCLUDES
from ..record.folder import RunRecord, Status
from .slurm import reader_status

log = logging.getLogger(__name__)


@dataclass
class RunInfo:
    """One run's figures, as read from its record (error rates as fractions)."""

    path: Path
    overrides: dict[str, str]
    status: Status
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


def effective_overrides(summary: dict, hydra_overrides: list[str]) -> dict[str, str]:
    """The run's own overrides, with ``trainer.*`` values as the run last ran with them.

    A resume may change ``trainer.*`` keys (``trainer.max_steps=600``); the values
    come from the config in ``summary.json``, which a resume updates. A key that a
    resume added is shown too. ``hydra_overrides``: used when there is no summary.
    """
    overrides = parse_overrides(summary.get("overrides", hydra_overrides))
    trainer = (summary.get("config") or {}).get("trainer", {})
    for key in [*overrides, *parse_overrides(summary.get("resumed_with", []))]:
        name = key.partition("trainer.")[2]
        if key.startswith("trainer.") and name in trainer and name != "resume":
            value = trainer[name]
            overrides[key] = "null" if value is None else \
                str(value).lower() if isinstance(value, bool) else str(value)
    return overrides


def read_run(run_dir: Path) -> RunInfo:
    """A run's :class:`RunInfo` from its record (a missing summary: status "not started").

    A run that stopped early has no final figures; its best validation error so
    far is taken from its ``metrics.csv``.
    """
    record = RunRecord(run_dir)
    summary, rows = record.read_summary() or {}, record.read_metrics()
    val_best = summary.get("val/best_error")
    if val_best is None and rows:
        val_best = min(r["val/error"] for r in rows)
    return RunInfo(
        path=run_dir, overrides=effective_overrides(summary, record.overrides()),
        status=reader_status(record, summary), val_best=val_best,
        test_error=summary.get("test/error"), epochs=summary.get("epochs"),
        wall_s=summary.get("wall_s"), images_per_s=summary.get("train/images_per_s"),
        error=summary.get("error"), rows=rows,
    )


def is_run_dir(path: Path) -> bool:
    """A directory with a run's record (a refused command's empty Hydra folder is not)."""
    return RunRecord(path).has_record()


def find_runs(paths: list[str | Path], skipped: list[str] | None = None) -> list[RunInfo]:
    """Runs named directly, and the runs inside sweep directories (any depth).

    Each run is read once. A file or folder inside a run (``checkpoint.pt``,
    ``plots/``) stands for that run: a shell glob such as ``outputs/*/*`` names the
    files of a run that sits one level up (``outputs/recogniser``). A path
    that does not exist, or holds no run (such as the folder of a
    command that stopped before its first record), is skipped, and so is a run
    whose record cannot be read (damaged, or of a newer mnist_lab); a one-line
    note on each is appended to ``skipped`` (without it, unreadable runs are
    logged as warnings).

    Raises:
        FileNotFoundError: no run at all in ``paths``.
    """
    runs: list[RunInfo] = []
    seen: set[Path] = set()
    for path in map(Path, paths):
        if is_run_dir(path.parent):
            path = path.parent  # a glob such as outputs/*/* names a run's files and plots/
        elif path.is_file():
            continue
        candidates = [path] if is_run_dir(path) else sorted(
            (p for p in path.rglob("*") if p.is_dir() and is_run_dir(p)), key=_job_order)
        found = [p for p in candidates if p.resolve() not in seen]  # each run once
        seen.update(p.resolve() for p in found)
        if not candidates and skipped is not None:
            skipped.append(f"skipped '{path}': " + ("no such directory" if not path.is_dir() else
                           "not a run or sweep (no summary.json, metrics.csv or checkpoint.pt)"))
        for run_dir in found:
            try:
                runs.append(read_run(run_dir))
            except (UserError, ValueError, OSError) as error:  # JSONDecodeError is a ValueError
                note = f"skipped '{run_dir}': its record cannot be read: {error}"
                if skipped is None:
                    log.warning("%s", note)
                else:
                    skipped.append(note)
    if not runs:
        raise FileNotFoundError(f"no run or sweep in {', '.join(map(repr, map(str, paths)))} "
                                "(no summary.json, metrics.csv or checkpoint.pt)")
    return runs


def _job_order(path: Path) -> tuple:
    return (str(path.parent), int(path.name) if path.name.isdigit() else math.inf, path.name)


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
        if r.status is Status.COMPLETED and r.val_best is not None:
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


def lost_notes(runs: list[RunInfo]) -> list[str]:
    """How to resume each ``lost`` run (its process ended while it was running)."""
    notes = []
    for r in runs:
        if r.status is not Status.LOST:
            continue
        sweep_dir = r.path.parent
        how = (f"run the sweep's command again with hydra.sweep.dir={sweep_dir}"
               if (sweep_dir / "multirun.yaml").is_file()
               else f"python run.py trainer.resume={r.path}")
        notes.append(f"lost: {r.path} stopped while running (killed, or its machine failed); "
                     f"it continues from its last checkpoint with: {how}")
    return notes
