"""The training loop: steps, periodic evaluation, weight snapshots, checkpoints.

Protocol (the seed experiment): the configured optimizer (the seed's SGD with momentum)
on batches of the training split; at every step that is a multiple of ``eval_every``,
and once at the end, the validation split is evaluated (dropout off, no gradients) and a
metrics row is recorded: the training error and loss over the batches since the previous
evaluation (from the log-probabilities the steps already computed, no extra pass), the
validation error and loss, the learning rate and the elapsed time. The conv weights are
snapshotted at the same steps (for models with ``conv_weights()``), and a checkpoint is
written every ``checkpoint_every`` steps.

A stop request (Ctrl-C or SIGTERM) is honoured between two steps: a checkpoint
is written and :class:`KeyboardInterrupt` raised, so nothing is lost and
``trainer.resume`` continues exactly where the run stopped. In a SLURM job
launched by submitit, its time-limit signal (``SIGUSR2``) is also honoured
between two steps: after the checkpoint, submitit's own handler requeues the
job (:class:`~mnist_lab.training.runtime.StopRequest`), which continues from there.

Stop rules (:class:`StopRule`: early stopping, a sweeper's pruning) are asked after
each evaluation; one that answers ends training after a checkpoint. Before anything
is evaluated or saved, the training loss since the last evaluation and the weights
must be finite: a run that diverged raises :class:`Diverged` and saves nothing.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol, Sequence

import torch
import torch.nn.functional as F
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..data.augment import Augmenter
from ..data.splits import Data, batches
from .evaluation import evaluate
from ..record.folder import Status
from .runtime import StopRequest
from .snapshots import WeightsHistory
from .tracking.base import Tracker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopSettings:
    """What the loop needs from the config: plain values.

    Attributes:
        epochs, batch_size, eval_every (steps), checkpoint_every (steps),
        total_steps (all epochs, capped by ``trainer.max_steps``), steps_per_epoch,
        seed (batch order, augmentation), progress.
    """

    epochs: int
    batch_size: int
    eval_every: int
    checkpoint_every: int
    total_steps: int
    steps_per_epoch: int
    seed: int
    progress: bool = True


@dataclass
class Window:
    """Training error and loss accumulated since the previous evaluation.

    Kept as device tensors, so the steps never wait for the device.
    """

    errors: torch.Tensor
    loss_sum: torch.Tensor
    count: int = 0

    @classmethod
    def zeros(cls, device: torch.device) -> "Window":
        return cls(torch.zeros((), dtype=torch.int64, device=device),
                   torch.zeros((), dtype=torch.float64, device=device))

    def add(self, log_probs: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor) -> None:
        """Count one step: ``log_probs`` (B, C) float, ``labels`` (B,) int64, ``loss`` the
        batch's mean loss (a scalar tensor). Stays on the device: no synchronisation."""
        self.errors += (log_probs.detach().argmax(dim=1) != labels).sum()
        self.loss_sum += loss.detach().double() * len(labels)
        self.count += len(labels)

    def rates(self) -> tuple[float, float]:
        """(error fraction, mean loss) over the window; NaN when it is empty."""
        if self.count == 0:
            return math.nan, math.nan
        return self.errors.item() / self.count, self.loss_sum.item() / self.count

    def state_dict(self) -> dict[str, Any]:
        return {"errors": self.errors.item(), "loss_sum": self.loss_sum.item(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.errors.fill_(int(state["errors"]))
        self.loss_sum.fill_(float(state["loss_sum"]))
        self.count = int(state["count"])


@dataclass
class LoopState:
    """Where training stands; restored from a checkpoint when resuming.

    Attributes:
        step: training steps done (global, over epochs).
        elapsed_s: seconds since the first step, summed over resumed sessions.
        train_s: seconds spent in training steps only (for images/s).
        train_images: training images processed in those seconds.
        window: the accumulators since the last evaluation.
    """

    step: int
    window: Window
    elapsed_s: float = 0.0
    train_s: float = 0.0
    train_images: int = 0
    best: tuple[float, int] = (math.inf, -1)  # (validation error, step)
    rows: list[dict[str, float]] = field(default_factory=list)
    stopped: dict[str, Any] | None = None  # {"step", "reason"} when a stop rule ended it
    # (step, train_images, train_s, elapsed_s) at the last evaluation: the current rate
    mark: tuple[int, int, float, float] | None = None


@dataclass(frozen=True)
class Stop:
    """A stop rule's answer: end training now, with this status and why.

    ``completed``: training ends and the run is tested as at its last step (early
    stopping). Any other status (``pruned``) ends the run after a checkpoint,
    untested, as a Ctrl-C does.
    """

    status: Status
    reason: str


class StopRule(Protocol):
    """Asked after every evaluation whether training should end (early stopping, pruning)."""

    def check(self, rows: list[dict[str, float]]) -> Stop | None:
        """``rows``: every metrics row so far, the newest last; None to go on."""


@dataclass(frozen=True)
class EarlyStopping:
    """A :class:`StopRule`: stop when ``val/error`` has not improved for ``patience``
    evaluations, an improvement being a ``val/error`` below the lowest before it by more
    than ``min_delta`` (a fraction). Derived from the rows alone, so the count survives
    a resume."""

    patience: int
    min_delta: float = 0.0

    def check(self, rows: list[dict[str, float]]) -> Stop | None:
        lowest, since = math.inf, 0
        for row in rows:
            since = 0 if row["val/error"] < lowest - self.min_delta else since + 1
            lowest = min(lowest, row["val/error"])
        if since < self.patience:
            return None
        best = min(rows, key=lambda r: r["val/error"])
        return Stop(Status.COMPLETED, f"early stop: val/error did not fall by more than "
                    f"{100 * self.min_delta:g} points for {since} evaluations (lowest "
                    f"{100 * best['val/error']:.2f}% at step {best['step']})")


class RunStopped(Exception):
    """A stop rule ended the run with a status other than ``completed``, after a checkpoint."""

    def __init__(self, stop: Stop, step: int) -> None:
        super().__init__(f"{stop.status} at step {step}: {stop.reason}")
        self.stop, self.step = stop, step


class Diverged(Exception):
    """The training loss or the weights are no longer finite (NaN or infinite) at ``step``."""

    def __init__(self, step: int, what: str) -> None:
        super().__init__(f"diverged at step {step}: {what}")
        self.step, self.what = step, what


class Saver(Protocol):
    """Where the loop's checkpoints go (:class:`mnist_lab.training.run.Run`)."""

    def save_checkpoint(self, state: LoopState) -> None:
        """Everything needed to resume at ``state.step``."""

    def save_best(self, state: LoopState) -> None:
        """The weights that just reached the lowest validation error, ``state.best``."""


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on a batch.

    ``x``: (B, C, H, W) float32 images; ``y``: (B,) int64 labels. Returns the
    log-probabilities (B, num_classes) and the mean negative log-likelihood (a scalar).
    """
    log_probs = model(x)
    loss = F.nll_loss(log_probs, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return log_probs, loss


def _batch_stream(data: Data, loop: LoopSettings, start_step: int,
                  augmenter: Augmenter | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Model inputs and labels from ``start_step`` on, epoch after epoch."""
    first_epoch, first_batch = divmod(start_step, loop.steps_per_epoch)
    step = start_step
    for epoch in range(first_epoch, loop.epochs):
        start = first_batch if epoch == first_epoch else 0
        for images, labels in batches(data.train, loop.batch_size, loop.seed, epoch, start):
            x = data.norm.apply(images if augmenter is None else augmenter(images, step))
            step += 1
            yield x, labels


def fit(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler, data: Data,
        loop: LoopSettings, state: LoopState, history: WeightsHistory, tracker: Tracker,
        saver: Saver, augmenter: Augmenter | None = None,
        stop_rules: Sequence[StopRule] = ()) -> LoopState:
    """Train from ``state.step`` to the end of the run; return the final state.

    ``saver`` writes a checkpoint every ``checkpoint_every`` steps, at the end, on a
    stop request and when a stop rule ends training, and the best weights whenever
    the validation error falls below its lowest so far.

    Raises:
        KeyboardInterrupt: a stop was requested; a checkpoint was written first.
        RunStopped: a stop rule ended the run untested (``pruned``), after a checkpoint.
        Diverged: the training loss or the weights are not finite; nothing was saved.
    """
    total = loop.total_steps
    model.train()
    bar = tqdm(total=total, initial=state.step, unit="step", dynamic_ncols=True,
               disable=None if loop.progress else True, leave=False)
    stream = _batch_stream(data, loop, state.step, augmenter)
    with StopRequest() as request, bar, logging_redirect_tqdm():
        session_start = time.perf_counter() - state.elapsed_s
        tick = time.perf_counter()
        for x, y in stream:
            if state.step >= total:
                break
            lr = optimizer.param_groups[0]["lr"]
            log_probs, loss = train_step(model, optimizer, x, y)
            scheduler.step()
            state.window.add(log_probs, y, loss)
            state.step += 1
            state.train_images += len(y)
            bar.update()
            at_end = state.step == total
            evaluate_now = state.step % loop.eval_every == 0 or at_end
            save_now = state.step % loop.checkpoint_every == 0 or at_end or request.requested
            if not (evaluate_now or save_now):
                continue
            if data.train.images.is_cuda:
                torch.cuda.synchronize()
            state.train_s += time.perf_counter() - tick
            state.elapsed_s = time.perf_counter() - session_start
            check_finite(model, state)
            stop = None
            if evaluate_now:
                if _evaluate(model, data, state, lr, loop, history, tracker):
                    saver.save_best(state)
                stop = next(filter(None, (rule.check(state.rows) for rule in stop_rules)), None)
            if save_now or stop or request.requested:  # a stop may arrive while evaluating
                saver.save_checkpoint(state)
            if stop:
                return _stopped(state, stop)
            if request.requested:
                request.hand_over(state.step)
            tick = time.perf_counter()
    return state


def _stopped(state: LoopState, stop: Stop) -> LoopState:
    """End training by a stop rule: go on to the test (``completed``) or raise."""
    log.info("Training stopped at step %d: %s", state.step, stop.reason)
    if stop.status != Status.COMPLETED:
        raise RunStopped(stop, state.step)
    state.stopped = {"step": state.step, "reason": stop.reason}
    return state


def check_finite(model: torch.nn.Module, state: LoopState) -> None:
    """Raise :class:`Diverged` unless the training loss since the last evaluation and
    every weight are finite (checked before anything is evaluated or saved)."""
    loss = state.window.loss_sum.item()
    if not math.isfinite(loss):
        raise Diverged(state.step, f"the training loss is {'NaN' if math.isnan(loss) else loss}")
    bad = next((name for name, p in model.named_parameters() if not torch.isfinite(p).all()),
               None)
    if bad is not None:
        raise Diverged(state.step, f"the weights of {bad} are not finite")


def _evaluate(model: torch.nn.Module, data: Data, state: LoopState, lr: float,
              loop: LoopSettings, history: WeightsHistory, tracker: Tracker) -> bool:
    """Evaluate the validation split, record a metrics row, snapshot the conv weights.

    Returns whether the validation error is the lowest so far (``state.best`` updated).
    """
    val = evaluate(model, data.val, data.norm)
    train_error, train_loss = state.window.rates()
    state.window = Window.zeros(state.window.errors.device)
    row = {
        "step": state.step,
        "epoch": round(state.step / loop.steps_per_epoch, 4),
        "train/error": train_error,
        "train/loss": train_loss,
        "val/error": val.error,
        "val/loss": val.loss,
        "lr": lr,
        "elapsed_s": round(state.elapsed_s, 3),
    }
    state.rows.append(row)
    improved = val.error < state.best[0]
    if improved:
        state.best = (val.error, state.step)
    if hasattr(model, "conv_weights"):
        history.offer(state.step, model.conv_weights())
    images_per_s, eta_s = current_rate(state, loop.total_steps)
    tracker.log_evaluation(row, images_per_s, model)
    log.info(
        f"step {state.step:>6}/{loop.total_steps}  epoch {row['epoch']:5.2f}/{loop.epochs}  "
        f"train/error {100 * train_error:6.2f}%  val/error {100 * val.error:6.2f}%  "
        f"val/loss {val.loss:.4f}  lr {lr:.3g}  {images_per_s:,.0f} images/s  "
        f"ETA {_duration(eta_s)}"
    )
    return improved


def current_rate(state: LoopState, total_steps: int) -> tuple[float, float]:
    """(training images/s since the last evaluation, seconds left at the pace since then,
    evaluations included); the mark moves to now."""
    mark = state.mark or (0, 0, 0.0, 0.0)
    images, seconds = state.train_images - mark[1], state.train_s - mark[2]
    steps, wall = state.step - mark[0], state.elapsed_s - mark[3]
    state.mark = (state.step, state.train_images, state.train_s, state.elapsed_s)
    images_per_s = images / seconds if seconds > 0 else math.nan
    eta_s = (total_steps - state.step) * wall / steps if steps > 0 else math.nan
    return images_per_s, eta_s


def _duration(seconds: float) -> str:
    """``1h02m``, ``3m05s``, ``42s``; ``?`` when not known."""
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else \
        f"{rest // 60}m{rest % 60:02d}s" if rest >= 60 else f"{rest}s"
