"""Value checks of the settings: what a type cannot say.

Run by :func:`mnist_lab.config.settings.to_settings` before any data is read. The first
bad value raises :class:`~mnist_lab.errors.ConfigError`, naming the key, the
value and the allowed range. A model's own checks live with the model (its
``validate`` classmethod); these are the checks of everything else.
"""

from __future__ import annotations

from typing import Any

from .schema import (DEVICES, MNIST, SCHEDULES, TEST_ON, WANDB_MODES, Config, DataConfig,
                     DatasetInfo, TrainerConfig, WandbLoggerConfig, component)
from ..errors import ConfigError


def _require(ok: bool, key: str, value: Any, allowed: str, hint: str = "") -> None:
    if not ok:
        raise ConfigError(key, value, allowed, hint)


def validate(cfg: Config, dataset: DatasetInfo = MNIST) -> None:
    """Check every value a type cannot check; the first bad one raises.

    Runs before any data is read. The model's own checks are its class's
    ``validate`` classmethod (this imports the model's module, and so torch); a
    class without one is checked by its constructor, which also runs before any
    data is read (:func:`mnist_lab.models.build.build_model`).

    Raises:
        ConfigError: naming the key, the bad value and the allowed range.
        UserError: the model's ``_target_`` cannot be imported or is not a model.
    """
    _validate_model(cfg.model, dataset)
    _validate_data(cfg.data, dataset)
    _validate_optimizer(cfg.optimizer)
    _validate_trainer(cfg.trainer)
    _validate_logger(cfg.logger)
    _require(cfg.seed >= 0, "seed", cfg.seed, "must be an integer >= 0")


def _validate_model(model: Any, dataset: DatasetInfo) -> None:
    from ..models.build import model_class

    target, kwargs = component(model)
    check = getattr(model_class(target), "validate", None)
    if check is not None:
        check(in_shape=dataset.in_shape, num_classes=dataset.num_classes, **kwargs)


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


def _validate_optimizer(opt: Any) -> None:
    """Checks of the keys optimizers share, whichever optimizer (a user's too) has them."""
    _, kw = component(opt, "optimizer")
    _require(kw.get("lr", 1.0) > 0, "optimizer.lr", kw.get("lr"), "must be > 0")
    _require(0 <= kw.get("momentum", 0.0) < 1, "optimizer.momentum", kw.get("momentum"),
             "must be in [0, 1)")
    _require(kw.get("weight_decay", 0.0) >= 0, "optimizer.weight_decay",
             kw.get("weight_decay"), "must be >= 0")
    _require(not kw.get("nesterov") or kw.get("momentum", 0) > 0, "optimizer.nesterov",
             kw.get("nesterov"), "needs optimizer.momentum > 0")
    _require(all(0 <= b < 1 for b in kw.get("betas", [])) and len(kw.get("betas", [0, 0])) == 2,
             "optimizer.betas", kw.get("betas"), "must be two numbers in [0, 1)")
    _require(kw.get("eps", 1.0) > 0, "optimizer.eps", kw.get("eps"), "must be > 0")
    _require(kw.get("schedule", "constant") in SCHEDULES, "optimizer.schedule",
             kw.get("schedule"), f"must be one of {', '.join(SCHEDULES)}")
    _require(kw.get("warmup_steps", 0) >= 0, "optimizer.warmup_steps", kw.get("warmup_steps"),
             "must be >= 0")


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
