"""Configuration: the dataclass schemas Hydra composes against, and the path resolvers.

Hydra composes ``conf/`` against the schemas registered here, so a wrong *type*
(``model.depth=abc``, ``trainer.epochs=1.5``) fails at composition with Hydra's own
message. Models, optimizers (and a user's own) are built from their config node
with Hydra's ``_target_`` and ``hydra.utils.instantiate``: a model's node holds
``_target_`` and its constructor's keyword arguments; the trainer adds only what
comes from the data (``in_shape``, ``num_classes``). Each model of the zoo
(:mod:`mnist_lab.models`) brings its own schema, registered here as
``schema/model/<name>``. What a type cannot express is checked by
:mod:`mnist_lab.config.checks` before any data is read (see :mod:`mnist_lab.config.settings`).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from ..errors import ConfigError
from .resolvers import register_resolvers


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
TEST_ON = ("final", "best")


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
class OptimizerConfig:
    """Keys every optimizer node has besides its constructor's: read by the trainer."""

    schedule: str = "constant"  # constant | cosine | onecycle, per step over the whole run
    warmup_steps: int = 0  # linear warm-up before the schedule


@dataclass
class SGDConfig(OptimizerConfig):
    """``torch.optim.SGD`` (``optimizer=sgd``, the seed protocol's)."""

    _target_: str = "torch.optim.SGD"
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 0.0
    nesterov: bool = False


@dataclass
class AdamConfig(OptimizerConfig):
    """``torch.optim.Adam`` (Kingma & Ba, 2015; ``optimizer=adam``)."""

    _target_: str = "torch.optim.Adam"
    lr: float = 0.001
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0


@dataclass
class AdamWConfig(AdamConfig):
    """``torch.optim.AdamW``: decoupled weight decay (Loshchilov & Hutter, 2019)."""

    _target_: str = "torch.optim.AdamW"
    weight_decay: float = 0.01


OPTIMIZER_SCHEMAS = {"sgd": SGDConfig, "adam": AdamConfig, "adamw": AdamWConfig}


@dataclass
class TrainerConfig:
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
    model: Any = MISSING  # a model schema with its _target_ (models/*.py SCHEMA, conf/model/)
    optimizer: Any = MISSING  # an optimizer schema with its _target_ (conf/optimizer/)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: Any = MISSING  # NoLoggerConfig | WandbLoggerConfig (see conf/logger/)
    seed: int = 0


def component(node: Any, key: str = "model") -> tuple[str, dict[str, Any]]:
    """A model or optimizer node → (``_target_``, the other keyword arguments).

    ``node``: a schema dataclass instance or a plain mapping (a user's class
    without a schema). Keys starting with ``_`` (Hydra's ``_target_``,
    ``_partial_`` ...) are not arguments.

    Raises:
        ConfigError: the node has no ``_target_`` (``key`` names the node).
    """
    values = dataclasses.asdict(node) if dataclasses.is_dataclass(node) else dict(node)
    if not isinstance(values.get("_target_"), str):
        raise ConfigError(f"{key}._target_", values.get("_target_"),
                          "must name the class to build, as module.Class",
                          f"Add '_target_: my_package.MyClass' to the {key} config file.")
    kwargs = {k: v for k, v in values.items() if not k.startswith("_")}
    return values["_target_"], kwargs


def model_schemas() -> dict[str, type]:
    """The zoo's schemas: each ``mnist_lab.models.<name>`` module's ``SCHEMA``, by name."""
    from .. import models

    found = {}
    for info in pkgutil.iter_modules(models.__path__):
        module = importlib.import_module(f"{models.__name__}.{info.name}")
        if hasattr(module, "SCHEMA"):
            found[info.name] = module.SCHEMA
    return found


def schema_for(target: str) -> type | None:
    """The registered schema (model or optimizer) whose ``_target_`` is ``target``."""
    schemas = [*model_schemas().values(), *OPTIMIZER_SCHEMAS.values()]
    return next((s for s in schemas if s._target_ == target), None)


def register_configs() -> None:
    """Register the schemas in Hydra's ConfigStore (idempotent).

    In their own groups (``schema/...``), so that ``'model=glob(*)'`` sweeps only
    real model options.
    """
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for name, schema in model_schemas().items():
        cs.store(group="schema/model", name=name, node=schema)
    for name, schema in OPTIMIZER_SCHEMAS.items():
        cs.store(group="schema/optimizer", name=name, node=schema)
    cs.store(group="schema/logger", name="none", node=NoLoggerConfig)
    cs.store(group="schema/logger", name="wandb", node=WandbLoggerConfig)


register_configs()
register_resolvers()
