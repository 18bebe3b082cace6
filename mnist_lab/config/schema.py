"""The schemas Hydra composes ``conf/`` against: the root config and the trainer's.

Hydra composes ``conf/`` against the schemas registered here, so a wrong *type*
(``model.depth=abc``, ``trainer.epochs=1.5``) fails at composition with Hydra's own
message. The parts (``data``, ``model``, ``optimizer``, ``scheduler``, each tracker
under ``logger``) are nodes with a ``_target_``; each part's own schema lives with
the part and is registered by :func:`mnist_lab.config.parts.register_schemas`. A
schema's checks of what a type cannot say run when it is built (``__post_init__``),
when :func:`mnist_lab.config.settings.to_settings` turns the config into settings.

Importing this module registers the schemas and the resolvers of ``conf/config.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from ..errors import ConfigError
from .parts import register_schemas
from .resolvers import register_resolvers

DEVICES = ("auto", "cpu", "cuda")
TEST_ON = ("final", "best")


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(key, value, allowed)


@dataclass
class EarlyStopConfig:
    """``trainer.early_stop``: stop a run whose validation error has stopped improving.

    An evaluation improves when its ``val/error`` < (the lowest so far) − ``min_delta``
    (a fraction, like ``val/error``); after ``patience`` evaluations without one the
    run stops and is tested as usual (Keras's and Lightning's ``EarlyStopping``).
    ``patience: null``: off (the seed protocol).

    Raises:
        ConfigError: ``patience`` < 1 or ``min_delta`` outside [0, 1) (on construction).
    """

    patience: Optional[int] = None  # evaluations without an improvement; null: off
    min_delta: float = 0.0  # the least fall of val/error (a fraction) that counts

    def __post_init__(self) -> None:
        _require(self.patience is None or self.patience >= 1, "trainer.early_stop.patience",
                 self.patience, "must be null (off) or >= 1 (evaluations)")
        _require(0 <= self.min_delta < 1, "trainer.early_stop.min_delta", self.min_delta,
                 "must be in [0, 1) (a fraction, like val/error)")


@dataclass
class TrainerConfig:
    """``trainer.*``: the training loop; times in seconds, intervals in steps.

    Raises:
        ConfigError: a value outside its range (on construction).
    """

    epochs: int = 20
    eval_every: int = 100  # steps between evaluations of the validation split
    max_steps: Optional[int] = None  # stop after this many steps (short runs)
    checkpoint_every: int = 500  # steps between checkpoints (also at the end)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_threads: Optional[int] = None  # null: this job's share of the cores
    resume: Any = False  # false | true (the run directory in use) | path of a run
    snapshot_max_mb: float = 64.0  # cap on the conv-weight history kept in memory
    progress: bool = True  # progress bar (shown only on a terminal)
    test_on: str = "final"  # final | best: the weights test/error is measured on
    deterministic: bool = False  # deterministic algorithms (cuDNN, cuBLAS) on GPU
    heartbeat_s: float = 30.0  # seconds between heartbeats; lost after 3 missed
    early_stop: EarlyStopConfig = field(default_factory=EarlyStopConfig)

    def __post_init__(self) -> None:
        _require(self.epochs >= 1, "trainer.epochs", self.epochs, "must be >= 1")
        _require(self.eval_every >= 1, "trainer.eval_every", self.eval_every,
                 "must be >= 1 (steps)")
        _require(self.max_steps is None or self.max_steps >= 1, "trainer.max_steps",
                 self.max_steps, "must be null (no cap) or >= 1")
        _require(self.checkpoint_every >= 1, "trainer.checkpoint_every", self.checkpoint_every,
                 "must be >= 1 (steps)")
        _require(self.device in DEVICES or self.device.startswith("cuda:"), "trainer.device",
                 self.device, "must be auto, cpu, cuda or cuda:N")
        _require(self.num_threads is None or self.num_threads >= 1, "trainer.num_threads",
                 self.num_threads, "must be null (this job's share of the cores) or >= 1")
        _require(self.snapshot_max_mb > 0, "trainer.snapshot_max_mb", self.snapshot_max_mb,
                 "must be > 0")
        _require(self.test_on in TEST_ON, "trainer.test_on", self.test_on,
                 "must be final (the weights at the end) or best (best.pt, the lowest val/error)")
        _require(self.heartbeat_s > 0, "trainer.heartbeat_s", self.heartbeat_s,
                 "must be > 0 (seconds)")
        _require(isinstance(self.resume, (bool, str)) and self.resume != "", "trainer.resume",
                 self.resume, "must be false, true (resume the run directory in use) or the "
                              "path of a run directory")


@dataclass
class Config:
    """The composed config: one node per part, the trainer, the seed.

    ``logger`` holds one node per tracker, each under its own name
    (``logger.wandb``, ``logger.tensorboard``); ``{}`` for none.

    Raises:
        ConfigError: ``seed`` < 0 (on construction).
    """

    data: Any = MISSING  # a dataset part (conf/data/, mnist_lab/data/datasets.py)
    model: Any = MISSING  # a model part (conf/model/, mnist_lab/models/)
    optimizer: Any = MISSING  # an optimizer part (conf/optimizer/, training/optimizers.py)
    scheduler: Any = MISSING  # a learning-rate schedule part (conf/scheduler/)
    logger: Dict[str, Any] = field(default_factory=dict)  # trackers by name (conf/logger/)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        _require(self.seed >= 0, "seed", self.seed, "must be an integer >= 0")


def register_configs() -> None:
    """Register the root schema and every part's schemas in Hydra's ConfigStore
    (idempotent)."""
    ConfigStore.instance().store(name="base_config", node=Config)
    register_schemas()


register_configs()
register_resolvers()
