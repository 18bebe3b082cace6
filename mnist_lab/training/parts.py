"""The live parts of one run: built from settings, restored from and saved to its record.

:class:`Run` holds the model, optimizer, schedule, loop state and weight history
of a run, and is the one place that writes (and restores) its checkpoint and
its best-validation weights (``best.pt``).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import torch

from ..models.build import build_model
from ..record.checkpoint import Checkpoint, ModelSpec
from ..config.schema import MNIST, Config, component
from ..data.mnist import MNISTData
from ..errors import UserError
from .optim import build_optimizer, build_scheduler
from ..record.folder import RunRecord, now
from .snapshots import WeightsHistory
from .loop import LoopSettings, LoopState, Window

log = logging.getLogger(__name__)


def loop_settings(cfg: Config) -> LoopSettings:
    """The training loop's plain settings."""
    return LoopSettings(cfg.trainer.epochs, cfg.data.batch_size, cfg.trainer.eval_every,
                        cfg.trainer.checkpoint_every, cfg.trainer.max_steps, cfg.seed,
                        cfg.trainer.progress)


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
    def build(cls, cfg: Config, model: torch.nn.Module, data: MNISTData, device: torch.device,
              record: RunRecord, checkpoint: Checkpoint | None) -> "Run":
        """The parts around ``model`` (from :func:`new_model`), restored from ``checkpoint``."""
        model.to(device=device, memory_format=torch.channels_last)
        loop = loop_settings(cfg)
        optimizer = build_optimizer(cfg.optimizer, model.parameters())
        scheduler = build_scheduler(cfg.optimizer, optimizer, loop.total_steps(len(data.train)))
        history = WeightsHistory(int(cfg.trainer.snapshot_max_mb * 2**20))
        run = cls(cfg, data, record, model, optimizer, scheduler, loop,
                  LoopState(step=0, window=Window.zeros(device)), history)
        run.restore(checkpoint)
        return run

    def restore(self, checkpoint: Checkpoint | None) -> None:
        """Load a checkpoint's state, or start the record of a fresh run."""
        if checkpoint is None:
            self.record.start_metrics()
            return
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
        self.record.start_metrics(keep_until_step=self.state.step)
        self._forget_best_after(self.state.step)
        self.state.rows = self.record.read_metrics()
        saved = self.record.load_weights_history()
        if saved is not None:
            offered = len(self.state.rows)
            self.history.load_state_dict(saved, self.state.step, offered)

    def _forget_best_after(self, step: int) -> None:
        """Set ``best.pt`` aside when it is not of a step up to the checkpoint's ``step``.

        After a crash, ``best.pt`` may hold weights of steps the resumed run trains
        again (on another device or thread count, not bit for bit); kept, it would be
        tested as the weights at ``val/best_step``, which it is not.
        """
        if not self.record.has_best():
            return
        try:
            best_step = self.record.load_best().step
        except UserError:
            best_step = None
        if best_step is None or best_step > step:
            log.warning("best.pt (step %s) is not from the steps up to the checkpoint (step "
                        "%d); it is kept as %s, and the resumed run saves its own best "
                        "weights.", best_step if best_step is not None else "unreadable",
                        step, self.record.set_aside_best("discarded"))

    def spec(self) -> ModelSpec:
        """What rebuilds the model from a saved file alone."""
        target, kwargs = component(self.cfg.model)
        return ModelSpec(target, kwargs, self.data.in_shape, self.data.num_classes,
                         self.data.classes, self.data.norm.mean, self.data.norm.std)

    def saved(self, state: LoopState, **resuming: Any) -> Checkpoint:
        """The model's weights and description at ``state.step``."""
        return Checkpoint(state.step, now(), self.spec(), self.model.state_dict(),
                          dataclasses.asdict(self.cfg), **resuming)

    def save_checkpoint(self, state: LoopState) -> None:
        """Weights history first, then the checkpoint (both atomic)."""
        self.record.save_weights_history(self.history.state_dict())
        self.record.save_checkpoint(self.saved(
            state, optimizer_state=self.optimizer.state_dict(),
            scheduler_state=self.scheduler.state_dict(),
            rng={"torch": torch.get_rng_state(),
                 "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
            loop={"step": state.step, "total_steps": self.loop.total_steps(len(self.data.train)),
                  "elapsed_s": state.elapsed_s, "train_s": state.train_s,
                  "train_images": state.train_images, "best": list(state.best),
                  "window": state.window.state_dict()}))

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
        device = next(self.model.parameters()).device
        model = new_model(self.cfg)
        model.load_state_dict(best.model_state)
        return model.to(device=device, memory_format=torch.channels_last)


def new_model(cfg: Config) -> torch.nn.Module:
    """A model of the configured class with fresh weights from ``cfg.seed``, on the CPU.

    Built before any data is read (the data's shape and classes are those the
    config checks know, :data:`~mnist_lab.config.schema.MNIST`, which the data loader
    asserts), so a constructor's own checks refuse bad arguments first.

    Raises:
        UserError: the class cannot be imported or refused its arguments.
    """
    torch.manual_seed(cfg.seed)
    target, kwargs = component(cfg.model)
    return build_model(target, kwargs, MNIST.in_shape, MNIST.num_classes)
