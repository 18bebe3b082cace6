"""The run directory: the one module that knows its file names and formats.

A run directory (Hydra's ``outputs/<date>/<time>/`` or ``multirun/.../<job>/``) holds:

=====================  ======================================================
``metrics.csv``        one row per evaluation (:data:`METRIC_COLUMNS`)
``summary.json``       status, test error, best validation error, timings, versions
``checkpoint.pt``      model/optimizer state, step, RNG states, self-description
``best.pt``            the weights with the lowest validation error so far, self-described
``weights_history.pt`` conv weight and bias snapshots at evaluation steps
``run.lock``           while a run lives: its host, pid and heartbeat (:mod:`mnist_lab.runlock`)
``plots/``             error curves, feature maps, filters, confusion matrix
``wandb/``             the W&B run files, when ``logger=wandb``
``.hydra/``            the composed config and overrides (written by Hydra)
=====================  ======================================================

Error rates are fractions in these files. Every file carries
:data:`FORMAT_VERSION`; files are written atomically (temp file, then rename),
except ``metrics.csv``, which grows a row at a time so a crash keeps its rows.
Torch is imported only to read and write the ``.pt`` files, so reading a record
(compare, sweep summaries) stays fast.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError
from .cluster import queue_state, still_queued
from .runlock import read_holder

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
METRIC_COLUMNS = (
    "step", "epoch", "train/error", "train/loss", "val/error", "val/loss", "lr", "elapsed_s",
)
METRICS, SUMMARY, CHECKPOINT, BEST, HISTORY = (
    "metrics.csv", "summary.json", "checkpoint.pt", "best.pt", "weights_history.pt",
)
LOST = "lost"  # the status readers show for a "running" run whose process is gone
TRACKER_STATE = "tracker.json"


def replace_atomically(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)``, then rename the temp file over ``path``.

    Readers see the old file or the new one, never half of one.
    """
    tmp = path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")  # NFS: per host
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class RunRecord:
    """Reads and writes the record of one run in ``run_dir``."""

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)

    def __repr__(self) -> str:
        return f"RunRecord({str(self.dir)!r})"

    @property
    def plots_dir(self) -> Path:
        return self.dir / "plots"

    @property
    def wandb_dir(self) -> Path:
        """The folder handed to ``wandb.init(dir=...)`` (W&B adds ``wandb/`` inside)."""
        return self.dir

    @property
    def checkpoint_path(self) -> Path:
        return self.dir / CHECKPOINT

    def has_record(self) -> bool:
        """True when a run has already written its record here."""
        return any((self.dir / name).exists() for name in (METRICS, SUMMARY, CHECKPOINT))

    def has_checkpoint(self) -> bool:
        return (self.dir / CHECKPOINT).is_file()

    # -- metrics.csv -------------------------------------------------------------
    def start_metrics(self, keep_until_step: int | None = None) -> None:
        """Begin ``metrics.csv``: a new file, or (resuming) keep rows up to a step.

        Rows after ``keep_until_step`` were written after the checkpoint the run
        resumes from; they are dropped so the resumed run writes them again.
        """
        rows = [] if keep_until_step is None else [
            r for r in self.read_metrics() if r["step"] <= keep_until_step
        ]
        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, METRIC_COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
        self.dir.mkdir(parents=True, exist_ok=True)
        replace_atomically(self.dir / METRICS, write)

    def append_metrics(self, row: dict[str, float]) -> None:
        """Append one evaluation row (keys: :data:`METRIC_COLUMNS`) and flush it."""
        with open(self.dir / METRICS, "a", newline="") as f:
            csv.DictWriter(f, METRIC_COLUMNS).writerow({k: row[k] for k in METRIC_COLUMNS})

    def read_metrics(self) -> list[dict[str, float]]:
        """The rows of ``metrics.csv``: ``step`` as int, the rest as float; [] if absent."""
        path = self.dir / METRICS
        if not path.is_file():
            return []
        with open(path, newline="") as f:
            return [
                {k: int(v) if k == "step" else float(v) for k, v in row.items()}
                for row in csv.DictReader(f)
            ]

    # -- summary.json ------------------------------------------------------------
    def write_summary(self, summary: dict[str, Any]) -> None:
        """Write ``summary.json`` (adds ``format_version``)."""
        data = {"format_version": FORMAT_VERSION, **summary}
        self.dir.mkdir(parents=True, exist_ok=True)
        replace_atomically(
            self.dir / SUMMARY, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n")
        )

    def read_summary(self) -> dict[str, Any] | None:
        path = self.dir / SUMMARY
        return json.loads(path.read_text()) if path.is_file() else None

    def status(self, summary: dict[str, Any] | None = None) -> str:
        """The run's status as readers should show it.

        ``summary.json``'s status (running, completed, failed, interrupted), except
        that a ``running`` run whose process is gone (no lock, or a lock whose
        heartbeat is :data:`~mnist_lab.runlock.MISSED_BEATS` intervals old, or
        whose process has ended on this host) is :data:`LOST`, unless SLURM
        still lists its job (pending or requeued: ``requeued``, as is an
        ``interrupted`` run that SLURM requeued after a preemption). A
        ``requeued`` run whose job SLURM no longer lists is lost too
        (:func:`mnist_lab.cluster.still_queued`). "not started" when there is no summary.
        """
        summary = self.read_summary() if summary is None else summary
        status = (summary or {}).get("status", "not started")
        if status == "running":
            holder = read_holder(self.dir)
            if holder is None or holder.is_lost():
                return "requeued" if still_queued(summary) else LOST
        if status == "interrupted" and still_queued(summary):
            return "requeued"
        job_id = ((summary or {}).get("slurm") or {}).get("job_id")
        if status == "requeued" and job_id and queue_state(job_id) == "":
            return LOST
        return status

    # -- checkpoint.pt and weights_history.pt ------------------------------------
    def save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Write ``checkpoint.pt`` atomically; it must load with ``weights_only=True``."""
        import torch

        data = {"format_version": FORMAT_VERSION, **checkpoint}
        replace_atomically(self.dir / CHECKPOINT, lambda tmp: torch.save(data, tmp))

    def load_checkpoint(self, map_location: Any = "cpu") -> dict[str, Any]:
        """Read ``checkpoint.pt`` with ``torch.load(weights_only=True)``.

        Raises:
            FileNotFoundError: no checkpoint in this run directory.
            UserError: the file cannot be read (truncated, damaged, not ours).
        """
        if not self.has_checkpoint():
            raise FileNotFoundError(f"No {CHECKPOINT} in run directory '{self.dir}'")
        return self._load_pt(CHECKPOINT, map_location)

    def _load_pt(self, name: str, map_location: Any = "cpu") -> dict[str, Any]:
        """``torch.load(weights_only=True)`` of one of the run's ``.pt`` files.

        Raises:
            UserError: the file cannot be read (truncated, damaged, not ours).
        """
        import torch

        path = self.dir / name
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except Exception as error:  # truncated, corrupt, or not a mnist_lab file
            reason = " ".join(str(error).split())[:200]
            raise UserError(f"'{path}' cannot be read as a mnist_lab {name} ({reason}). "
                            "It may be truncated or damaged.") from None

    def save_best(self, best: dict[str, Any]) -> None:
        """Write ``best.pt`` atomically: the best-validation weights and their description."""
        import torch

        data = {"format_version": FORMAT_VERSION, **best}
        replace_atomically(self.dir / BEST, lambda tmp: torch.save(data, tmp))

    def has_best(self) -> bool:
        return (self.dir / BEST).is_file()

    def load_best(self, map_location: Any = "cpu") -> dict[str, Any]:
        """Read ``best.pt`` (``weights_only=True``); UserError when damaged, as for checkpoints."""
        return self._load_pt(BEST, map_location)

    def save_weights_history(self, history: dict[str, Any]) -> None:
        import torch

        data = {"format_version": FORMAT_VERSION, **history}
        replace_atomically(self.dir / HISTORY, lambda tmp: torch.save(data, tmp))

    def load_weights_history(self) -> dict[str, Any] | None:
        """The saved conv-weight history; None when there is none or it is damaged.

        A damaged file (truncated, say) is renamed to
        ``weights_history.pt.damaged-<time>`` (kept, never deleted) with a
        warning, and the history restarts: the checkpoint is never lost over it.
        """
        path = self.dir / HISTORY
        if not path.is_file():
            return None
        try:
            return self._load_pt(HISTORY)
        except UserError as error:
            kept = path.with_name(f"{HISTORY}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(path, kept)
            log.warning("%s The conv-weight history restarts at this step; the damaged "
                        "file is kept as %s.", error, kept)
            return None

    # -- tracker state (e.g. the W&B run id, so a resumed run continues it) -------
    def read_tracker_state(self) -> dict[str, Any]:
        path = self.dir / TRACKER_STATE
        return json.loads(path.read_text()) if path.is_file() else {}

    def write_tracker_state(self, state: dict[str, Any]) -> None:
        replace_atomically(
            self.dir / TRACKER_STATE, lambda tmp: tmp.write_text(json.dumps(state) + "\n")
        )

    # -- what Hydra wrote --------------------------------------------------------
    def overrides(self) -> list[str]:
        """The task overrides of the run (``.hydra/overrides.yaml``), [] if none."""
        path = self.dir / ".hydra" / "overrides.yaml"
        return list(yaml.safe_load(path.read_text()) or []) if path.is_file() else []


def model_description(name: str, kwargs: dict[str, Any], in_shape: tuple, classes: tuple,
                      mean: float, std: float) -> dict[str, Any]:
    """The checkpoint's self-description, as plain containers.

    Enough to rebuild the model and prepare its input without the run's config:
    model class and arguments, input shape and preprocessing, class names.
    """
    return {
        "model": {"name": name, "kwargs": dict(kwargs), "in_shape": list(in_shape),
                  "num_classes": len(classes)},
        "input": {"scale": "pixel / 255", "mean": float(mean), "std": float(std)},
        "classes": list(classes),
    }
