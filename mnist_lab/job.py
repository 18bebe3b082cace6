"""What Hydra knows about a job, as plain values (filled in by ``run.py``).

Torch-free, so ``run.py`` can build it before the config is checked.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .cluster import slurm_job
from .record import HYDRA, RunRecord, Status


NAME_EXCLUDES = ("logger", "hydra", "sweep", "trainer.progress", "trainer.device",
                 "trainer.num_threads", "trainer.resume", "trainer.heartbeat_s", "data.root",
                 "data.download")


@dataclass(frozen=True)
class JobInfo:
    """One Hydra job.

    Attributes:
        run_dir: the job's output directory.
        launch_dir: where the command was launched; relative paths start there.
        overrides: the task overrides of this job (``hydra.overrides.task``).
        multirun: part of a sweep (``-m``). job_num: its position in the sweep.
        group: the sweep's W&B group (:func:`mnist_lab.sweeps.summary.sweep_group`); None
            for a single run.
        config: the composed config, resolved, as plain containers.
        hydra_subdir: where Hydra wrote this session's files (``hydra.output_subdir``,
            relative to ``run_dir``; ``.hydra/resumed_<time>`` for a resume).
    """

    run_dir: Path
    launch_dir: str = "."
    overrides: list[str] = field(default_factory=list)
    multirun: bool = False
    job_num: int | None = None
    group: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    hydra_subdir: str | None = None

    @property
    def run_name(self) -> str:
        """Readable and unique in a sweep: ``3-model.depth=[8,16],optimizer.lr=0.01``.

        The job number and the overrides that define the experiment (not those
        of :data:`NAME_EXCLUDES`, which only say how or where it runs).
        """
        kept = [o for o in self.overrides if not o.lstrip("+~").startswith(NAME_EXCLUDES)]
        label = ",".join(kept) or "defaults"
        return f"{self.job_num}-{label}" if self.multirun else label


def now() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def failure_summary(error: BaseException, status: Status = Status.FAILED) -> dict:
    """The ``summary.json`` fields of a run that failed (or was stopped) with ``error``."""
    return {"status": status, "error": f"{type(error).__name__}: {error}", "finished_at": now()}


def same_overrides(a: list[str] | None, b: list[str] | None) -> bool:
    """The same task overrides, in any order (as Hydra applies them)."""
    return a is not None and b is not None and sorted(a) == sorted(b)


def record_failure(job: JobInfo, error: BaseException) -> None:
    """Keep a failed sweep job's status and message in its directory.

    Only the job's own record is written: a directory that holds another run's
    record (other overrides), or a failure the run already recorded, is left alone.
    """
    record = RunRecord(job.run_dir)
    previous = record.read_summary()
    if previous is not None and (not same_overrides(previous.get("overrides"), job.overrides)
                                 or previous.get("status") in (Status.FAILED, Status.INTERRUPTED)):
        return
    record.write_summary({"overrides": job.overrides, "slurm": slurm_job(), **(previous or {}),
                          **failure_summary(error)})


def discard_session_files(run_dir: str | Path, hydra_subdir: str | None,
                        launch_dir: str | Path) -> None:
    """Remove what Hydra made for a session that changed no record.

    Hydra creates the run directory, its ``.hydra/`` files and the log before
    the task runs. For a refused command (a bad value, a busy directory) or a
    resume of a completed run (nothing to do), this removes this session's Hydra
    files (``.hydra/session_<time>`` or ``resumed_<time>`` beside a run's
    record), or the whole directory when it holds nothing but ``.hydra/``
    and the log, with the parents left empty inside ``launch_dir``
    (``outputs/<date>/``).
    """
    run_dir = Path(run_dir).absolute()
    if not run_dir.is_dir():
        return
    if hydra_subdir and Path(hydra_subdir).parts[:1] == (HYDRA,) and hydra_subdir != HYDRA:
        shutil.rmtree(run_dir / hydra_subdir, ignore_errors=True)
        return
    if not RunRecord(run_dir).holds_only_hydra_files():
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    launch = Path(launch_dir).absolute()
    for parent in run_dir.parents:
        if parent == launch or launch not in parent.parents or any(parent.iterdir()):
            break
        parent.rmdir()
