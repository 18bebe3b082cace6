"""One whole run: typed settings in, trained model and run record out.

``run.py`` calls :func:`run_experiment`; this module takes the run directory's
lock, builds the parts (device, data, model, optimizer, trackers), restores a
checkpoint when resuming, trains, evaluates the test split once at the end, and
writes the summary.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import torch

from . import provenance
from ..data.augment import Augmenter
from ..record.checkpoint import Checkpoint
from ..config.schema import MNIST, Config, component
from ..config.resolvers import anchored
from ..data.mnist import load_data, steps_per_epoch
from .evaluation import EvalResult, evaluate
from ..config.job import JobInfo
from ..record.folder import RunRecord, Status, discard_session_files, failure_summary, now
from .resume import check_start, describe, resumed_settings
from .parts import Run, loop_settings, new_model
from ..record.lock import RunLock
from .runtime import (JobRequeued, check_data_visible, configure_threads,
                      deterministic_algorithms, device_name, resolve_device, slurm_job)
from .tracking.base import RunEnd, Tracker, Trackers
from .tracking.local import LocalTracker
from .loop import LoopState, fit

log = logging.getLogger(__name__)
PROBE_IMAGES = 8  # fixed validation images whose feature maps are shown


def run_experiment(cfg: Config, job: JobInfo, extra_trackers: list[Tracker] = ()) -> float:
    """Train and evaluate one run; return the best validation error (a fraction).

    The run holds its directory's lock (:class:`~mnist_lab.record.lock.RunLock`, with
    a heartbeat every ``trainer.heartbeat_s`` seconds) from before it reads the
    record until it has written it. The trackers are the local record, those
    ``cfg.logger`` asks for, and ``extra_trackers``.

    Raises:
        UserError: bad config value, missing data, nothing to resume, W&B online
            without credentials (all before training); RunDirBusy: another live
            run holds the directory (nothing is written).
        KeyboardInterrupt: stopped by Ctrl-C/SIGTERM after writing a checkpoint.
    """
    record = RunRecord(job.run_dir)
    cfg = anchored(cfg, job.launch_dir)
    with RunLock(record.lock_path, cfg.trainer.heartbeat_s):
        cfg, checkpoint, previous = _checked_start(cfg, job, record)  # refused: nothing touched
        try:
            return _run_locked(cfg, job, record, checkpoint, previous, extra_trackers)
        finally:
            if record.has_record():
                log.info("Run record: %s", record.dir.resolve())


def _checked_start(cfg: Config, job: JobInfo,
                   record: RunRecord) -> tuple[Config, Checkpoint | None, dict[str, Any]]:
    """The settings, the checkpoint to resume from (or None) and the previous summary.

    Raises:
        UserError: the start is refused (another run's record, nothing to resume, a
            setting a resumed run cannot change); nothing has been written.
    """
    checkpoint = check_start(record, cfg.trainer.resume, job.multirun, job.overrides)
    previous = record.read_summary() or {}
    if checkpoint is not None:
        cfg = anchored(resumed_settings(cfg, checkpoint, job.overrides,
                                        previous.get("overrides", [])), job.launch_dir)
    return cfg, checkpoint, previous


def _run_locked(cfg: Config, job: JobInfo, record: RunRecord, checkpoint: Checkpoint | None,
                previous: dict[str, Any], extra_trackers: list[Tracker]) -> float:
    """:func:`run_experiment` once the run directory is locked and its start checked."""
    if checkpoint is not None and _is_complete(cfg, checkpoint, previous, record):
        discard_session_files(job.run_dir, job.hydra_subdir, job.launch_dir)
        return previous.get("val/best_error", checkpoint.loop["best"][0])
    trackers = Trackers([LocalTracker(record), *make_trackers(cfg.logger, job), *extra_trackers])
    with deterministic_algorithms(cfg.trainer.deterministic):
        model = new_model(cfg)  # before the data: a model's own checks come first
        note_missing_views(model)
        device = resolve_device(cfg.trainer.device)
        threads = configure_threads(cfg.trainer.num_threads)
        check_data_visible(cfg.data.root)
        data = load_data(cfg.data.root, cfg.data.download, cfg.data.val_size,
                         cfg.data.normalize, device)
        run = Run.build(cfg, model, data, device, record, checkpoint)
        summary = start_summary(job, cfg, checkpoint is not None, previous,
                                {"device": str(device), "device_name": device_name(device),
                                 "num_threads": threads, "slurm": slurm_job()})
        return _train_tracked(run, trackers, summary, job)


def _is_complete(cfg: Config, checkpoint: Checkpoint, previous: dict[str, Any],
                 record: RunRecord) -> bool:
    """A resumed run that already completed all its steps: nothing to do (logged)."""
    total = loop_settings(cfg).total_steps(MNIST.num_train)
    if checkpoint.step >= total and previous.get("status") == Status.COMPLETED:
        log.info("The run in %s is complete (%d steps): nothing to do. To train longer, "
                 "resume it with more trainer.epochs or trainer.max_steps.",
                 record.dir, checkpoint.step)
        return True
    schedule = component(cfg.optimizer, "optimizer")[1].get("schedule", "constant")
    log.info("%s", describe(checkpoint, schedule, total))
    return False


def _train_tracked(run: Run, trackers: Trackers, summary: dict[str, Any], job: JobInfo) -> float:
    """Train and test with the trackers told of the start, the end or the failure."""
    probe = run.data.norm.apply(run.data.val.images[:PROBE_IMAGES])
    try:
        trackers.log_start(summary, probe, run.state.rows)
        best = train_and_test(run, trackers, summary, probe)
    except BaseException as error:
        stopped = isinstance(error, KeyboardInterrupt)
        requeued = isinstance(error, JobRequeued)  # submitit requeued the SLURM job
        status = Status.REQUEUED if requeued else \
            Status.INTERRUPTED if stopped else Status.FAILED
        trackers.log_failure({**summary, **failure_summary(error, status)})
        trackers.close(1 if status is Status.FAILED else 130)
        if stopped:
            log.warning("Stopped; continue with: %s", continue_command(job))
        raise
    trackers.close(0)
    return best


def make_trackers(logger: Any, job: JobInfo) -> list[Tracker]:
    """The optional trackers chosen by ``logger`` (the local record is always on).

    Args:
        logger: the ``logger`` settings (``NoLoggerConfig`` or ``WandbLoggerConfig``).

    Raises:
        UserError: W&B asked for online without credentials (checked before training).
    """
    if getattr(logger, "name", "none") == "wandb":
        from .tracking.wandb_tracker import WandbTracker

        return [WandbTracker(logger, job)]
    return []


def note_missing_views(model: torch.nn.Module) -> None:
    """One log line when the model shows no feature maps or filters (no such methods)."""
    missing = [m for m in ("feature_maps", "conv_weights") if not hasattr(model, m)]
    if missing:
        log.info("%s has no %s(): its feature-map and filter images are skipped.",
                 type(model).__name__, "() or ".join(missing))


def start_summary(job: JobInfo, cfg: Config, resumed: bool, previous: dict[str, Any],
                  where: dict[str, Any]) -> dict[str, Any]:
    """``summary.json`` at the start: status running, the run's own overrides and config.

    A resumed run keeps the overrides and start time it began with; the command
    that resumed it is added as ``resumed_with``.
    """
    summary = {"status": Status.RUNNING, "overrides": job.overrides, "started_at": now(),
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


def train_and_test(run: Run, trackers: Tracker, summary: dict[str, Any],
                   probe: torch.Tensor) -> float:
    """Train to the end, evaluate the test split, write the summary; best val error.

    The test split is evaluated with the final weights and with ``best.pt``;
    ``trainer.test_on`` picks which one is ``test/error`` and is shown in the
    trackers' final figures (confusion matrix, feature maps).
    """
    augmenter = Augmenter(run.cfg.data.augment, run.cfg.seed) \
        if run.cfg.data.augment.enabled else None
    state = fit(run.model, run.optimizer, run.scheduler, run.data, run.loop, run.state,
                run.history, trackers, run, augmenter)
    test_start = time.perf_counter()
    final = evaluate(run.model, run.data.test, run.data.norm, keep_predictions=True)
    best_model = run.best_model()
    best = evaluate(best_model, run.data.test, run.data.norm, keep_predictions=True) \
        if best_model is not None else None
    chosen, model = (best, best_model) if run.cfg.trainer.test_on == "best" and best \
        else (final, run.model)
    wall_s = state.elapsed_s + time.perf_counter() - test_start
    summary.update(final_figures(run, state, chosen, final, best, wall_s), finished_at=now())
    summary.update(versions=provenance.versions(), git=provenance.git_commit())
    trackers.log_end(RunEnd(summary, state.rows, chosen, run.data.test.images.cpu(),
                            run.data.test.labels.cpu(), run.data.classes, model,
                            run.history, probe))
    log.info("test/error %.2f%% (accuracy %.2f%%, %s weights) on %d images; best val/error "
             "%.2f%% at step %d; %.0f s", 100 * chosen.error, 100 * (1 - chosen.error),
             summary["test/weights"], chosen.num_images, 100 * state.best[0], state.best[1],
             wall_s)
    return state.best[0]


def final_figures(run: Run, state: LoopState, chosen: EvalResult, final: EvalResult,
                  best: EvalResult | None, wall_s: float) -> dict[str, Any]:
    """The figures of ``summary.json`` (error rates as fractions, times in seconds).

    ``test/error`` is that of the weights ``trainer.test_on`` chose
    (``test/weights``); ``test/final_error`` and ``test/best_checkpoint_error``
    are those of the final weights and of ``best.pt`` (the weights at
    ``val/best_step``).
    """
    per_epoch = steps_per_epoch(len(run.data.train), run.loop.batch_size)
    return {
        "status": Status.COMPLETED,
        "test/error": chosen.error,
        "test/accuracy": 1 - chosen.error,
        "test/images": chosen.num_images,
        "test/weights": "best" if chosen is best else "final",
        "test/final_error": final.error,
        "test/best_checkpoint_error": best.error if best else None,
        "val/best_error": state.best[0],
        "val/best_step": state.best[1],
        "val/final_error": state.rows[-1]["val/error"] if state.rows else None,
        "steps": state.step,
        "epochs": round(state.step / per_epoch, 4),
        "wall_s": round(wall_s, 3),
        "train/images_per_s": round(state.train_images / state.train_s, 1)
        if state.train_s else None,
    }
