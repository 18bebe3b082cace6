"""SLURM's queue as readers and a resumed sweep see it: is a run's job still held?

A sweep launched with ``hydra/launcher=submitit_slurm`` runs each job as a SLURM
job (an array task); its ``summary.json`` names the job (``slurm.job_id``, written
by :func:`mnist_lab.training.runtime.slurm_job`). Readers and a resumed sweep ask
SLURM about it (``squeue``; job states from the ``squeue`` manual, "JOB STATE
CODES") to tell a job that SLURM will run again (pending, requeued after its time
limit or a preemption) from a lost one.

Torch-free; ``squeue`` is only called for records that name a SLURM job.
"""

from __future__ import annotations

import shutil
import subprocess
import time

from ..record.folder import RunRecord, Status

SQUEUE_TIMEOUT_S = 20.0
# squeue's job states (squeue manual, "JOB STATE CODES") in which SLURM holds the job and
# runs it (again). COMPLETING is among them: a job that its time limit or a preemption
# requeues shows COMPLETING for a second or two (seen here: 1.5 s, between RUNNING and
# PENDING), just like one that ends for good; until SLURM has settled it, launching the
# job again could race SLURM's own restart.
QUEUED_STATES = ("PENDING", "CONFIGURING", "RUNNING", "REQUEUED", "REQUEUE_HOLD",
                 "REQUEUE_FED", "RESIZING", "SUSPENDED", "COMPLETING")
SETTLE_S = 10.0  # how long readers wait for a COMPLETING job to settle (seconds)
SETTLE_POLL_S = 1.0


def queue_state(job_id: str) -> str | None:
    """The state SLURM lists the job in (``PENDING``, ``RUNNING``, ``REQUEUED``...).

    Returns:
        The state from ``squeue -h -j JOB -o %T``; ``""`` when SLURM answered
        and does not list the job (it ended, or was never there); None when
        SLURM cannot be asked here (no ``squeue``, or it failed, e.g. another
        cluster's job id).
    """
    if not shutil.which("squeue"):
        return None
    try:
        result = subprocess.run(["squeue", "-h", "-j", str(job_id), "-o", "%T"],
                                capture_output=True, text=True, timeout=SQUEUE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        # squeue exits 1 with "Invalid job id specified" for a job it has forgotten
        return "" if "Invalid job id" in result.stderr else None
    states = result.stdout.split()
    return states[0] if states else ""


def settled_state(job_id: str, settle_s: float) -> str | None:
    """:func:`queue_state`, asked again (every second) while the job is COMPLETING.

    A COMPLETING job is either being requeued or ending for good; after a second
    or two SLURM lists it as PENDING, or not at all. Waits at most ``settle_s``
    seconds for that, then returns whatever SLURM says (COMPLETING included).
    """
    deadline = time.monotonic() + settle_s
    state = queue_state(job_id)
    while state == "COMPLETING" and time.monotonic() < deadline:
        time.sleep(SETTLE_POLL_S)
        state = queue_state(job_id)
    return state


def still_queued(summary: dict | None, settle_s: float = SETTLE_S) -> str | None:
    """The SLURM state of a record's job while SLURM holds it and will (or may)
    run it again (one of :data:`QUEUED_STATES`), else None.

    ``summary`` is a ``summary.json``'s content; only records written by a
    SLURM job (with ``slurm.job_id``) are looked up. A COMPLETING job is asked
    about again for up to ``settle_s`` seconds (see :func:`settled_state`):
    then a requeued job reads as PENDING and one that ended as gone (None).
    One still COMPLETING after that counts as held.
    """
    job = (summary or {}).get("slurm") or {}
    state = settled_state(job["job_id"], settle_s) if job.get("job_id") else None
    return state if state in QUEUED_STATES else None


def slurm_view(summary: dict | None, status: str) -> str:
    """A record's status as SLURM's queue corrects it (records of SLURM jobs only).

    ``lost`` or ``interrupted`` (stopped by a preemption's SIGTERM) while SLURM
    still runs or will run the job again: ``requeued``. ``requeued`` while SLURM
    no longer lists the job (cancelled while pending): ``lost``. Otherwise
    ``status`` itself; no ``squeue`` call for records without a SLURM job id.
    A job listed as COMPLETING is asked about again until it settles (at most
    :data:`SETTLE_S` seconds).
    """
    job_id = ((summary or {}).get("slurm") or {}).get("job_id")
    if not job_id:
        return status
    if status in ("lost", "interrupted") and still_queued(summary):
        return "requeued"
    if status == "requeued" and settled_state(job_id, SETTLE_S) == "":
        return "lost"
    return status


def reader_status(record: RunRecord, summary: dict | None) -> Status:
    """A run's status as readers (compare, sweep summaries) show it.

    The record's own (:meth:`~mnist_lab.record.folder.RunRecord.status`: ``lost`` when
    its process is gone), corrected by SLURM's queue for records of SLURM jobs
    (:func:`slurm_view`).
    """
    return Status(slurm_view(summary, record.status(summary).value))
