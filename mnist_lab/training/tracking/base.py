"""The trackers' interface: what observes a run, behind one small protocol.

- :class:`Tracker`: the events of a run (start, each evaluation, end, failure, close).
- :class:`Trackers` fans every event out. A failing optional tracker (W&B) never
  stops training or costs the local record: it is warned about once and dropped.
- :class:`RunEnd`: everything known at the end of a run.

The trackers themselves: :mod:`.local` (the run record, always on) and
:mod:`.wandb_tracker` (``logger=wandb``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..evaluation import EvalResult, confusion_matrix
from ..snapshots import WeightsHistory

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
    """The events of a run; every method does nothing unless overridden.

    A tracker is a part (``logger=<name>``, several at once: ``logger=[wandb,tensorboard]``):
    the class its node ``logger.<name>._target_`` names is built as
    ``Class(job=JobInfo, **the node's other keys)`` before any data is read, and may
    refuse its arguments there (``ConfigError``). One that fails later is warned about
    once and dropped (:class:`Trackers`): it costs nothing but itself.
    """

    required = False  # a required tracker's failure stops the run

    def log_start(self, summary: dict[str, Any], probe: torch.Tensor,
                  rows: list[dict[str, float]], step: int) -> None:
        """The run starts (or resumes) at ``step``; ``summary`` has ``status: running``.

        ``probe``: float32 (K, C, H, W) fixed, normalised validation images.
        ``rows``: the metrics rows restored from the checkpoint ([] for a new run).
        ``step``: 0, or the step of the checkpoint a resumed run continues from (its
        rows after that step were lost with the session and are logged again).
        """

    def log_evaluation(self, row: dict[str, float], images_per_s: float,
                       model: nn.Module) -> None:
        """A metrics row (keys ``metrics_csv.METRIC_COLUMNS``) after an evaluation."""

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
                  rows: list[dict[str, float]], step: int) -> None:
        self._each("log_start", summary, probe, rows, step)

    def log_evaluation(self, row: dict[str, float], images_per_s: float,
                       model: nn.Module) -> None:
        self._each("log_evaluation", row, images_per_s, model)

    def log_end(self, end: RunEnd) -> None:
        self._each("log_end", end)

    def log_failure(self, summary: dict[str, Any]) -> None:
        self._each("log_failure", summary)

    def close(self, exit_code: int) -> None:
        self._each("close", exit_code)
