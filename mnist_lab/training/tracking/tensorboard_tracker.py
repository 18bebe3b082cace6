"""TensorBoard tracking (``logger=tensorboard``): the run's event file under
``<run dir>/tensorboard/``.

At every evaluation, each ``metrics.csv`` column as a scalar under its own name
(``train/error``, ``val/error``, ...) at the training step, plus
``train/images_per_s``; every ``log_images_every`` evaluations the feature maps of
each conv layer and the first layer's filters, each on one shared scale
(:func:`mnist_lab.plots.shared_scale_grid`); at the start the resolved config as
text. The writer is flushed after each evaluation, so a run killed outright loses
no row up to its last checkpoint. A resumed run opens its writer with
``purge_step`` one past the checkpoint's step: TensorBoard drops what the lost
session logged after it, and the rows the resumed run trains again are logged once
more, so every step appears once. ``tensorboard --logdir`` on a sweep folder shows
every job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from ... import plots
from ...config.job import JobInfo
from ...config.parts import schema_of
from ...errors import ConfigError
from ..evaluation import eval_mode
from .base import RunEnd, Tracker

FOLDER = "tensorboard"


class TensorBoardTracker(Tracker):
    """Logs a run to TensorBoard event files in ``<run dir>/tensorboard/``.

    Args:
        job: the Hydra job (its run directory).
        log_images_every: evaluations between feature-map and filter images (0: never).

    Raises:
        ConfigError: ``log_images_every`` < 0.
    """

    def __init__(self, job: JobInfo, log_images_every: int = 5) -> None:
        if log_images_every < 0:
            raise ConfigError("logger.tensorboard.log_images_every", log_images_every,
                              "must be >= 0 (0: never)")
        self.log_dir = Path(job.run_dir) / FOLDER
        self.log_images_every = log_images_every
        self.writer: Any = None
        self.evaluations = 0
        self.probe: torch.Tensor | None = None

    def log_start(self, summary: dict[str, Any], probe: torch.Tensor,
                  rows: list[dict[str, float]], step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.log_dir), purge_step=step + 1 if step else None)
        self.probe = probe[: plots.PROBE_SHOWN]
        if not step:
            self.writer.add_text("config", "```\n" + yaml.safe_dump(summary["config"],
                                                                    sort_keys=False) + "```", 0)

    def log_evaluation(self, row: dict[str, float], images_per_s: float,
                       model: nn.Module) -> None:
        step = int(row["step"])
        for key, value in row.items():
            if key != "step":
                self.writer.add_scalar(key, value, step)
        self.writer.add_scalar("train/images_per_s", images_per_s, step)
        every = self.log_images_every
        if every and self.evaluations % every == 0 and hasattr(model, "feature_maps"):
            self._images(model, step)
        self.evaluations += 1
        self.writer.flush()

    def _images(self, model: nn.Module, step: int) -> None:
        """Feature maps of each conv layer (rows: probe images) and conv1's filters."""
        with eval_mode(model):
            maps = model.feature_maps(self.probe)
        for i, m in enumerate(maps):
            shown = m[:, : plots.MAX_CHANNELS]
            grid, _ = plots.shared_scale_grid(shown.reshape(-1, *shown.shape[-2:]),
                                              nrow=shown.shape[1])
            self.writer.add_image(f"features/conv{i + 1}", grid, step, dataformats="HW")
        if hasattr(model, "conv_weights"):
            filters = model.conv_weights()[0][0].detach()
            grid, _ = plots.shared_scale_grid(
                filters.reshape(-1, *filters.shape[-2:])[: plots.MAX_CHANNELS], signed=True)
            self.writer.add_image("filters/conv1", grid, step, dataformats="HW")

    def log_end(self, end: RunEnd) -> None:
        step = int(end.summary["steps"])
        for key in ("test/error", "test/final_error", "test/best_checkpoint_error"):
            if isinstance(end.summary.get(key), float):
                self.writer.add_scalar(key, end.summary[key], step)

    def close(self, exit_code: int) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


SCHEMAS = {"tensorboard": schema_of(TensorBoardTracker, supplied=("job",))}
