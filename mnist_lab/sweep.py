"""Sweeps (``python run.py -m ...``): summaries, resume, and cores per job.

Hydra's launchers and sweepers run the jobs; this module adds what they lack,
used by the thin plugins in ``hydra_plugins/mnist_lab_sweepers``:

- **Summary.** ``sweep_summary.md``, ``sweep_summary.csv`` and
  ``sweep_val_error.png`` in the sweep directory, rewritten at the end of every
  job (so they exist even when a job fails or the sweep is killed) and of the
  sweep, from the run records (:mod:`mnist_lab.compare`, one implementation).
- **Resume.** Re-running a sweep into the same ``hydra.sweep.dir`` skips the jobs
  that completed with the same overrides (:func:`pending_jobs`); failed ones
  continue from their checkpoint (see :mod:`mnist_lab.resume`).
- **Cores.** Jobs that run at once on one machine share its cores
  (:func:`thread_shares`, handed to each job as ``MNIST_LAB_NUM_THREADS``).
- **W&B group.** ``<preset>-<first start time>``, fixed in ``sweep.json`` in the
  sweep directory at the sweep's first start (:func:`sweep_group`): the same for
  every job, on any host, and for every later invocation into that directory.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Sequence

from hydra.core.utils import JobReturn
from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from .compare import find_runs, plot_runs, render, report, runs_table
from .errors import UserError
from .job import same_overrides
from .record import RunRecord, replace_atomically
from .runtime import THREADS_ENV, usable_cores

log = logging.getLogger(__name__)
SWEEP_RECORD = "sweep.json"
SUMMARY_MD, SUMMARY_CSV = "sweep_summary.md", "sweep_summary.csv"
SUMMARY_PLOT = "sweep_val_error.png"


class SweepFailed(CompactHydraException):
    """Some jobs of a grid sweep failed; the message names each one.

    A ``CompactHydraException``: Hydra prints the message without a traceback.
    """


@contextmanager
def _locked(sweep_dir: Path) -> Iterator[None]:
    """Serialise summary writers (parallel jobs end at the same time)."""
    with open(sweep_dir / ".summary.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_summary(sweep_dir: str | Path) -> Path | None:
    """Write the sweep's summary files from its job directories; None if none yet."""
    sweep_dir = Path(sweep_dir)
    with _locked(sweep_dir):
        try:
            runs = find_runs([sweep_dir])
        except FileNotFoundError:
            return None
        counts = {s: sum(r.status == s for r in runs) for s in {r.status for r in runs}}
        heading = (f"# Sweep {sweep_dir.name}\n\n{len(runs)} jobs: "
                   + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + "\n\n")
        markdown = heading + report(runs, "markdown", base=sweep_dir)
        table = render(*runs_table(runs, fractions=True, base=sweep_dir), "csv")
        replace_atomically(sweep_dir / SUMMARY_MD, lambda tmp: tmp.write_text(markdown))
        replace_atomically(sweep_dir / SUMMARY_CSV, lambda tmp: tmp.write_text(table))
        plot_runs(runs, sweep_dir / SUMMARY_PLOT)
    return sweep_dir / SUMMARY_MD


def finish_sweep(sweep_dir: Path) -> None:
    """At the end of a sweep (also with failed jobs): its summary, and where its record is."""
    summary = write_summary(sweep_dir)
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
        _create_once(path, json.dumps({"sweep": preset, "started_at": started,
                                       "wandb_group": f"{preset}-{started}"}, indent=2) + "\n")
    try:
        return json.loads(path.read_text())["wandb_group"]
    except (ValueError, KeyError) as error:
        raise UserError(f"The sweep record '{path}' cannot be read ({error!r}). Delete it "
                        "to give the sweep's later W&B runs a new group.") from None


def _create_once(path: Path, text: str) -> None:
    """Write ``path`` unless it exists; of several writers at once, the first wins.

    The text is written under a temporary name, then hard-linked into place:
    the link fails if the file exists, atomically, also on NFS, and no reader
    ever sees half a file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")
    tmp.write_text(text)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another invocation or job was first
    finally:
        tmp.unlink()


def is_done(job_dir: Path, overrides: Sequence[str]) -> bool:
    """The job in ``job_dir`` completed with these task overrides (in any order)."""
    summary = RunRecord(job_dir).read_summary() or {}
    return summary.get("status") == "completed" and same_overrides(summary.get("overrides"),
                                                                  list(overrides))


def task_overrides(job: Sequence[str]) -> list[str]:
    """A job's overrides as Hydra records them for the task (``hydra.*`` excluded)."""
    return [o for o in job if not o.lstrip("+~").startswith("hydra.")]


def pending_jobs(sweep_dir: Path, jobs: Sequence[Sequence[str]]) -> list[int]:
    """Positions of the jobs still to run (job ``i`` lives in ``sweep_dir/i``)."""
    return [i for i, job in enumerate(jobs) if not is_done(sweep_dir / str(i), task_overrides(job))]


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


def failure_message(sweep_dir: Path, failed: list[tuple[int, JobReturn]], total: int) -> str:
    """Names each failed job, its overrides and its error, and how to resume."""
    lines = [f"{len(failed)} of {total} jobs failed:"]
    for num, ret in failed:
        error = ret._return_value  # the exception the job raised
        lines.append(f"  job {num} ({' '.join(ret.overrides)}): {type(error).__name__}: {error}")
    lines.append(f"Summary: {sweep_dir / SUMMARY_MD}. Run the failed jobs again with the same "
                 f"command and hydra.sweep.dir={sweep_dir}.")
    return "\n".join(lines)


class SweepCallback(Callback):
    """Hydra callback (``hydra.callbacks.sweep``): the sweep's W&B group, summaries."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Fix the sweep's W&B group at its first start (kept on later invocations)."""
        sweep_group(config.hydra.sweep.dir, config.hydra.runtime.choices.get("sweep") or "sweep")

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """After each job of a sweep (in the job's process): refresh the summary."""
        if config.hydra.mode == RunMode.MULTIRUN:
            write_summary(config.hydra.sweep.dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        write_summary(config.hydra.sweep.dir)

