"""Value checks of the settings: what a type cannot say.

Run by :func:`mnist_lab.config.to_settings` before any data is read or torch is
imported. The first bad value raises :class:`~mnist_lab.errors.ConfigError`,
naming the key, the value and the allowed range.
"""

from __future__ import annotations

import math
from typing import Any

from .config import (DEVICES, MNIST, SCHEDULES, SCHEMAS, TEST_ON, WANDB_MODES, Config,
                     ConvNetConfig, DataConfig, DatasetInfo, SGDConfig, TrainerConfig,
                     WandbLoggerConfig)
from .errors import ConfigError


def _require(ok: bool, key: str, value: Any, allowed: str, hint: str = "") -> None:
    if not ok:
        raise ConfigError(key, value, allowed, hint)


def max_conv_blocks(size: int) -> int:
    """How many 2x2-pooling conv blocks an input of ``size`` pixels allows.

    Each block halves the spatial size (rounding down); at least 1 pixel must
    remain, so 28 allows 4 blocks (28 → 14 → 7 → 3 → 1).
    """
    return int(math.floor(math.log2(size)))


def validate(cfg: Config, dataset: DatasetInfo = MNIST) -> None:
    """Check every value a type cannot check; the first bad one raises.

    Runs before any data is read or torch is imported.

    Raises:
        ConfigError: naming the key, the bad value and the allowed range.
    """
    _validate_model(cfg.model, dataset)
    _validate_data(cfg.data, dataset)
    _validate_optimizer(cfg.optimizer)
    _validate_trainer(cfg.trainer)
    _validate_logger(cfg.logger)
    _require(cfg.seed >= 0, "seed", cfg.seed, "must be an integer >= 0")


def _validate_model(model: ConvNetConfig, dataset: DatasetInfo) -> None:
    _require(model.name in SCHEMAS["model"], "model.name", model.name,
             f"must name a model class: {', '.join(SCHEMAS['model'])}",
             "Pick a model config with model=<option> (conf/model/), e.g. model=convnet_bn.")
    depth, size = list(model.depth), min(dataset.in_shape[1:])
    _require(
        len(depth) > 0 and all(c >= 1 for c in depth),
        "model.depth", depth,
        "must be a non-empty list of positive channel counts, one per conv block",
        "Example: 'model.depth=[4,8]' (quoted: shells such as zsh expand brackets).",
    )
    blocks = max_conv_blocks(size)
    _require(
        len(depth) <= blocks,
        "model.depth", depth,
        f"has {len(depth)} conv blocks, but a {size}x{size} input allows at most "
        f"{blocks} (each block halves the size)",
        f"Use at most {blocks} channel counts.",
    )
    k = model.kernel_size
    _require(k >= 1 and k % 2 == 1 and k <= size, "model.kernel_size", k,
             f"must be an odd number from 1 to {size} (padding keeps the size)")
    _require(model.fc_width >= 1, "model.fc_width", model.fc_width, "must be >= 1")
    _require(0.0 <= model.dropout < 1.0, "model.dropout", model.dropout,
             "must be in [0, 1) (the probability of zeroing a unit)")


def _validate_data(data: DataConfig, dataset: DatasetInfo) -> None:
    _require(data.batch_size >= 1, "data.batch_size", data.batch_size, "must be >= 1")
    _require(
        1 <= data.val_size <= dataset.num_test - 1,
        "data.val_size", data.val_size,
        f"must be in 1..{dataset.num_test - 1}: the validation split is taken from "
        f"the start of the {dataset.num_test}-image test set and the rest is the test split",
    )
    aug = data.augment
    _require(0 <= aug.rotation_deg <= 180, "data.augment.rotation_deg", aug.rotation_deg,
             "must be in [0, 180] degrees")
    _require(0 <= aug.scale < 1, "data.augment.scale", aug.scale, "must be in [0, 1)")
    _require(0 <= aug.shear_deg < 90, "data.augment.shear_deg", aug.shear_deg,
             "must be in [0, 90) degrees")
    _require(0 <= aug.translate <= 0.5, "data.augment.translate", aug.translate,
             "must be in [0, 0.5] (a fraction of the image size)")
    _require(0 <= aug.stroke <= 1, "data.augment.stroke", aug.stroke,
             "must be a probability in [0, 1]")


def _validate_optimizer(opt: SGDConfig) -> None:
    _require(opt.name in SCHEMAS["optimizer"], "optimizer.name", opt.name,
             f"must name an optimizer: {', '.join(SCHEMAS['optimizer'])}")
    _require(opt.lr > 0, "optimizer.lr", opt.lr, "must be > 0")
    _require(0 <= opt.momentum < 1, "optimizer.momentum", opt.momentum, "must be in [0, 1)")
    _require(opt.weight_decay >= 0, "optimizer.weight_decay", opt.weight_decay, "must be >= 0")
    _require(not opt.nesterov or opt.momentum > 0, "optimizer.nesterov", opt.nesterov,
             "needs optimizer.momentum > 0")
    _require(opt.schedule in SCHEDULES, "optimizer.schedule", opt.schedule,
             f"must be one of {', '.join(SCHEDULES)}")
    _require(opt.warmup_steps >= 0, "optimizer.warmup_steps", opt.warmup_steps, "must be >= 0")


def _validate_trainer(tr: TrainerConfig) -> None:
    _require(tr.epochs >= 1, "trainer.epochs", tr.epochs, "must be >= 1")
    _require(tr.eval_every >= 1, "trainer.eval_every", tr.eval_every, "must be >= 1 (steps)")
    _require(tr.max_steps is None or tr.max_steps >= 1, "trainer.max_steps", tr.max_steps,
             "must be null (no cap) or >= 1")
    _require(tr.checkpoint_every >= 1, "trainer.checkpoint_every", tr.checkpoint_every,
             "must be >= 1 (steps)")
    _require(tr.device in DEVICES or tr.device.startswith("cuda:"), "trainer.device",
             tr.device, "must be auto, cpu, cuda or cuda:N")
    _require(tr.num_threads is None or tr.num_threads >= 1, "trainer.num_threads",
             tr.num_threads, "must be null (this job's share of the cores) or >= 1")
    _require(tr.snapshot_max_mb > 0, "trainer.snapshot_max_mb", tr.snapshot_max_mb, "must be > 0")
    _require(tr.test_on in TEST_ON, "trainer.test_on", tr.test_on,
             "must be final (the weights at the end) or best (best.pt, the lowest val/error)")
    _require(tr.heartbeat_s > 0, "trainer.heartbeat_s", tr.heartbeat_s, "must be > 0 (seconds)")
    _require(
        isinstance(tr.resume, (bool, str)) and tr.resume != "",
        "trainer.resume", tr.resume,
        "must be false, true (resume the run directory in use) or the path of a run directory",
    )


def _validate_logger(logger: Any) -> None:
    if not isinstance(logger, WandbLoggerConfig):
        return
    _require(logger.mode in WANDB_MODES, "logger.mode", logger.mode,
             f"must be one of {', '.join(WANDB_MODES)}")
    _require(logger.log_images_every >= 0, "logger.log_images_every",
             logger.log_images_every, "must be >= 0 (0: never)")
    _require(logger.init_timeout > 0, "logger.init_timeout", logger.init_timeout,
             "must be > 0 (seconds)")
    _require(bool(logger.project), "logger.project", logger.project, "must not be empty")
