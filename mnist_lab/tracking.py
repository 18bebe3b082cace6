"""Trackers: what observes a run, behind one small interface.

- :class:`LocalTracker`, always on: ``metrics.csv`` rows, ``summary.json`` and
  the PNG plots of the run record.
- ``WandbTracker`` (:mod:`mnist_lab.wandb_tracker`), with ``logger=wandb``.

:class:`Trackers` fans every event out. A failing optional tracker (W&B) never
stops training or costs the local record: it is warned about once and dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from . import plots
from .evaluate import EvalResult, confusion_matrix, eval_mode
from .record import RunRecord
from .snapshots import WeightsHistory

log = logging.getLogger(__name__)


@dataclass
class RunEnd:
    """Everything known at the end of a run, for the trackers' final logs.

    Attributes:
        summary: the ``summary.json`` content (error rates as fractions).
        rows: every metrics row of the run.
        test: the test-split evaluation, with predictions and probabilities.
        test_images: uint8 (N, C, H, W) and test_labels: int64 (N,), on the CPU.
        classes: class names. model: the trained model. history: conv snapshots.
        probe: float32 (K, C, H, W) fixed, normalised validation images.
    """

    summary: dict[str, Any]
    rows: list[dict[str, float]]
    test: EvalResult
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple
    model: nn.Module
    history: WeightsHistory
    probe: torch.Tensor

    def confusion(self) -> torch.Tensor:
        """int64 (C, C) confusion matrix of the test split (rows: true class)."""
        assert self.test.predictions is not None
        return confusion_matrix(self.test_labels, self.test.predictions, len(self.classes))


class Tracker:
    """The events of a run; every method does nothing unless overridden."""

    required = False  # a required tracker's failure stops the run

    def log_start(self, summary: dict[str, Any], probe: torch.Tensor,
                  rows: list[dict[str, float]]) -> None:
        """The run starts (or resumes); ``summary`` has ``status: running``.

        ``probe``: float32 (K, C, H, W) fixed, normalised validation images.
        ``rows``: the metrics rows restored from the checkpoint ([] for a new run).
        """

    def log_evaluation(self, row: dict[str, float], images_per_s: float,
                       model: nn.Module) -> None:
        """A metrics row (keys ``record.METRIC_COLUMNS``) after an evaluation."""

    def log_end(self, end: RunEnd) -> None:
        """The run finished: final summary, test results and the trained model."""

    def log_failure(self, summary: dict[str, Any]) -> None:
        """The run failed or was stopped; ``summary`` holds status and message."""

    def close(self, exit_code: int) -> None:
        """Release resources; ``exit_code`` 0 for success."""


class Trackers(Tracker):
    """Sends each event to several trackers, isolating optional ones' failures."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = list(trackers)

    def _each(self, method: str, *args: Any) -> None:
        for tracker in list(self.trackers):
            try:
                getattr(tracker, method)(*args)
            except Exception as error:
                if tracker.required:
                    raise
                self.trackers.remove(tracker)
                log.warning("%s failed in %s and is switched off for this run "
                            "(training and the local record go on): %s",
                            type(tracker).__name__, method, error)
                if method != "close":
                    self._close_quietly(tracker)

    @staticmethod
    def _close_quietly(tracker: Tracker) -> None:
        try:
            tracker.close(1)
        except Exception:
            pass

    def log_start(self, summary: dict[str, Any], probe: torch.Tensor,
                  rows: list[dict[str, float]]) -> None:
        self._each("log_start", summary, probe, rows)

    def log_evaluation(self, row: dict[str, float], images_per_s: float,
                       model: nn.Module) -> None:
        self._each("log_evaluation", row, images_per_s, model)

    def log_end(self, end: RunEnd) -> None:
        self._each("log_end", end)

    def log_failure(self, summary: dict[str, Any]) -> None:
        self._each("log_failure", summary)

    def close(self, exit_code: int) -> None:
        self._each("close", exit_code)


class LocalTracker(Tracker):
    """The local record: metrics rows, ``summary.json`` and PNG plots."""

    required = True

    def __init__(self, record: RunRecord) -> None:
        self.record = record

    def log_start(self, summary: dict[str, Any], probe: torch.Tensor,
                  rows: list[dict[str, float]]) -> None:
        self.record.write_summary(summary)

    def log_evaluation(self, row: dict[str, float], images_per_s: float,
                       model: nn.Module) -> None:
        self.record.append_metrics(row)

    def log_end(self, end: RunEnd) -> None:
        self.record.write_summary(end.summary)
        write_plots(self.record, end)

    def log_failure(self, summary: dict[str, Any]) -> None:
        self.record.write_summary(summary)


def write_plots(record: RunRecord, end: RunEnd) -> None:
    """Error curves, feature maps, first-layer filters and the confusion matrix as PNGs."""
    out = record.plots_dir
    out.mkdir(parents=True, exist_ok=True)
    plots.save(plots.error_curves(end.rows), out / "error_curves.png")
    if hasattr(end.model, "feature_maps"):
        with eval_mode(end.model):
            maps = end.model.feature_maps(end.probe[:1])
        plots.save(plots.feature_maps([m[0] for m in maps]), out / "feature_maps.png")
    if end.history.steps:
        plots.save(plots.filter_evolution(end.history), out / "filters.png")
    plots.save(plots.confusion(end.confusion(), end.classes), out / "confusion_matrix.png")


def make_trackers(logger: Any, job: Any) -> list[Tracker]:
    """The optional trackers chosen by ``logger`` (the local record is always on).

    Args:
        logger: the ``logger`` settings (``NoLoggerConfig`` or ``WandbLoggerConfig``).
        job: the :class:`~mnist_lab.job.JobInfo` of this run.

    Raises:
        UserError: W&B asked for online without credentials (checked before training).
    """
    if getattr(logger, "name", "none") == "wandb":
        from .wandb_tracker import WandbTracker

        return [WandbTracker(logger, job)]
    return []
