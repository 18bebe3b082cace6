"""The live parts of one run: built from settings, restored from and saved to its record.

:class:`Run` holds the model, optimizer, schedule, loop state and weight history
of a run, and is the one place that writes (and restores) its checkpoint and
its best-validation weights (``best.pt``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from .config import Config, model_kwargs
from .data import MNISTData
from .job import now
from .model import build_model
from .optim import build_optimizer, build_scheduler
from .record import RunRecord, model_description
from .snapshots import WeightsHistory
from .train import LoopSettings, LoopState, Window


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
    def build(cls, cfg: Config, data: MNISTData, device: torch.device, record: RunRecord,
              checkpoint: dict | None) -> "Run":
        torch.manual_seed(cfg.seed)
        model = cls.new_model(cfg, data).to(device=device, memory_format=torch.channels_last)
        loop = loop_settings(cfg)
        optimizer = build_optimizer(cfg.optimizer, model.parameters())
        scheduler = build_scheduler(cfg.optimizer, optimizer, loop.total_steps(len(data.train)))
        history = WeightsHistory(int(cfg.trainer.snapshot_max_mb * 2**20))
        run = cls(cfg, data, record, model, optimizer, scheduler, loop,
                  LoopState(step=0, window=Window.zeros(device)), history)
        run.restore(checkpoint)
        return run

    @staticmethod
    def new_model(cfg: Config, data: MNISTData) -> torch.nn.Module:
        """A freshly initialised model of the configured class, on the CPU."""
        return build_model(cfg.model.name, model_kwargs(cfg.model), data.in_shape,
                           data.num_classes)

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

    def description(self) -> dict[str, Any]:
        """What a saved model needs to be rebuilt alone: config, model class, input, classes."""
        return {"config": dataclasses.asdict(self.cfg),
                **model_description(self.cfg.model.name, model_kwargs(self.cfg.model),
                                    self.data.in_shape, self.data.classes,
                                    self.data.norm.mean, self.data.norm.std)}

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
            **self.description(),
        })

    def save_best(self, state: LoopState) -> None:
        """``best.pt``: the weights at ``state.best`` (a new lowest validation error)."""
        self.record.save_best({"step": state.step, "saved_at": now(),
                               "val/error": state.best[0],
                               "model_state": self.model.state_dict(), **self.description()})

    def best_model(self) -> torch.nn.Module | None:
        """The model with the weights of ``best.pt``, on the training device; None if none."""
        if not self.record.has_best():
            return None
        device = next(self.model.parameters()).device
        model = self.new_model(self.cfg, self.data)
        model.load_state_dict(self.record.load_best()["model_state"])
        return model.to(device=device, memory_format=torch.channels_last)
