"""The local record as a tracker: ``metrics.csv`` rows, ``summary.json``, PNG plots.

Always on, and required: if it fails, the run fails (it is the record).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ... import plots
from ..evaluation import eval_mode
from ...record.folder import RunRecord
from .base import RunEnd, Tracker


class LocalTracker(Tracker):
    """The local record: metrics rows, ``summary.json`` and PNG plots."""

    required = True

    def __init__(self, record: RunRecord) -> None:
        self.record = record

    def log_start(self, summary: dict[str, Any], probe: torch.Tensor,
                  rows: list[dict[str, float]], step: int) -> None:
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
    """Error curves, feature maps, first-layer filters and the confusion matrix as PNGs.

    Feature maps and filters only for models that expose ``feature_maps()`` and
    ``conv_weights()`` (the run logged which are skipped when it started).
    """
    plots.save(plots.error_curves(end.rows), record.plot_path("error_curves"))
    if hasattr(end.model, "feature_maps"):
        with eval_mode(end.model):
            maps = end.model.feature_maps(end.probe[:1])
        plots.save(plots.feature_maps([m[0] for m in maps]), record.plot_path("feature_maps"))
    if end.history.steps:
        plots.save(plots.filter_evolution(end.history), record.plot_path("filters"))
    plots.save(plots.confusion(end.confusion(), end.classes),
               record.plot_path("confusion_matrix"))
