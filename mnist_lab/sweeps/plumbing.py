"""Sweep plumbing for mnist_lab's sweepers: resume, cores per job, failures.

Hydra's launchers and sweepers run the jobs; this adds what they lack, used by
the thin plugins in ``hydra_plugins/mnist_lab_sweepers``:

- **Resume.** Re-running a sweep into the same ``hydra.sweep.dir`` skips the jobs
  that completed with the same overrides (:func:`pending_jobs`), and those that
  SLURM still holds (pending, running, requeued: SLURM runs them itself); failed
  or lost ones continue from their checkpoint (see :mod:`mnist_lab.training.resume`).
- **Cores.** Jobs that run at once on one machine share its cores
  (:func:`thread_shares`, handed to each job as ``MNIST_LAB_NUM_THREADS``).
- **Failures.** A grid sweep with failed jobs ends with :class:`SweepFailed`,
  naming each one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

from hydra.core.utils import JobReturn
from hydra.errors import CompactHydraException
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig

from .slurm import still_queued
from ..record.folder import RunRecord, Status, same_overrides
from ..training.runtime import THREADS_ENV, usable_cores
from .summary import SUMMARY_MD, finish_sweep

log = logging.getLogger(__name__)
LAUNCH_SETTLE_S = 60.0  # how long a resumed sweep waits for a COMPLETING SLURM job to settle


class SweepFailed(CompactHydraException):
    """Some jobs of a grid sweep failed; the message names each one.

    A ``CompactHydraException``: Hydra prints the message without a traceback.
    """


def is_done(job_dir: Path, overrides: Sequence[str]) -> bool:
    """The job in ``job_dir`` completed with these task overrides (in any order)."""
    summary = RunRecord(job_dir).read_summary() or {}
    return summary.get("status") == Status.COMPLETED and same_overrides(summary.get("overrides"),
                                                                  list(overrides))


def task_overrides(job: Sequence[str]) -> list[str]:
    """A job's overrides as Hydra records them for the task (``hydra.*`` excluded)."""
    return [o for o in job if not o.lstrip("+~").startswith("hydra.")]


def pending_jobs(sweep_dir: Path, jobs: Sequence[Sequence[str]]) -> list[int]:
    """Positions of the jobs still to run (job ``i`` lives in ``sweep_dir/i``).

    Not those completed, nor those whose SLURM job SLURM still lists (pending,
    running, requeued after a time limit): launching them again would race
    SLURM's own restart of the job. A job SLURM lists as COMPLETING (being
    requeued, or ending) is asked about again for up to ``LAUNCH_SETTLE_S`` seconds.
    """
    pending = []
    for i, job in enumerate(jobs):
        if is_done(sweep_dir / str(i), task_overrides(job)):
            continue
        summary = RunRecord(sweep_dir / str(i)).read_summary()
        state = still_queued(summary, settle_s=LAUNCH_SETTLE_S) if summary and same_overrides(
            summary.get("overrides"), task_overrides(job)) else None
        if state:
            log.info("Job %d is still in SLURM's queue (job %s, %s): SLURM runs it; not "
                     "launched again.", i, summary["slurm"]["job_id"], state)
            continue
        pending.append(i)
    return pending


def contiguous(positions: list[int], max_size: int | None) -> list[tuple[int, list[int]]]:
    """Split sorted positions into runs of consecutive numbers (at most ``max_size`` long).

    A launcher numbers the jobs it gets consecutively from ``initial_job_idx``,
    so each run of positions is launched on its own to keep every job's number
    (and directory) the one it has in the full sweep.
    """
    groups: list[tuple[int, list[int]]] = []
    for p in positions:
        last = groups[-1][1] if groups else []
        if last and p == last[-1] + 1 and (not max_size or len(last) < max_size):
            last.append(p)
        else:
            groups.append((p, [p]))
    return groups


