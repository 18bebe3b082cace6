"""One run as a recipe, read top to bottom: set up, train, test, close.

``run.py`` calls :func:`run_experiment` with typed settings and the Hydra job:

1. **Lock** the run folder (:class:`~mnist_lab.record.lock.RunLock`, a heartbeat every
   ``trainer.heartbeat_s`` seconds) and decide how the run starts: fresh, or from
   its checkpoint (:mod:`.resume`; resume is this branch of set-up, not a second path).
2. **Set up** the parts (:func:`set_up`): the model with fresh weights from the seed
   (before any data is read, so its own checks come first), the device and threads,
   the data, the optimizer and schedule, the weight history; a checkpoint's state
   restored over them.
3. **Train** (:func:`mnist_lab.training.loop.fit`) until the last step or a stop rule
   (early stopping, a sweeper's pruning) ends it.
4. **Test** the final weights and ``best.pt`` on the test split (:func:`test`).
5. **Close**: the summary and every tracker's end (or, on failure, the status).

:class:`Run` holds the live parts and is the one place that writes and restores the
run's checkpoint and its best-validation weights.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from . import provenance
from ..config.job import JobInfo
from ..config.resolvers import anchored
from ..config.parts import build, component
from ..config.schema import Config
from ..config.settings import to_container
from ..data.augment import Augmenter
from ..data.datasets import Dataset, DatasetInfo, dataset_of, loader_of
from ..data.splits import Data, steps_per_epoch
from ..config.trust import Trust, targets
from ..errors import ConfigError, RunError, UserError
from ..models.build import build_model
from ..record.checkpoint import Checkpoint, ModelSpec
from ..record.folder import (HISTORY, RecordWriteError, RunRecord, Status,
                             discard_session_files, failure_summary, now)
from ..record.lock import RunLock
from .evaluation import EvalResult, evaluate
from .loop import (Diverged, EarlyStopping, LoopSettings, LoopState, RunStopped, StopRule,
                   Window, fit)
from .optimizers import build_optimizer
from .resume import check_start, describe, resumed_settings
from .runtime import (JobRequeued, check_data_visible, configure_threads,
                      deterministic_algorithms, device_name, resolve_device, slurm_job)
from .snapshots import WeightsHistory, history_mismatch
from .tracking.base import RunEnd, Tracker, Trackers
from .tracking.local import LocalTracker

log = logging.getLogger(__name__)
PROBE_IMAGES = 8  # fixed validation images whose feature maps are shown
# The exit code trackers are told (W&B marks a run failed unless 0); a stop: 130.
EXIT_CODES = {Status.FAILED: 1, Status.DIVERGED: 1, Status.PRUNED: 0}


def run_experiment(cfg: Config, job: JobInfo, extra_trackers: Sequence[Tracker] = (),
                   stop_rules: Sequence[StopRule] = ()) -> float:
    """Train and evaluate one run; return the best validation error (a fraction).

    The run holds its folder's lock from before it reads the record until it has
    written it. The trackers are the local record, those ``cfg.logger`` asks for, and
    ``extra_trackers``; ``stop_rules`` may end training early (see :class:`StopRule`).

    Raises:
        UserError: bad config value, missing data, nothing to resume, W&B online
            without credentials (all before training); RunDirBusy: another live
            run holds the folder (nothing is written).
        RunError: the run diverged, or its record could not be written (status
            ``diverged`` or ``failed``, one line).
        RunStopped: a stop rule ended it with a status other than ``completed``
            (a sweeper's pruning: ``pruned``), after a checkpoint.
        KeyboardInterrupt: stopped by Ctrl-C/SIGTERM after writing a checkpoint.
    """
    record = RunRecord(job.run_dir)
    cfg = anchored(cfg, job.launch_dir)
    with RunLock(record.lock_path, cfg.trainer.heartbeat_s) as lock:
        record.guard = lock.check_held  # every write first checks the lock is still ours
        checkpoint = check_start(record, cfg.trainer.resume, job.multirun, job.overrides)
        previous = (record.read_summary_or_set_aside() or {"overrides": record.overrides()}
                    if checkpoint is not None else {})
        if checkpoint is not None:  # a resume: the run's settings, the command's runtime keys
            trust = Trust.from_env(own=targets(job.config))
            cfg = anchored(resumed_settings(cfg, checkpoint, job.overrides,
                                            previous.get("overrides", []), trust,
                                            f"'{record.checkpoint_path}'"), job.launch_dir)
        dataset = dataset_of(cfg.data)  # what the data is; nothing is read yet
        loop = loop_settings(cfg, dataset.info.num_train)
        if checkpoint is not None:
            refuse_going_back(loop, checkpoint, cfg)
        try:
            if checkpoint is not None and _is_complete(loop, checkpoint, previous, record, cfg):
                discard_session_files(job.run_dir, job.hydra_subdir, job.launch_dir)
                return previous.get("val/best_error", checkpoint.loop["best"][0])
            trackers = Trackers([LocalTracker(record), *make_trackers(cfg.logger, job),
                                 *extra_trackers])
            with deterministic_algorithms(cfg.trainer.deterministic):
                run = set_up(cfg, dataset, loop, record, checkpoint)
                summary = start_summary(job, run, checkpoint is not None, previous)
                return train_test_close(run, trackers, summary, job,
                                        [*early_stopping(cfg), *stop_rules])
        finally:
            if record.has_record():
                log.info("Run record: %s", record.dir.resolve())


def loop_settings(cfg: Config, num_train: int) -> LoopSettings:
    """The training loop's plain settings; ``total_steps`` is computed here, once."""
    batch_size = loader_of(cfg.data).batch_size
    per_epoch = steps_per_epoch(num_train, batch_size)
    total = cfg.trainer.epochs * per_epoch
    if cfg.trainer.max_steps:
        total = min(total, cfg.trainer.max_steps)
    return LoopSettings(cfg.trainer.epochs, batch_size, cfg.trainer.eval_every,
                        cfg.trainer.checkpoint_every, total, per_epoch, cfg.seed,
                        cfg.trainer.progress)


def refuse_going_back(loop: LoopSettings, checkpoint: Checkpoint, cfg: Config) -> None:
    """Refuse a resume with fewer steps than the run has trained (nothing is written).

    Raises:
        ConfigError: naming the key that sets the steps and both numbers.
    """
    if loop.total_steps < checkpoint.step:
        key = "trainer.max_steps" if cfg.trainer.max_steps else "trainer.epochs"
        raise ConfigError(key, getattr(cfg.trainer, key.partition(".")[2]),
                          f"gives {loop.total_steps} steps, fewer than the {checkpoint.step} "
                          "this run has already trained",
                          "A resumed run cannot go back: give at least as many steps, or "
                          "evaluate the run as it is (python -m mnist_lab.evaluate RUN_DIR).")


def _is_complete(loop: LoopSettings, checkpoint: Checkpoint, previous: dict[str, Any],
                 record: RunRecord, cfg: Config) -> bool:
    """A resumed run that already completed (or stopped early): nothing to do (logged)."""
    if previous.get("status") == Status.COMPLETED and previous.get("stopped"):
        log.info("The run in %s stopped early at step %d (%s): nothing to do.", record.dir,
                 checkpoint.step, previous["stopped"].get("reason"))
        return True
    if checkpoint.step >= loop.total_steps and previous.get("status") == Status.COMPLETED:
        log.info("The run in %s is complete (%d steps): nothing to do. To train longer, "
                 "resume it with more trainer.epochs or trainer.max_steps.",
                 record.dir, checkpoint.step)
        return True
    log.info("%s", describe(checkpoint, build(cfg.scheduler, "scheduler"), loop.total_steps))
    return False


def early_stopping(cfg: Config) -> list[StopRule]:
    """``trainer.early_stop`` as a stop rule ([] when off)."""
    stop = cfg.trainer.early_stop
    return [EarlyStopping(stop.patience, stop.min_delta)] if stop.patience else []


def make_trackers(logger: dict[str, Any], job: JobInfo) -> list[Tracker]:
    """The trackers ``logger`` names, one per node (the local record is always on).

    Raises:
        ConfigError, UserError: a tracker refused its settings, or W&B was asked for
            online without credentials (before training).
    """
    return [build(node, "logger", job=job) for node in logger.values()]


# -- 2. set up ---------------------------------------------------------------------------

@dataclass
class Run:
    """The live parts of a run, built from settings (and a checkpoint when resuming)."""

    cfg: Config
    data: Data
    record: RunRecord
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loop: LoopSettings
    state: LoopState
    history: WeightsHistory
    device: torch.device
    threads: int
    checkpoint_step: int | None = None  # the step of the checkpoint.pt on disk

    def restore(self, checkpoint: Checkpoint | None) -> None:
        """Load a checkpoint's state, or start the record of a fresh run."""
        if checkpoint is None:
            self.record.start_metrics()
            return
        self.checkpoint_step = checkpoint.step
        self.model.load_state_dict(checkpoint.model_state)
        self.optimizer.load_state_dict(checkpoint.optimizer_state)
        self.scheduler.load_state_dict(checkpoint.scheduler_state)
        torch.set_rng_state(checkpoint.rng["torch"])
        if torch.cuda.is_available() and checkpoint.rng["cuda"]:  # as many GPUs as now seen
            torch.cuda.set_rng_state_all(checkpoint.rng["cuda"][:torch.cuda.device_count()])
        loop = checkpoint.loop
        self.state = LoopState(step=loop["step"], window=self.state.window,
                               elapsed_s=loop["elapsed_s"], train_s=loop["train_s"],
                               train_images=loop["train_images"], best=tuple(loop["best"]))
        self.state.window.load_state_dict(loop["window"])
        self.state.mark = (self.state.step, self.state.train_images, self.state.train_s,
                           self.state.elapsed_s)
        self.record.start_metrics(keep_until_step=self.state.step)
        self._check_best(self.state.step)
        self.state.rows = self.record.read_metrics()
        self._restore_history()

    def _check_best(self, step: int) -> None:
        """Keep ``best.pt`` only if it holds the weights of ``state.best``.

        After a crash, ``best.pt`` may hold weights of steps the resumed run trains
        again (on another device or thread count, not bit for bit), or be damaged or
        gone. Such a file is set aside (kept as ``best.pt.discarded-<time>``), and the
        best is counted again from the resumed step: ``val/best_error``,
        ``val/best_step`` and ``best.pt`` always describe the same saved weights.
        """
        best_step = None
        if self.record.has_best():
            try:
                best_step = self.record.load_best().step
            except UserError:
                best_step = "unreadable"
        if best_step == self.state.best[1] or (best_step is None and self.state.best[1] < 0):
            return
        kept = self.record.set_aside_best("discarded") if best_step is not None else None
        log.warning("best.pt (step %s) does not hold the best weights up to the checkpoint "
                    "(step %d)%s; val/best_error and best.pt now count the evaluations from "
                    "step %d on.", "missing" if best_step is None else best_step,
                    self.state.best[1], f"; it is kept as {kept}" if kept else "", step)
        self.state.best = (math.inf, -1)

    def _restore_history(self) -> None:
        """The conv-weight snapshots up to the checkpoint; a history of another model (or
        a damaged one, :meth:`RunRecord.load_weights_history`) is set aside."""
        saved = self.record.load_weights_history()
        if saved is None or not hasattr(self.model, "conv_weights"):
            return
        mismatch = history_mismatch(list(zip(saved.get("weights", []), saved.get("biases", []))),
                                    len(saved.get("steps", [])), self.model.conv_weights())
        if mismatch:
            log.warning("weights_history.pt is not this model's (%s): it is kept as %s, and "
                        "the history restarts at this step.", mismatch,
                        self.record.set_aside(HISTORY, "mismatched"))
            return
        self.history.load_state_dict(saved, self.state.step, len(self.state.rows))

    def spec(self) -> ModelSpec:
        """What rebuilds the model from a saved file alone."""
        target, kwargs = component(self.cfg.model, "model")
        return ModelSpec(target, kwargs, self.data.in_shape, self.data.num_classes,
                         self.data.classes, self.data.norm.mean, self.data.norm.std)

    def saved(self, state: LoopState, **resuming: Any) -> Checkpoint:
        """The model's weights and description at ``state.step``."""
        return Checkpoint(state.step, now(), self.spec(), self.model.state_dict(),
                          to_container(self.cfg), **resuming)

    def save_checkpoint(self, state: LoopState) -> None:
        """Weights history first, then the checkpoint (both atomic)."""
        self.record.save_weights_history(self.history.state_dict())
        self.record.save_checkpoint(self.saved(
            state, optimizer_state=self.optimizer.state_dict(),
            scheduler_state=self.scheduler.state_dict(),
            rng={"torch": torch.get_rng_state(),
                 "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
            loop={"step": state.step, "total_steps": self.loop.total_steps,
                  "elapsed_s": state.elapsed_s, "train_s": state.train_s,
                  "train_images": state.train_images, "best": list(state.best),
                  "window": state.window.state_dict()}))
        self.checkpoint_step = state.step

    def save_best(self, state: LoopState) -> None:
        """``best.pt``: the weights at ``state.best`` (a new lowest validation error)."""
        self.record.save_best(self.saved(state, val_error=state.best[0]))

    def best_model(self) -> torch.nn.Module | None:
        """The model with the weights of ``best.pt``, on the training device.

        None (with a warning) when there is no ``best.pt``, or when it is not of the
        step of the lowest validation error, ``state.best``.
        """
        if not self.record.has_best():
            return None
        best = self.record.load_best()
        if best.step != self.state.best[1]:
            log.warning("best.pt is of step %d, not of val/best_step %d: it is not tested.",
                        best.step, self.state.best[1])
            return None
        model = new_model(self.cfg, self.data.info)
        model.load_state_dict(best.model_state)
        return model.to(device=self.device, memory_format=torch.channels_last)


def new_model(cfg: Config, info: DatasetInfo) -> torch.nn.Module:
    """A model of the configured class with fresh weights from ``cfg.seed``, on the CPU,
    for the data ``info`` describes (its shape and classes).

    Built before any data is read, so a constructor's own checks refuse bad arguments
    first.

    Raises:
        UserError: the class cannot be imported or refused its arguments.
    """
    torch.manual_seed(cfg.seed)
    target, kwargs = component(cfg.model, "model")
    return build_model(target, kwargs, info.in_shape, info.num_classes)


def set_up(cfg: Config, dataset: Dataset, loop: LoopSettings, record: RunRecord,
           checkpoint: Checkpoint | None) -> Run:
    """Every part of the run, restored from ``checkpoint`` when resuming.

    Raises:
        UserError: the model or the schedule refused its arguments, the data is
            missing or damaged, the device does not exist (before any training).
    """
    model = new_model(cfg, dataset.info)  # before the data: a model's own checks come first
    note_missing_views(model)
    schedule = build(cfg.scheduler, "scheduler")
    device = resolve_device(cfg.trainer.device)
    threads = configure_threads(cfg.trainer.num_threads)
    if getattr(dataset, "root", None) is not None:
        check_data_visible(dataset.root)
    data = dataset.load(device)
    model.to(device=device, memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg.optimizer, model.parameters())
    scheduler = schedule.build(optimizer, loop.total_steps)
    history = WeightsHistory(int(cfg.trainer.snapshot_max_mb * 2**20))
    run = Run(cfg, data, record, model, optimizer, scheduler, loop,
              LoopState(step=0, window=Window.zeros(device)), history, device, threads)
    run.restore(checkpoint)
    return run


def note_missing_views(model: torch.nn.Module) -> None:
    """One log line when the model shows no feature maps or filters (no such methods)."""
    missing = [m for m in ("feature_maps", "conv_weights") if not hasattr(model, m)]
    if missing:
        log.info("%s has no %s(): its feature-map and filter images are skipped.",
                 type(model).__name__, "() or ".join(missing))


def start_summary(job: JobInfo, run: Run, resumed: bool,
                  previous: dict[str, Any]) -> dict[str, Any]:
    """``summary.json`` at the start: status running, the run's own overrides and config,
    where it computes and the model's size.

    A resumed run keeps the overrides and start time it began with; the command
    that resumed it is added as ``resumed_with``.
    """
    summary = {"status": Status.RUNNING, "overrides": job.overrides, "started_at": now(),
               "config": to_container(run.cfg), "device": str(run.device),
               "device_name": device_name(run.device), "num_threads": run.threads,
               "slurm": slurm_job(),
               "model/params": sum(p.numel() for p in run.model.parameters())}
    if resumed:
        summary.update(overrides=previous.get("overrides", job.overrides),
                       started_at=previous.get("started_at", summary["started_at"]),
                       resumed_with=job.overrides, resumed_at=now())
    return summary


# -- 3. to 5. train, test, close ----------------------------------------------------------

def train_test_close(run: Run, trackers: Trackers, summary: dict[str, Any], job: JobInfo,
                     stop_rules: Sequence[StopRule]) -> float:
    """Train and test with the trackers told of the start, the end or the failure."""
    probe = run.data.norm.apply(run.data.val.images[:PROBE_IMAGES])
    log.info("%s", banner(run, summary))
    try:
        trackers.log_start(summary, probe, run.state.rows, run.state.step)
        augment = loader_of(run.cfg.data).augment
        augmenter = Augmenter(augment, run.cfg.seed) if augment.enabled else None
        state = fit(run.model, run.optimizer, run.scheduler, run.data, run.loop, run.state,
                    run.history, trackers, run, augmenter, stop_rules)
        test(run, state, trackers, summary, probe)
    except BaseException as error:
        status, instead = ended_by(error, run)
        ended = ({"status": status, "finished_at": now(), "stopped": {
            "step": error.step, "reason": error.stop.reason}} if isinstance(error, RunStopped)
            else failure_summary(instead or error, status))
        try:
            trackers.log_failure({**summary, **ended})
        except RecordWriteError:  # the status stays "running": readers show it as lost
            instead = RunError(f"{instead or error}; its status could not be written either, "
                               "so readers show it as lost")
        trackers.close(EXIT_CODES.get(status, 130))
        if status is Status.INTERRUPTED:
            log.warning("Stopped; continue with: %s", continue_command(job))
        if instead is not None:
            raise instead from None
        raise
    trackers.close(0)
    return state.best[0]


def banner(run: Run, summary: dict[str, Any]) -> str:
    """One line on what the run is about to do: model, size, steps, data, device, folder."""
    loop, model = run.loop, type(run.model).__name__
    steps = (f"steps {run.state.step + 1}..{loop.total_steps}" if run.state.step else
             f"{loop.total_steps} steps")
    epochs = loop.epochs * loop.steps_per_epoch
    plural = "s" * (loop.epochs != 1)
    length = (f"{loop.epochs} epoch{plural} of {loop.steps_per_epoch}"
              if loop.total_steps == epochs
              else f"trainer.max_steps; {loop.epochs} epochs would be {epochs}")
    return (f"{model} ({summary['model/params']:,} parameters); {steps} ({length}, batch "
            f"{loop.batch_size}); {len(run.data.train):,} "
            f"training images; {summary['device_name']}, {run.threads} thread"
            f"{'s' * (run.threads != 1)}; record in {_relative(run.record.dir)}")


def _relative(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    absolute = path.absolute()
    return str(absolute.relative_to(Path.cwd())) if absolute.is_relative_to(Path.cwd()) \
        else str(path)


def ended_by(error: BaseException, run: Run) -> tuple[Status, BaseException | None]:
    """The status a run that raised ``error`` ends with, and the error to raise instead
    (a one-line :class:`RunError` for a divergence), or None to raise ``error`` itself."""
    if isinstance(error, Diverged):
        lr = run.optimizer.defaults.get("lr")
        kept = (f"checkpoint.pt (step {run.checkpoint_step}) and best.pt keep the last finite "
                "weights" if run.checkpoint_step is not None else
                "it diverged before its first checkpoint")
        return Status.DIVERGED, RunError(
            f"Training diverged at step {error.step}: {error.what}. Nothing non-finite was "
            f"saved: {kept}. Try a lower optimizer.lr (this run: {lr}).")
    if isinstance(error, RecordWriteError):
        kept = (f"the checkpoint of step {run.checkpoint_step} is intact"
                if run.checkpoint_step is not None else "no checkpoint had been written yet")
        return Status.FAILED, RunError(f"{error}; {kept}")
    if isinstance(error, RunStopped):
        return error.stop.status, None
    if isinstance(error, JobRequeued):  # submitit requeued the SLURM job
        return Status.REQUEUED, None
    if isinstance(error, KeyboardInterrupt):
        return Status.INTERRUPTED, None
    return Status.FAILED, None


def continue_command(job: JobInfo) -> str:
    """How to continue a stopped run: the same sweep into its folder, or the run."""
    if job.multirun:
        return ("the same command with hydra.sweep.dir=" + str(Path(job.run_dir).parent)
                + " (completed jobs are skipped, this one resumes)")
    return f"python run.py trainer.resume={job.run_dir}"


def test(run: Run, state: LoopState, trackers: Tracker, summary: dict[str, Any],
         probe: torch.Tensor) -> None:
    """Evaluate the test split, write the summary and tell the trackers of the end.

    The test split is evaluated with the final weights and with ``best.pt``;
    ``trainer.test_on`` picks which one is ``test/error`` and is shown in the
    trackers' final figures (confusion matrix, feature maps).
    """
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


def final_figures(run: Run, state: LoopState, chosen: EvalResult, final: EvalResult,
                  best: EvalResult | None, wall_s: float) -> dict[str, Any]:
    """The figures of ``summary.json`` (error rates as fractions, times in seconds).

    ``test/error`` is that of the weights ``trainer.test_on`` chose
    (``test/weights``); ``test/final_error`` and ``test/best_checkpoint_error``
    are those of the final weights and of ``best.pt`` (the weights at
    ``val/best_step``). ``train/step_ms`` is the mean time of a training step in
    milliseconds and ``train/seconds`` the time of all of them (evaluations and
    checkpoints excluded). ``stopped``: where and why a stop rule (early stopping)
    ended training.
    """
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
        "epochs": round(state.step / run.loop.steps_per_epoch, 4),
        "wall_s": round(wall_s, 3),
        "train/images_per_s": round(state.train_images / state.train_s, 1)
        if state.train_s else None,
        "train/step_ms": round(1000 * state.train_s / state.step, 3) if state.step else None,
        "train/seconds": round(state.train_s, 3),
        **({"stopped": state.stopped} if state.stopped else {}),
    }
