"""One whole run: typed settings in, trained model and run record out.

``run.py`` calls :func:`run_experiment`; this module builds the parts (device,
data, model, optimizer, trackers), restores a checkpoint when resuming, trains,
evaluates the test split once at the end, and writes the summary.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import provenance
from .augment import Augmenter
from .config import MNIST, Config, model_kwargs
from .data import MNISTData, load_data, steps_per_epoch
from .evaluate import evaluate
from .job import JobInfo, failure_summary, now
from .model import build_model
from .optim import build_optimizer, build_scheduler
from .record import RunRecord, model_description
from .resume import check_start, describe, resumed_settings
from .runtime import configure_threads, resolve_device
from .snapshots import WeightsHistory
from .tracking import LocalTracker, RunEnd, Tracker, Trackers, make_trackers
from .train import LoopSettings, LoopState, Window, fit

log = logging.getLogger(__name__)
PROBE_IMAGES = 8  # fixed validation images whose feature maps are shown


def run_experiment(cfg: Config, job: JobInfo, extra_trackers: list[Tracker] = ()) -> float:
    """Train and evaluate one run; return the best validation error (a fraction).

    The trackers are the local record, those ``cfg.logger`` asks for, and
    ``extra_trackers``.

    Raises:
        UserError: bad config value, missing data, nothing to resume, W&B online
            without credentials (all before training).
        KeyboardInterrupt: stopped by Ctrl-C/SIGTERM after writing a checkpoint.
    """
    record = RunRecord(job.run_dir)
    checkpoint = check_start(record, cfg.trainer.resume, job.multirun, job.overrides)
    previous = record.read_summary() or {}
    if checkpoint is not None:
        cfg = resumed_settings(cfg, checkpoint, job.overrides)
        total = loop_settings(cfg).total_steps(MNIST.num_train)
        if checkpoint["step"] >= total and previous.get("status") == "completed":
            log.info("The run in %s is complete (%d steps): nothing to do. To train longer, "
                     "resume it with more trainer.epochs or trainer.max_steps.",
                     record.dir, checkpoint["step"])
            return previous.get("val/best_error", checkpoint["loop"]["best"][0])
        log.info("%s", describe(checkpoint, cfg.optimizer.schedule, total))
    trackers = Trackers([LocalTracker(record), *make_trackers(cfg.logger, job), *extra_trackers])
    device = resolve_device(cfg.trainer.device)
    threads = configure_threads(cfg.trainer.num_threads)
    data = load_data(cfg.data.root, cfg.data.download, cfg.data.val_size,
                     cfg.data.normalize, device)
    run = Run.build(cfg, data, device, record, checkpoint)
    summary = start_summary(job, cfg, checkpoint is not None, previous,
                            {"device": str(device), "num_threads": threads})
    probe = data.norm.apply(data.val.images[:PROBE_IMAGES])
    try:
        trackers.log_start(summary, probe, run.state.rows)
        best = run.train_and_test(trackers, summary, probe)
    except BaseException as error:
        status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        trackers.log_failure({**summary, **failure_summary(error, status)})
        trackers.close(130 if status == "interrupted" else 1)
        if status == "interrupted":
            log.warning("Stopped; continue with: %s", continue_command(job))
        raise
    trackers.close(0)
    return best


def loop_settings(cfg: Config) -> LoopSettings:
    """The training loop's plain settings."""
    return LoopSettings(cfg.trainer.epochs, cfg.data.batch_size, cfg.trainer.eval_every,
                        cfg.trainer.checkpoint_every, cfg.trainer.max_steps, cfg.seed,
                        cfg.trainer.progress)


def start_summary(job: JobInfo, cfg: Config, resumed: bool, previous: dict[str, Any],
                  where: dict[str, Any]) -> dict[str, Any]:
    """``summary.json`` at the start: status running, the run's own overrides and config.

    A resumed run keeps the overrides and start time it began with; the command
    that resumed it is added as ``resumed_with``.
    """
    summary = {"status": "running", "overrides": job.overrides, "started_at": now(),
               "config": job.config, **where}
    if resumed:
        summary.update(overrides=previous.get("overrides", job.overrides),
                       started_at=previous.get("started_at", summary["started_at"]),
                       config=dataclasses.asdict(cfg), resumed_with=job.overrides,
                       resumed_at=now())
    return summary


def continue_command(job: JobInfo) -> str:
    """How to continue a stopped run: the same sweep into its directory, or the run."""
    if job.multirun:
        return ("the same command with hydra.sweep.dir=" + str(Path(job.run_dir).parent)
                + " (completed jobs are skipped, this one resumes)")
    return f"python run.py trainer.resume={job.run_dir}"


