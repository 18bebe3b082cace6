"""The run directory: the one module that knows its file names and formats.

A run directory (Hydra's ``outputs/<date>/<time>/`` or ``multirun/.../<job>/``) holds:

=====================  ======================================================
``metrics.csv``        one row per evaluation (:data:`METRIC_COLUMNS`)
``summary.json``       status, test error, best validation error, timings, versions
``checkpoint.pt``      model/optimizer state, step, RNG states, self-description
``weights_history.pt`` conv weight and bias snapshots at evaluation steps
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
import os
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError

FORMAT_VERSION = 1
METRIC_COLUMNS = (
    "step", "epoch", "train/error", "train/loss", "val/error", "val/loss", "lr", "elapsed_s",
)
METRICS, SUMMARY, CHECKPOINT, HISTORY = (
    "metrics.csv", "summary.json", "checkpoint.pt", "weights_history.pt",
)
TRACKER_STATE = "tracker.json"


def replace_atomically(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)``, then rename the temp file over ``path``.

    Readers see the old file or the new one, never half of one.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
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
        path = self.dir / CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"No {CHECKPOINT} in run directory '{self.dir}'")
        import torch

        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except Exception as error:  # truncated, corrupt, or not a mnist_lab checkpoint
            reason = " ".join(str(error).split())[:200]
            raise UserError(f"'{path}' cannot be read as a mnist_lab checkpoint ({reason}). "
                            "It may be truncated or damaged; use another run.") from None

    def save_weights_history(self, history: dict[str, Any]) -> None:
        import torch

        data = {"format_version": FORMAT_VERSION, **history}
        replace_atomically(self.dir / HISTORY, lambda tmp: torch.save(data, tmp))

    def load_weights_history(self) -> dict[str, Any] | None:
        import torch

        path = self.dir / HISTORY
        return torch.load(path, weights_only=True) if path.is_file() else None

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
