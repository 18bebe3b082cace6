"""The run directory: the one module that knows its file names, statuses and formats.

A run directory (Hydra's ``outputs/<date>/<time>/`` or ``multirun/.../<job>/``) holds:

=====================  ======================================================
``metrics.csv``        one row per evaluation (format: :mod:`mnist_lab.record.metrics`)
``summary.json``       status, test error, best validation error, timings, versions
``checkpoint.pt``      a :class:`~mnist_lab.record.checkpoint.Checkpoint`: weights, optimizer,
                       RNG and loop state, and the model's self-description
``best.pt``            the weights with the lowest validation error so far, self-described
``weights_history.pt`` conv weight and bias snapshots at evaluation steps
``run.lock``           while a run lives: its host, pid and heartbeat (:mod:`mnist_lab.record.lock`)
``tracker.json``       the W&B run id, so a resumed run continues its W&B run
``plots/``             error curves, feature maps, filters, confusion matrix (:data:`PLOTS`)
``wandb/``             the W&B run files, when ``logger=wandb``
``.hydra/``, ``run.log``  the composed config and overrides; the log (written by Hydra)
=====================  ======================================================

Error rates are fractions in these files. The JSON and ``.pt`` files carry
:data:`FORMAT_VERSION`, checked when read; ``metrics.csv`` is read by column name
(:mod:`mnist_lab.record.metrics`). Files are written atomically, except
``metrics.csv``, which grows a row at a time so a crash keeps its rows. JSON is
strict (no ``NaN`` or ``Infinity``: a non-finite number is written as ``null``).

Everything read from a run folder is untrusted: a damaged or foreign file costs one
line (:class:`RecordError`), never a traceback. A run that holds the folder's lock
gives its record a ``guard`` (:meth:`~mnist_lab.record.lock.RunLock.check_held`),
called right before each write, so a run whose folder was taken over writes nothing
more. A write that fails (a full disk, a read-only folder) raises
:class:`RecordWriteError`; the file it replaces is intact. Torch is imported only for
the ``.pt`` files, so reading a record (compare, sweep summaries) stays fast.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import shutil
import time
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Callable

import yaml

from ..errors import RunError, UserError
from .atomic import replace_atomically
from .checkpoint import FORMAT_VERSION, Checkpoint
from .lock import read_holder
from .metrics import append_row, read_rows, write_rows

log = logging.getLogger(__name__)
METRICS, SUMMARY, CHECKPOINT, BEST, HISTORY = (
    "metrics.csv", "summary.json", "checkpoint.pt", "best.pt", "weights_history.pt",
)
LOCK, TRACKER_STATE, HYDRA, LOG = "run.lock", "tracker.json", ".hydra", "run.log"
PLOTS = ("error_curves", "feature_maps", "filters", "confusion_matrix")  # plots/<name>.png


class Status(str, Enum):
    """A run's status: in ``summary.json`` (all but ``lost``) and as readers show it."""

    RUNNING, COMPLETED, FAILED = "running", "completed", "failed"
    INTERRUPTED, REQUEUED = "interrupted", "requeued"  # after a checkpoint (SLURM: runs again)
    DIVERGED = "diverged"  # the loss or the weights became non-finite; no result
    PRUNED = "pruned"  # a sweeper's pruner stopped it early, after a checkpoint
    LOST = "lost"  # "running" in summary.json, but its process is gone
    NOT_STARTED = "not started"  # no summary.json yet
    __str__, __format__ = (lambda self: self.value), str.__format__


# A run that ended with one of these has recorded its own end (a failure that follows is
# not recorded over it).
ENDED_WITHOUT_RESULT = (Status.FAILED, Status.INTERRUPTED, Status.DIVERGED, Status.PRUNED)


class RecordError(UserError):
    """A file of the run folder cannot be read: damaged, foreign, or of a newer mnist_lab."""


class RecordWriteError(RunError):
    """A file of the run's record could not be written (a full disk, a read-only folder).

    The file it was to replace is intact (writes are atomic). Attributes: ``name`` (the
    file) and ``error`` (the ``OSError``).
    """

    def __init__(self, name: str, folder: Path, error: OSError) -> None:
        reason = (error.strerror or str(error)).lower()
        super().__init__(f"{reason} while writing {name} in '{folder}'")
        self.name, self.error = name, error