def thread_shares(launcher: DictConfig, batch: int) -> list[int | None]:
    """CPU threads for each job of a batch: the cores ÷ the jobs running at once with it.

    - basic (None): one job at a time, which takes all the cores it may use.
    - joblib: ``n_jobs`` workers (negative: cores + 1 + n_jobs, as joblib counts)
      take the jobs in order, so all but the last ``batch % workers`` jobs run
      ``workers`` at a time and those last ones share the machine among fewer
      (5 jobs on 2 cores: 1, 1, 1, 1, then 2 threads for the fifth, alone).
    - submitit's local executor starts the whole batch at once.
    - SLURM (None): each job has its own allocation, which its affinity shows.

    ``OMP_NUM_THREADS``, when the user set it, caps every share.
    """
    target = str(launcher.get("_target_", ""))
    if not target.endswith(("JoblibLauncher", "LocalLauncher")):
        return [None] * batch  # one at a time, or a cluster allocation per job
    cores = usable_cores()
    if target.endswith("JoblibLauncher"):
        n_jobs = int(launcher.get("n_jobs", -1))
        workers = min(batch, n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs))
        tail = batch % workers
        at_once = [workers] * (batch - tail) + [tail] * tail
    else:
        at_once = [batch] * batch
    omp = os.environ.get("OMP_NUM_THREADS", "")
    cap = int(omp) if omp.isdigit() and int(omp) > 0 else cores
    return [max(1, min(cap, cores // n)) for n in at_once]


def with_thread_shares(batch: list[list[str]], launcher: DictConfig) -> list[list[str]]:
    """Each job's overrides plus its share of the cores, set in its environment by Hydra."""
    shares = thread_shares(launcher, len(batch))
    return [list(job) + ([f"++hydra.job.env_set.{THREADS_ENV}={n}"] if n else [])
            for job, n in zip(batch, shares)]


def share_cores_evenly(launcher: DictConfig, batch: int) -> None:
    """For sweepers that run batches of equal jobs: one share for all, in the environment."""
    share = min(n or 0 for n in thread_shares(launcher, batch)) if batch else 0
    if share:
        os.environ[THREADS_ENV] = str(share)
    else:
        os.environ.pop(THREADS_ENV, None)


def launch(launcher: Launcher, batch: Sequence[Sequence[str]], start: int,
           sweep_dir: Path) -> Sequence[JobReturn]:
    """``launcher.launch``; a job that ended without a result ends the sweep clearly.

    A job killed outright (``kill -9``, ``scancel --signal=KILL``, a node failure)
    leaves submitit no result, and its launcher raises submitit's
    ``UncompletedJobError``. The summary is written (the job reads as ``lost``)
    and :class:`SweepFailed` says how to continue it.
    """
    try:
        return launcher.launch(batch, initial_job_idx=start)
    except Exception as error:
        if type(error).__name__ != "UncompletedJobError":
            raise
        finish_sweep(sweep_dir)
        reason = " ".join(str(error).split())[:500]
        raise SweepFailed(f"A job ended without a result (killed, or its node failed): "
                          f"{reason}\nSummary: {sweep_dir / SUMMARY_MD}. Its record reads as "
                          "lost; run the same command again with hydra.sweep.dir="
                          f"{sweep_dir} to continue it from its checkpoint.") from None


def failure_message(sweep_dir: Path, failed: list[tuple[int, JobReturn]], total: int) -> str:
    """Names each failed job, its overrides and its error, and how to resume."""
    lines = [f"{len(failed)} of {total} jobs failed:"]
    for num, ret in failed:
        error = job_error(ret)
        lines.append(f"  job {num} ({' '.join(ret.overrides)}): {type(error).__name__}: {error}")
    lines.append(f"Summary: {sweep_dir / SUMMARY_MD}. Run the failed jobs again with the same "
                 f"command and hydra.sweep.dir={sweep_dir}.")
    return "\n".join(lines)


def job_error(ret: JobReturn) -> BaseException | None:
    """The exception a failed job raised (Hydra's public ``return_value`` re-raises it)."""
    try:
        ret.return_value
    except BaseException as error:  # noqa: B036 (the job's own exception, whatever it is)
        return error
    return None
