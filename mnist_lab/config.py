"""Configuration: dataclass schemas for Hydra, value checks, typed settings.

Hydra composes ``conf/`` against the schemas registered here, so a wrong *type*
(``model.depth=abc``, ``trainer.epochs=1.5``) fails at composition with Hydra's own
message. What a type cannot express (positive sizes, a depth that fits the input,
a validation split smaller than the test set) is checked by :func:`validate`, which
runs before any data is read or torch is imported and raises :class:`ConfigError`.

Below ``run.py`` nothing sees a DictConfig: :func:`to_settings` turns the composed
config into these dataclasses (``OmegaConf.to_object``) and code takes plain typed
arguments from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf


class UserError(Exception):
    """An error caused by the user's input (config, paths, files), not by a bug.

    Entry points print its message alone, without a traceback, and exit with
    status 2.
    """


class ConfigError(UserError):
    """A config value outside its allowed range.

    The message names the key, the bad value, what is allowed and how to fix it.
    """

    def __init__(self, key: str, value: Any, allowed: str, hint: str = "") -> None:
        message = f"Invalid config value {key}={value!r}: {allowed}."
        if hint:
            message += f" {hint}"
        super().__init__(message)
        self.key = key
        self.value = value


@dataclass(frozen=True)
class DatasetInfo:
    """What the value checks need to know about a dataset before reading it.

    ``data.load_mnist`` asserts that the files it reads agree with this.
    """

    in_shape: tuple  # (channels, height, width) of one image
    num_classes: int
    num_train: int
    num_test: int


MNIST = DatasetInfo(in_shape=(1, 28, 28), num_classes=10, num_train=60_000, num_test=10_000)

DEVICES = ("auto", "cpu", "cuda")
WANDB_MODES = ("auto", "online", "offline", "disabled")
SCHEDULES = ("constant", "cosine", "onecycle")


@dataclass
class AugmentConfig:
    """Random affine and stroke-thickness augmentation (off in the seed protocol)."""

    enabled: bool = False
    rotation_deg: float = 15.0  # rotation drawn uniformly in [-r, r] degrees
    scale: float = 0.15  # zoom drawn uniformly in [1 - s, 1 + s]
    shear_deg: float = 10.0  # shear drawn uniformly in [-s, s] degrees
    translate: float = 0.1  # shift drawn uniformly in [-t, t] of the image size
    stroke: float = 0.5  # probability of a thicker or thinner stroke (dilate / erode)


@dataclass
class DataConfig:
    root: str = MISSING  # folder that holds MNIST/raw/ (relative: to the launch directory)
    download: bool = True
    batch_size: int = 64
    val_size: int = 5000  # validation = test[:val_size], test = test[val_size:]
    normalize: bool = False  # false: pixels / 255; true: standardised with train mean/std
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class ConvNetConfig:
    name: str = "convnet"
    depth: List[int] = field(default_factory=lambda: [4, 8])
    kernel_size: int = 5
    fc_width: int = 512
    dropout: float = 0.5
    batch_norm: bool = False


@dataclass
class SGDConfig:
    name: str = "sgd"
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 0.0
    nesterov: bool = False
    schedule: str = "constant"  # constant | cosine | onecycle, over the whole run
    warmup_steps: int = 0  # linear warm-up before the schedule


@dataclass
class TrainerConfig:
    epochs: int = 20
    eval_every: int = 100  # steps between evaluations of the validation split
    max_steps: Optional[int] = None  # stop after this many steps (short runs)
    checkpoint_every: int = 500  # steps between checkpoints (also at the end)
    device: str = "auto"  # auto | cpu | cuda
    num_threads: Optional[int] = None  # null: this job's share of the cores
    resume: Any = False  # false | true (the run directory in use) | path of a run
    snapshot_max_mb: float = 64.0  # cap on the conv-weight history kept in memory
    progress: bool = True  # progress bar (shown only on a terminal)


@dataclass
class NoLoggerConfig:
    name: str = "none"


@dataclass
class WandbLoggerConfig:
    name: str = "wandb"
    project: str = "mnist_lab"
    entity: Optional[str] = None
    group: Optional[str] = None
    tags: List[str] = field(default_factory=list)
    notes: Optional[str] = None
    mode: str = "auto"  # auto | online | offline | disabled
    log_images_every: int = 5  # evaluations between feature-map / filter images; 0: never
    init_timeout: float = 60.0  # seconds to reach the server before going offline


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: Any = MISSING  # ConvNetConfig (see conf/model/)
    optimizer: Any = MISSING  # SGDConfig (see conf/optimizer/)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: Any = MISSING  # NoLoggerConfig | WandbLoggerConfig (see conf/logger/)
    seed: int = 0


def register_configs() -> None:
    """Register the schemas in Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="model", name="convnet_schema", node=ConvNetConfig)
    cs.store(group="optimizer", name="sgd_schema", node=SGDConfig)
    cs.store(group="logger", name="none_schema", node=NoLoggerConfig)
    cs.store(group="logger", name="wandb_schema", node=WandbLoggerConfig)


def _run_dir(resume: Any, default: str) -> str:
    """``hydra.run.dir``: the run being resumed when ``trainer.resume`` is a path."""
    if isinstance(resume, str) and resume.lower() not in ("", "true", "false"):
        return resume
    return default


def register_resolvers() -> None:
    """Register the OmegaConf resolvers that ``conf/config.yaml`` uses (idempotent)."""
    OmegaConf.register_new_resolver("mnist_lab.run_dir", _run_dir, replace=True)


register_configs()
register_resolvers()


def to_settings(cfg: DictConfig) -> Config:
    """Turn a composed config into typed settings and check its values.

    Args:
        cfg: the config Hydra composed (``hydra`` node absent or ignored).

    Returns:
        A :class:`Config` whose ``model``, ``optimizer`` and ``logger`` are the
        dataclasses of the chosen group options.

    Raises:
        ConfigError: a value is outside its allowed range (see :func:`validate`).
    """
    settings = OmegaConf.to_object(cfg)
    assert isinstance(settings, Config), type(settings)
    validate(settings)
    return settings


SCHEMAS = {
    "model": {"convnet": ConvNetConfig},
    "optimizer": {"sgd": SGDConfig},
    "logger": {"none": NoLoggerConfig, "wandb": WandbLoggerConfig},
}


def settings_from_container(container: dict) -> Config:
    """Typed, checked settings from a plain resolved config (e.g. a checkpoint's).

    The ``name`` of the ``model``, ``optimizer`` and ``logger`` nodes picks their schema.

    Raises:
        ConfigError: a value is outside its allowed range.
    """
    groups = {
        group: OmegaConf.merge(OmegaConf.structured(options[container[group]["name"]]),
                               container[group])
        for group, options in SCHEMAS.items()
    }
    rest = {k: v for k, v in container.items() if k not in SCHEMAS}
    return to_settings(OmegaConf.merge(OmegaConf.structured(Config), rest, groups))


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
    depth, size = list(model.depth), min(dataset.in_shape[1:])
    _require(
        len(depth) > 0 and all(c >= 1 for c in depth),
        "model.depth", depth,
        "must be a non-empty list of positive channel counts, one per conv block",
        "Example: model.depth=[4,8].",
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