def _checked(data: Any, path: Path) -> dict[str, Any]:
    """``data`` read from ``path``: a JSON object not written by a newer mnist_lab.

    Raises:
        RecordError: not an object, or a newer format version.
    """
    if not isinstance(data, dict):
        raise RecordError(f"'{path}' holds {type(data).__name__}, not a JSON object: it is "
                          "damaged or not mnist_lab's.")
    version = data.get("format_version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RecordError(f"'{path}' has format version {version!r}; this mnist_lab reads "
                          f"versions up to {FORMAT_VERSION}. Use the mnist_lab that wrote it.")
    return data


def strict_json(data: Any, indent: int | None = None) -> str:
    """``data`` as strict JSON (RFC 8259): non-finite floats become ``null``."""
    def finite(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [finite(v) for v in value]
        return value
    return json.dumps(finite(data), indent=indent, allow_nan=False)


class RunRecord:
    """Reads and writes the record of one run in ``run_dir``.

    Args:
        guard: called right before each write (the run's
            :meth:`~mnist_lab.record.lock.RunLock.check_held`); None for readers.
    """

    def __init__(self, run_dir: str | Path, guard: Callable[[], None] | None = None) -> None:
        self.dir = Path(run_dir)
        self.guard = guard

    lock_path = property(lambda self: self.dir / LOCK)
    checkpoint_path = property(lambda self: self.dir / CHECKPOINT)
    best_path = property(lambda self: self.dir / BEST)
    wandb_dir = property(lambda self: self.dir, doc="for wandb.init(dir=...), which adds wandb/")

    def plot_path(self, name: str) -> Path:
        """``plots/<name>.png``, ``name`` one of :data:`PLOTS`."""
        assert name in PLOTS, name
        return self.dir / "plots" / f"{name}.png"

    def has_record(self) -> bool:
        """True when a run has already written its record here."""
        return any((self.dir / name).exists() for name in (METRICS, SUMMARY, CHECKPOINT))

    def holds_only_hydra_files(self) -> bool:
        """Nothing but what Hydra makes before a job runs (``.hydra/``, ``run.log``)."""
        return {p.name for p in self.dir.iterdir()} <= {HYDRA, LOG}

    def is_occupied(self) -> bool:
        """A record, a live or dead run's lock, or Hydra's files of another session."""
        return self.has_record() or any((self.dir / n).exists() for n in (LOCK, HYDRA))

    def has_checkpoint(self) -> bool:
        """``checkpoint.pt`` exists (a run that can be resumed, evaluated, served)."""
        return (self.dir / CHECKPOINT).is_file()

    def has_best(self) -> bool:
        """``best.pt`` exists (the run evaluated at least once)."""
        return (self.dir / BEST).is_file()

    def _writing(self, name: str, write: Callable[[], None]) -> None:
        """Run ``write`` (of the file ``name``), one line on failure (:class:`RecordWriteError`)."""
        try:
            write()
        except OSError as error:
            raise RecordWriteError(name, self.dir, error) from None

    # -- metrics.csv (its format: :mod:`mnist_lab.record.metrics`) -------------------
    def start_metrics(self, keep_until_step: int | None = None) -> None:
        """Begin ``metrics.csv``: a new file, or (resuming) keep rows up to a step.

        Rows after ``keep_until_step`` were written after the checkpoint the run
        resumes from; they are dropped so the resumed run writes them again.
        """
        rows = [] if keep_until_step is None else [
            r for r in self.read_metrics() if r["step"] <= keep_until_step]
        self._writing(METRICS, lambda: write_rows(self.dir / METRICS, rows, self.guard))

    def append_metrics(self, row: dict[str, float]) -> None:
        """Append one evaluation row (keys: at least
        :data:`~mnist_lab.record.metrics.METRIC_COLUMNS`)."""
        if self.guard is not None:
            self.guard()
        self._writing(METRICS, lambda: append_row(self.dir / METRICS, row))

    def read_metrics(self) -> list[dict[str, float]]:
        """The rows of ``metrics.csv`` (:func:`~mnist_lab.record.metrics.read_rows`)."""
        return read_rows(self.dir / METRICS)

    # -- summary.json and tracker.json ---------------------------------------------
    def write_summary(self, summary: dict[str, Any]) -> None:
        """Write ``summary.json`` (adds ``format_version``)."""
        self._write_json(SUMMARY, summary, indent=2)

    def read_summary(self) -> dict[str, Any] | None:
        """``summary.json`` as a dict (with ``format_version``); None if there is none.

        Raises:
            RecordError: damaged, not a JSON object, or written by a newer mnist_lab.
        """
        return self._read_json(SUMMARY)

    def read_summary_or_set_aside(self) -> dict[str, Any] | None:
        """``summary.json`` for a run about to continue; a damaged one is set aside.

        A damaged file (truncated, say) is renamed to ``summary.json.damaged-<time>``
        (kept, never deleted) with a warning, and None is returned: the resumed run
        writes its summary anew from its checkpoint. A newer mnist_lab's file is
        refused (RecordError), not set aside.
        """
        try:
            return self.read_summary()
        except RecordError as error:
            if "format version" in str(error):
                raise
            damaged = error
        log.warning("%s It is kept as %s; the run's summary is written anew from its "
                    "checkpoint.", damaged, self.set_aside(SUMMARY, "damaged"))
        return None

    def status(self, summary: dict[str, Any] | None = None) -> Status:
        """The run's status from its own record.

        ``summary.json``'s status, but ``lost`` for a ``running`` run whose process is gone
        (no lock, a heartbeat :data:`~mnist_lab.record.lock.MISSED_BEATS` intervals old, or
        its process ended on this host). Readers that also ask SLURM's queue use
        :func:`mnist_lab.sweeps.slurm.reader_status`.

        Raises:
            RecordError: ``summary.json`` is damaged or names no status this mnist_lab knows.
        """
        summary = self.read_summary() if summary is None else summary
        try:
            status = Status((summary or {}).get("status", Status.NOT_STARTED))
        except ValueError:
            raise RecordError(f"'{self.dir / SUMMARY}' has the status "
                              f"{summary.get('status')!r}, which this mnist_lab does not "
                              "know.") from None
        if status is Status.RUNNING:
            holder = read_holder(self.lock_path)
            if holder is None or holder.is_lost():
                status = Status.LOST
        return status

    def read_tracker_state(self) -> dict[str, Any]:
        """What the trackers keep (e.g. ``wandb_run_id``), without ``format_version``."""
        state = self._read_json(TRACKER_STATE) or {}
        return {k: v for k, v in state.items() if k != "format_version"}

    def write_tracker_state(self, state: dict[str, Any]) -> None:
        """Replace ``tracker.json`` with ``state`` (atomically; adds ``format_version``)."""
        self._write_json(TRACKER_STATE, state)

    def _write_json(self, name: str, data: dict[str, Any], indent: int | None = None) -> None:
        text = strict_json({"format_version": FORMAT_VERSION, **data}, indent) + "\n"

        def write() -> None:
            self.dir.mkdir(parents=True, exist_ok=True)
            replace_atomically(self.dir / name, lambda tmp: tmp.write_text(text), self.guard)
        self._writing(name, write)

    def _read_json(self, name: str) -> dict[str, Any] | None:
        path = self.dir / name
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
        except (ValueError, OSError) as error:  # JSONDecodeError, UnicodeDecodeError
            reason = " ".join(str(error).split())[:120]
            raise RecordError(f"'{path}' cannot be read ({reason}): it is truncated or "
                              "damaged.") from None
        return _checked(data, path)

    # -- checkpoint.pt, best.pt and weights_history.pt ------------------------------
    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Write ``checkpoint.pt`` atomically; it loads with ``weights_only=True``."""
        self._save_pt(CHECKPOINT, checkpoint.to_dict())

    def load_checkpoint(self, map_location: Any = "cpu") -> Checkpoint:
        """Read ``checkpoint.pt``.

        Raises:
            FileNotFoundError: no checkpoint in this run directory.
            UserError: the file cannot be read (truncated, damaged, not ours, newer).
        """
        if not self.has_checkpoint():
            raise FileNotFoundError(f"No {CHECKPOINT} in run directory '{self.dir}'")
        return Checkpoint.from_dict(self._load_pt(CHECKPOINT, map_location),
                                    str(self.dir / CHECKPOINT))

    def save_best(self, best: Checkpoint) -> None:
        """Write ``best.pt``: the best-validation weights and their description."""
        self._save_pt(BEST, best.to_dict())

    def load_best(self, map_location: Any = "cpu") -> Checkpoint:
        """Read ``best.pt``; UserError when damaged, as for checkpoints."""
        return Checkpoint.from_dict(self._load_pt(BEST, map_location), str(self.dir / BEST))

    def save_weights_history(self, history: dict[str, Any]) -> None:
        """Write ``weights_history.pt`` (see :mod:`mnist_lab.training.snapshots`)."""
        self._save_pt(HISTORY, {"format_version": FORMAT_VERSION, **history})

    def load_weights_history(self) -> dict[str, Any] | None:
        """The saved conv-weight history; None when there is none or it is damaged.

        A damaged file (truncated, say) is set aside as
        ``weights_history.pt.damaged-<time>`` (:meth:`set_aside`) with a warning, and
        the history restarts: the checkpoint is never lost over it.

        Raises:
            RecordError: the file was written by a newer mnist_lab (format version).
        """
        path = self.dir / HISTORY
        if not path.is_file():
            return None
        try:
            data = self._load_pt(HISTORY)
        except UserError as error:
            log.warning("%s The conv-weight history restarts at this step; the damaged "
                        "file is kept as %s.", error, self.set_aside(HISTORY, "damaged"))
            return None
        return _checked(data, path)  # a newer mnist_lab's file is refused, not set aside

    def set_aside_best(self, why: str) -> Path:
        """Rename ``best.pt`` to ``best.pt.<why>-<time>`` (kept, never deleted); its new path."""
        return self.set_aside(BEST, why)

    def set_aside(self, name: str, why: str) -> Path:
        """Rename the file ``name`` to ``<name>.<why>-<time>`` (kept, never deleted); its path."""
        kept = self.dir / f"{name}.{why}-{time.strftime('%Y%m%d-%H%M%S')}"
        if self.guard is not None:
            self.guard()
        self._writing(name, lambda: os.replace(self.dir / name, kept))
        return kept

    def _save_pt(self, name: str, data: dict[str, Any]) -> None:
        """``torch.save`` into memory, then the bytes to the file (atomically), so that a
        full disk is a plain ``OSError``, not an error inside torch's writer."""
        import torch

        buffer = io.BytesIO()
        torch.save(data, buffer)
        payload = buffer.getvalue()
        self._writing(name, lambda: replace_atomically(
            self.dir / name, lambda tmp: tmp.write_bytes(payload), self.guard))

    def _load_pt(self, name: str, map_location: Any = "cpu") -> dict[str, Any]:
        """``torch.load(weights_only=True)`` of one of the run's ``.pt`` files.

        Raises:
            UserError: the file cannot be read (truncated, damaged, not ours).
        """
        import torch

        path = self.dir / name
        try:
            data = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as error:  # truncated, corrupt, or not a mnist_lab file
            reason = " ".join(str(error).split()).split(". ")[0][:120]  # torch's first sentence
            if reason.isdigit() or not reason:  # torch names only the bytes it found
                reason = "not a file that torch.save wrote"
            raise RecordError(f"'{path}' cannot be read as a mnist_lab {name} ({reason}). "
                              "It may be truncated or damaged.") from None
        if not isinstance(data, dict):
            raise RecordError(f"'{path}' holds {type(data).__name__}, not a mnist_lab {name}.")
        return data

    # -- what Hydra wrote --------------------------------------------------------
    def overrides(self) -> list[str]:
        """The task overrides of the run (``.hydra/overrides.yaml``), [] if none or damaged."""
        path = self.dir / HYDRA / "overrides.yaml"
        try:
            found = yaml.safe_load(path.read_text()) if path.is_file() else []
        except (OSError, yaml.YAMLError):
            return []
        return [str(o) for o in found] if isinstance(found, list) else []


def now() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def failure_summary(error: BaseException, status: Status = Status.FAILED) -> dict:
    """The ``summary.json`` fields of a run that failed (or was stopped) with ``error``."""
    return {"status": status, "error": f"{type(error).__name__}: {error}", "finished_at": now()}


def same_overrides(a: list[str] | None, b: list[str] | None) -> bool:
    """The same task overrides, in any order (as Hydra applies them)."""
    return a is not None and b is not None and sorted(a) == sorted(b)


def record_failure(run_dir: str | Path, overrides: list[str], error: BaseException,
                   slurm: dict | None) -> None:
    """Keep a failed sweep job's status and message in its directory.

    Only the job's own record is written: a directory that holds another run's
    record (other overrides), or a failure the run already recorded, is left alone.
    ``slurm``: the SLURM job it ran in (:func:`mnist_lab.training.runtime.slurm_job`).
    """
    record = RunRecord(run_dir)
    previous = record.read_summary()
    if previous is not None and (not same_overrides(previous.get("overrides"), overrides)
                                 or previous.get("status") in ENDED_WITHOUT_RESULT):
        return
    record.write_summary({"overrides": overrides, "slurm": slurm, **(previous or {}),
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
