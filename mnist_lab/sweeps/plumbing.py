"""Sweep plumbing for mnist_lab's sweepers: resume, cores per job, failures.

Hydra's launchers and sweepers run the jobs; this adds what they lack, used by
the thin plugins in ``hydra_plugins/mnist_lab_sweepers``:

- **Resume.** Re-running a sweep into the same ``hydra.sweep.dir`` skips the jobs
  that ended with the same overrides (completed, pruned or diverged:
  :data:`ENDED`, :func:`pending_jobs`), and those that SLURM still holds (pending,
  running, requeued: SLURM runs them itself); failed, interrupted or lost ones
  continue from their checkpoint (see :mod:`mnist_lab.training.resume`).
- **Cores and GPUs.** Jobs that run at once on one machine share its cores
  (:func:`thread_shares`, handed to each job as ``MNIST_LAB_NUM_THREADS``), and
  with the joblib launcher and several visible GPUs each gets its own
  (:func:`device_slots`, handed to each job as ``trainer.device=cuda:N``).
- **Failures.** A grid sweep with failed jobs ends with :class:`SweepFailed`,
  naming each one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.errors import CompactHydraException
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from ..record.folder import RunRecord, Status, same_overrides
from ..training.runtime import THREADS_ENV, usable_cores
from .slurm import still_queued
from .summary import SUMMARY_MD, finish_sweep

log = logging.getLogger(__name__)
LAUNCH_SETTLE_S = 60.0  # how long a resumed sweep waits for a COMPLETING SLURM job to settle


class SweepFailed(CompactHydraException):
    """Some jobs of a grid sweep failed; the message names each one.

    A ``CompactHydraException``: Hydra prints the message without a traceback.
    """


# A job whose record says one of these has ended for good: a resumed sweep does not launch
# it again (a diverged run would diverge again; a pruned one was judged hopeless).
ENDED = (Status.COMPLETED, Status.PRUNED, Status.DIVERGED)
DEVICE_KEY = "trainer.device"


def ended_as(job_dir: Path, overrides: Sequence[str]) -> Status | None:
    """The status the job in ``job_dir`` ended with (one of :data:`ENDED`) when it ran with
    these task overrides (in any order, a device its sweeper assigned aside), else None."""
    summary = RunRecord(job_dir).read_summary() or {}
    status = summary.get("status")
    if status not in {s.value for s in ENDED}:
        return None
    recorded = summary.get("overrides")
    if recorded is not None and not has_key(overrides, DEVICE_KEY):
        recorded = [o for o in recorded if not o.startswith(f"{DEVICE_KEY}=")]
    return Status(status) if same_overrides(recorded, list(overrides)) else None


def is_done(job_dir: Path, overrides: Sequence[str]) -> bool:
    """The job in ``job_dir`` ended (completed, pruned or diverged: :data:`ENDED`) with
    these task overrides (in any order)."""
    return ended_as(job_dir, overrides) is not None


def has_key(overrides: Sequence[str], key: str) -> bool:
    """One of ``overrides`` sets ``key`` (``key=...``, ``+key=...``, ``++key=...``)."""
    return any(o.lstrip("+~").split("=", 1)[0] == key for o in overrides)


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


def skipped_note(sweep_dir: Path, jobs: Sequence[Sequence[str]], pending: list[int]) -> str:
    """``2 of 3 jobs completed earlier and are skipped.``, or with the statuses when some
    were pruned or diverged: ``3 of 4 jobs ended earlier (2 completed, 1 diverged) ...``."""
    skipped = [i for i in range(len(jobs)) if i not in set(pending)]
    statuses = [ended_as(sweep_dir / str(i), task_overrides(jobs[i])) for i in skipped]
    ended = [s for s in statuses if s is not None]
    counts = ", ".join(f"{ended.count(s)} {s}" for s in ENDED if s in ended)
    held = len(skipped) - len(ended)
    if held == 0 and set(ended) <= {Status.COMPLETED}:
        return f"{len(skipped)} of {len(jobs)} jobs completed earlier and are skipped."
    return (f"{len(skipped)} of {len(jobs)} jobs are skipped: "
            + ", ".join(filter(None, [f"{len(ended)} ended earlier ({counts})" if ended else "",
                                      f"{held} still in SLURM's queue" if held else ""])) + ".")


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


def joblib_workers(launcher: DictConfig) -> int | None:
    """How many jobs the joblib launcher runs at once (None for any other launcher).

    ``n_jobs`` (default -1); negative: cores + 1 + n_jobs, as joblib counts.
    """
    if not str(launcher.get("_target_", "")).endswith("JoblibLauncher"):
        return None
    n_jobs = int(launcher.get("n_jobs", -1))
    return n_jobs if n_jobs > 0 else max(1, usable_cores() + 1 + n_jobs)


def device_slots(launcher: DictConfig, batch: int, gpus: int) -> list[int | None]:
    """The GPU index of each job of a batch, or None for each where there is none to give.

    With the joblib launcher and two or more visible GPUs (``gpus``), the jobs that run
    at once get a GPU each: the sweeper launches a batch in waves of
    ``min(workers, gpus)`` jobs (:func:`waves`), and job ``i`` of a wave takes GPU ``i``.
    Other launchers
    (one job at a time; SLURM and submitit's local executor give each job its own
    ``CUDA_VISIBLE_DEVICES``) and one GPU or none: None (``trainer.device=auto``).

    Set as ``trainer.device=cuda:N``, not ``CUDA_VISIBLE_DEVICES``: joblib's worker
    processes run one job after another, and CUDA reads the variable once per process.
    """
    workers = joblib_workers(launcher)
    if workers is None or gpus < 2:
        return [None] * batch
    wave = min(workers, gpus)
    return [i % wave for i in range(batch)]


def waves(positions: list[int], launcher: DictConfig, gpus: int) -> list[list[int]]:
    """Split a batch so that the jobs running at once are those :func:`device_slots` gave
    distinct GPUs: waves of ``min(workers, gpus)`` jobs under joblib with two or more
    GPUs (a wave waits for its slowest job), else the batch as it is."""
    workers = joblib_workers(launcher)
    if workers is None or gpus < 2 or not positions:
        return [positions] if positions else []
    size = min(workers, gpus)
    return [positions[i:i + size] for i in range(0, len(positions), size)]


def visible_gpus(launcher: DictConfig) -> int:
    """CUDA devices torch sees here, asked only for the joblib launcher (0 otherwise).

    ``torch.cuda.device_count()`` honours ``CUDA_VISIBLE_DEVICES`` and does not
    initialise CUDA in the sweeper's process.
    """
    if joblib_workers(launcher) is None:
        return 0
    import torch

    return torch.cuda.device_count()


def with_devices(batch: list[list[str]], launcher: DictConfig, gpus: int,
                 recorded: Sequence[Sequence[str] | None] = ()) -> list[list[str]]:
    """Each job's overrides plus ``trainer.device=cuda:N`` from :func:`device_slots`.

    A job that sets ``trainer.device`` itself keeps it. ``recorded``: the overrides a
    job's record holds (a resumed job), whose device it keeps, so that it resumes with
    the overrides it began with.
    """
    slots = device_slots(launcher, len(batch), gpus)
    out = []
    for i, (job, slot) in enumerate(zip(batch, slots)):
        before = recorded[i] if i < len(recorded) else None
        kept = [o for o in before or [] if o.startswith(f"{DEVICE_KEY}=")]
        if slot is None or has_key(job, DEVICE_KEY):
            out.append(list(job))
        else:
            out.append(list(job) + (kept[:1] or [f"{DEVICE_KEY}=cuda:{slot}"]))
    return out


def recorded_overrides(job_dir: Path) -> list[str] | None:
    """The task overrides in a job's ``summary.json``; None when it has none (or is damaged)."""
    try:
        summary = RunRecord(job_dir).read_summary()
    except (ValueError, OSError):
        return None
    return (summary or {}).get("overrides")


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


class LaunchingSweeper(Sweeper):
    """What mnist_lab's sweepers share, on Hydra's public ``Sweeper`` interface: the
    swept keys (``params``, as in Hydra's basic sweeper), the launcher Hydra configured,
    and the sweep folder with its ``multirun.yaml``."""

    def __init__(self, params: dict[str, str] | None = None) -> None:
        self.params = dict(params or {})
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def swept(self, arguments: Sequence[str]) -> list[Override]:
        """The ``params`` and the command's sweep ``arguments``, parsed by Hydra."""
        assert self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        return parser.parse_overrides([f"{k}={v}" for k, v in self.params.items()]
                                      + list(arguments))

    def sweep_dir(self) -> Path:
        """The sweep folder, made, with the composed config in ``multirun.yaml``."""
        assert self.config is not None
        folder = Path(self.config.hydra.sweep.dir)
        folder.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, folder / "multirun.yaml")
        return folder
