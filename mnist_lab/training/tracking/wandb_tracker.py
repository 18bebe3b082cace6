"""Weights & Biases tracking: error curves, feature maps, filters, test results, model.

Mode (``logger.wandb.mode``, default ``${oc.env:WANDB_MODE,auto}``):

- ``auto``: online when the user is logged in (``WANDB_API_KEY``, or a key saved
  by ``wandb login``), offline otherwise.
- ``online``: without credentials the run fails before training, with how to
  log in. A server not reached within ``logger.wandb.init_timeout`` seconds: the run
  goes on offline, and says so.
- ``offline`` / ``disabled``: as wandb defines them.

Nothing here ever prompts (the mode is decided before ``wandb.init``), and
wandb's console output is off: the run logs the online run's URL at the start,
or, at its end, the offline folder's ``wandb sync`` command (once, with a path
relative to the working directory). A W&B
failure never stops training (see :class:`~mnist_lab.training.tracking.base.Trackers`). A
resumed run continues the same W&B run (its id is kept in the run directory),
and the steps it holds are asked of W&B, never of a record written before W&B
had them on disk.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Container
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ... import plots
from ..evaluation import eval_mode
from ...config.job import JobInfo
from ...config.parts import schema_of
from ...errors import ConfigError
from ...record.folder import RunRecord
from .base import RunEnd, Tracker
from .wandb_mode import WANDB_MODES, new_run_id, resolve_mode

log = logging.getLogger(__name__)
MAX_MISCLASSIFIED = 100  # rows of the misclassified-images table


class WandbTracker(Tracker):
    """Logs a run to W&B (``logger=wandb``; its settings are ``logger.wandb.*``).

    Args:
        job: the Hydra job (run directory, name, group in a sweep).
        project: W&B project. entity: W&B user or team (None: your default entity).
        group: W&B group (None: the sweep's name and first start time in a sweep).
        tags, notes: shown with the run.
        mode: ``auto`` (online when logged in, else offline), ``online``, ``offline``
            or ``disabled``.
        log_images_every: evaluations between feature-map and filter images (0: never).
        init_timeout: seconds to reach the server before going offline.

    Raises:
        ConfigError: a value outside its range.
        UserError: online mode without credentials (at construction, before training).
    """

    def __init__(self, job: JobInfo, project: str = "mnist_lab", entity: Optional[str] = None,
                 group: Optional[str] = None, tags: Sequence[str] = (),
                 notes: Optional[str] = None, mode: str = "auto", log_images_every: int = 5,
                 init_timeout: float = 60.0) -> None:
        for key, ok, allowed in (
                ("mode", mode in WANDB_MODES, f"must be one of {', '.join(WANDB_MODES)}"),
                ("log_images_every", log_images_every >= 0, "must be >= 0 (0: never)"),
                ("init_timeout", init_timeout > 0, "must be > 0 (seconds)"),
                ("project", bool(project), "must not be empty")):
            if not ok:
                raise ConfigError(f"logger.wandb.{key}", locals()[key], allowed)
        self.project, self.entity, self.group, self.tags = project, entity, group, list(tags)
        self.notes, self.log_images_every, self.init_timeout = notes, log_images_every, \
            init_timeout
        self.job = job
        self.mode = resolve_mode(mode)
        self.record = RunRecord(job.run_dir)
        self.held_steps: Container[int] = ()  # steps whose metrics this W&B run holds
        self.sync_hint = ""  # an offline run's folder and how to upload it
        self.run: Any = None
        self.evaluations = 0
        self.probe: torch.Tensor | None = None

    def _init(self, mode: str, run_id: str, config: dict[str, Any], resuming: bool) -> Any:
        import wandb

        named = (self.job.overrides or self.job.multirun) and not resuming  # keep a resumed name
        return wandb.init(
            project=self.project, entity=self.entity,
            group=self.group or self.job.group,
            name=self.job.run_name if named else None,
            job_type="train", tags=self.tags, notes=self.notes,
            config=config, dir=str(self.record.wandb_dir),
            id=run_id, resume="allow", mode=mode, reinit="create_new",
            settings=wandb.Settings(init_timeout=self.init_timeout, console="off",
                                    silent=True),
        )

    def log_start(self, summary: dict[str, Any], probe: torch.Tensor,
                  rows: list[dict[str, float]], step: int) -> None:
        """Start (or resume) the W&B run; log the restored ``rows`` it lacks, in step order.

        ``rows``: ``metrics.csv`` up to the checkpoint. So W&B holds every row
        once, whatever killed an earlier session.
        """
        import wandb

        run_id = self.record.read_tracker_state().get("wandb_run_id")
        resuming = run_id is not None
        run_id = run_id or new_run_id()
        self.record.write_tracker_state({"wandb_run_id": run_id})
        self.probe = probe[:plots.PROBE_SHOWN]
        try:
            self.run = self._init(self.mode, run_id, summary["config"], resuming)
        except Exception as error:
            if self.mode != "online":
                raise
            log.warning("W&B server not reached within %.0f s (%s); logging offline instead.",
                        self.init_timeout, " ".join(str(error).split()))
            self.mode = "offline"
            wandb.teardown()  # the failed online attempt still holds the run id
            self.run = self._init("offline", run_id, summary["config"], resuming)
        self.run.define_metric("val/error", summary="min")
        self.held_steps = self._held_steps()
        for row in rows:
            if int(row["step"]) not in self.held_steps:
                self._log_row(row, {})
        if self.mode == "offline":
            folder = os.path.dirname(self.run.dir)  # run.dir is <folder>/files
            self.sync_hint = f"W&B offline run; upload it with: wandb sync {_short(folder)}"
        elif self.mode == "online":
            log.info("W&B run: %s", self.run.url)

    def _held_steps(self) -> Container[int]:
        """The steps whose metrics rows this W&B run holds, over all its sessions.

        Online: the server's view, every step below the run's next step (W&B's
        steps only increase). Otherwise: its ``.wandb`` files' ``val/error`` rows.
        """
        if self.mode == "online":
            return range(self.run.step)
        from .wandb_files import logged_steps

        return logged_steps(self.record.wandb_dir, self.run.id, "val/error")

    def log_evaluation(self, row: dict[str, float], images_per_s: float,
                       model: nn.Module) -> None:
        """The metrics row at the training step; every few evaluations the images.

        A resumed run recomputes the rows after its checkpoint; those W&B already
        holds are not logged twice, so W&B's steps keep increasing.
        """
        if int(row["step"]) in self.held_steps:
            return
        data: dict[str, Any] = {"train/images_per_s": images_per_s}
        every = self.log_images_every
        if every and self.evaluations % every == 0 and hasattr(model, "feature_maps"):
            data.update(self._images(model))
        self.evaluations += 1
        self._log_row(row, data)

    def _log_row(self, row: dict[str, float], extra: dict[str, Any]) -> None:
        data = {k: v for k, v in row.items() if k != "step"}
        self.run.log({**data, **extra}, step=int(row["step"]))

    def _images(self, model: nn.Module) -> dict[str, Any]:
        """Feature maps of each conv layer (rows: probe images) and conv1's filters, uint8.

        Each image is on one shared scale (a layer's maps: 0 to their maximum;
        the filters: symmetric about 0), stated in its caption.
        """
        import wandb

        with eval_mode(model):
            maps = model.feature_maps(self.probe)
        images = {}
        for i, m in enumerate(maps):
            shown = m[:, : plots.MAX_CHANNELS]  # (K, C, H, W): one row per probe image
            grid, scale = plots.shared_scale_grid(shown.reshape(-1, *shown.shape[-2:]),
                                                  nrow=shown.shape[1])
            images[f"features/conv{i + 1}"] = wandb.Image(
                grid, caption=f"conv{i + 1}: {shown.shape[1]} maps of {len(shown)} images, {scale}")
        if not hasattr(model, "conv_weights"):
            return images
        filters = model.conv_weights()[0][0].detach()
        grid, scale = plots.shared_scale_grid(
            filters.reshape(-1, *filters.shape[-2:])[: plots.MAX_CHANNELS], signed=True)
        images["filters/conv1"] = wandb.Image(grid, caption=f"conv1 filters, {scale}")
        return images

    def log_end(self, end: RunEnd) -> None:
        """Summary figures, confusion matrix, misclassified images, curves, model artifact."""
        import wandb

        self.run.summary.update({k: v for k, v in end.summary.items()
                                 if isinstance(v, (int, float, str))})
        labels, predicted = end.test_labels.tolist(), end.test.predictions.tolist()
        self.run.log({
            "test/confusion_matrix": wandb.plot.confusion_matrix(
                y_true=labels, preds=predicted, class_names=list(end.classes),
                title="Test confusion matrix"),
            "test/misclassified": self._misclassified(end),
            "plots/error_curves": wandb.Image(plots.to_rgb(plots.error_curves(end.rows))),
        }, step=int(end.summary["steps"]))
        self.run.log_artifact(self._model_artifact(end.summary))

    def _model_artifact(self, summary: dict[str, Any]) -> Any:
        """``checkpoint.pt`` (final weights) and ``best.pt``, each file's test error."""
        import wandb

        keys = ("test/final_error", "test/best_checkpoint_error", "val/best_error",
                "val/best_step", "steps")
        artifact = wandb.Artifact(f"model-{self.run.id}", type="model",
                                  metadata={k: summary.get(k) for k in keys})
        artifact.add_file(str(self.record.checkpoint_path))
        if self.record.has_best():
            artifact.add_file(str(self.record.best_path))
        return artifact

    def _misclassified(self, end: RunEnd) -> Any:
        import wandb

        wrong = (end.test.predictions != end.test_labels).nonzero().flatten()[:MAX_MISCLASSIFIED]
        table = wandb.Table(columns=["image", "true", "predicted", "probability"])
        for i in wrong.tolist():
            image = end.test_images[i, 0].numpy().astype(np.uint8)
            table.add_data(wandb.Image(image), end.classes[end.test_labels[i]],
                           end.classes[end.test.predictions[i]],
                           round(float(end.test.probabilities[i]), 4))
        return table

    def log_failure(self, summary: dict[str, Any]) -> None:
        """The status (``failed``, ``diverged``, ``pruned`` ...) and the error, or where a
        stop rule stopped the run, in the W&B run's summary."""
        if self.run is not None:
            self.run.summary.update({k: summary[k] for k in ("status", "error", "stopped")
                                     if k in summary})

    def close(self, exit_code: int) -> None:
        """Finish the run (non-zero: marked failed) and wait until its files are written."""
        import wandb

        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None
        wandb.teardown()
        if self.sync_hint:
            log.info("%s", self.sync_hint)


SCHEMAS = {"wandb": schema_of(WandbTracker, supplied=("job",))}


def _short(path: str) -> str:
    """``path`` relative to the working directory when it lies below it."""
    return os.path.relpath(path) if os.path.abspath(path).startswith(os.getcwd() + os.sep) \
        else path