@dataclass
class Run:
    """The live parts of a run, built from settings (and a checkpoint when resuming)."""

    cfg: Config
    data: MNISTData
    record: RunRecord
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loop: LoopSettings
    state: LoopState
    history: WeightsHistory

    @classmethod
    def build(cls, cfg: Config, data: MNISTData, device: torch.device, record: RunRecord,
              checkpoint: dict | None) -> "Run":
        torch.manual_seed(cfg.seed)
        model = build_model(cfg.model.name, model_kwargs(cfg.model), data.in_shape,
                            data.num_classes)
        model.to(device=device, memory_format=torch.channels_last)
        loop = loop_settings(cfg)
        optimizer = build_optimizer(cfg.optimizer, model.parameters())
        scheduler = build_scheduler(cfg.optimizer, optimizer, loop.total_steps(len(data.train)))
        history = WeightsHistory(int(cfg.trainer.snapshot_max_mb * 2**20))
        run = cls(cfg, data, record, model, optimizer, scheduler, loop,
                  LoopState(step=0, window=Window.zeros(device)), history)
        run.restore(checkpoint)
        return run

    def restore(self, checkpoint: dict | None) -> None:
        """Load a checkpoint's state, or start the record of a fresh run."""
        if checkpoint is None:
            self.record.start_metrics()
            return
        self.model.load_state_dict(checkpoint["model_state"])
        self.optimizer.load_state_dict(checkpoint["optimizer_state"])
        self.scheduler.load_state_dict(checkpoint["scheduler_state"])
        torch.set_rng_state(checkpoint["rng"]["torch"])
        if torch.cuda.is_available() and checkpoint["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(checkpoint["rng"]["cuda"])
        loop = checkpoint["loop"]
        self.state = LoopState(step=loop["step"], window=self.state.window,
                               elapsed_s=loop["elapsed_s"], train_s=loop["train_s"],
                               train_images=loop["train_images"], best=tuple(loop["best"]))
        self.state.window.load_state_dict(loop["window"])
        self.record.start_metrics(keep_until_step=self.state.step)
        self.state.rows = self.record.read_metrics()
        saved = self.record.load_weights_history()
        if saved is not None:
            offered = len(self.state.rows)
            self.history.load_state_dict(saved, self.state.step, offered)

    def save_checkpoint(self, state: LoopState) -> None:
        """Weights history first, then the checkpoint (both atomic)."""
        self.record.save_weights_history(self.history.state_dict())
        self.record.save_checkpoint({
            "step": state.step,
            "saved_at": now(),
            "model_state": self.model.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": self.scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
            "loop": {"step": state.step, "total_steps": self.loop.total_steps(len(self.data.train)),
                     "elapsed_s": state.elapsed_s, "train_s": state.train_s,
                     "train_images": state.train_images, "best": list(state.best),
                     "window": state.window.state_dict()},
            "config": dataclasses.asdict(self.cfg),
            **model_description(self.cfg.model.name, model_kwargs(self.cfg.model),
                                self.data.in_shape, self.data.classes, self.data.norm.mean,
                                self.data.norm.std),
        })

    def train_and_test(self, trackers: Tracker, summary: dict[str, Any],
                       probe: torch.Tensor) -> float:
        """Train to the end, evaluate the test split, write the summary; best val error."""
        augmenter = (Augmenter(self.cfg.data.augment, self.cfg.seed)
                     if self.cfg.data.augment.enabled else None)
        state = fit(self.model, self.optimizer, self.scheduler, self.data, self.loop, self.state,
                    self.history, trackers, self.save_checkpoint, augmenter)
        test_start = time.perf_counter()
        test = evaluate(self.model, self.data.test, self.data.norm, keep_predictions=True)
        wall_s = state.elapsed_s + time.perf_counter() - test_start
        summary.update(self.final_figures(state, test.error, wall_s), finished_at=now())
        summary.update(versions=provenance.versions(), git=provenance.git_commit())
        trackers.log_end(RunEnd(summary, state.rows, test, self.data.test.images.cpu(),
                                self.data.test.labels.cpu(), self.data.classes, self.model,
                                self.history, probe))
        log.info("test/error %.2f%% (accuracy %.2f%%) on %d images; best val/error %.2f%% "
                 "at step %d; %.0f s", 100 * test.error, 100 * (1 - test.error),
                 test.num_images, 100 * state.best[0], state.best[1], wall_s)
        return state.best[0]

    def final_figures(self, state: LoopState, test_error: float, wall_s: float) -> dict:
        """The figures of ``summary.json`` (error rates as fractions, times in seconds)."""
        per_epoch = steps_per_epoch(len(self.data.train), self.loop.batch_size)
        return {
            "status": "completed",
            "test/error": test_error,
            "test/accuracy": 1 - test_error,
            "test/images": len(self.data.test),
            "val/best_error": state.best[0],
            "val/best_step": state.best[1],
            "val/final_error": state.rows[-1]["val/error"] if state.rows else None,
            "steps": state.step,
            "epochs": round(state.step / per_epoch, 4),
            "wall_s": round(wall_s, 3),
            "train/images_per_s": round(state.train_images / state.train_s, 1)
            if state.train_s else None,
        }
