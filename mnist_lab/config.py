"""Configuration: dataclass schemas for Hydra, value checks, typed settings.

Hydra composes ``conf/`` against the schemas registered here, so a wrong *type*
(``model.depth=abc``, ``trainer.epochs=1.5``) fails at composition with Hydra's own
message. What a type cannot express (positive sizes, a depth that fits the input,
a validation split smaller than the test set) is checked by
:func:`mnist_lab.validation.validate`, which runs before any data is read or
torch is imported and raises :class:`~mnist_lab.errors.ConfigError`.

Below ``run.py`` nothing sees a DictConfig: :func:`to_settings` turns the composed
config into these dataclasses (``OmegaConf.to_object``) and code takes plain typed
arguments from them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf


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
    model: Any = MISSING  # ConvNetConfig (see conf/model/)
    optimizer: Any = MISSING  # SGDConfig (see conf/optimizer/)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: Any = MISSING  # NoLoggerConfig | WandbLoggerConfig (see conf/logger/)
    seed: int = 0


def register_configs() -> None:
    """Register the schemas in Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    # In their own groups, so that e.g. 'model=glob(*)' sweeps only real model options.
    cs.store(group="schema/model", name="convnet", node=ConvNetConfig)
    cs.store(group="schema/optimizer", name="sgd", node=SGDConfig)
    cs.store(group="schema/logger", name="none", node=NoLoggerConfig)
    cs.store(group="schema/logger", name="wandb", node=WandbLoggerConfig)


def wants_resume(resume: Any) -> bool:
    """``trainer.resume`` is true or the path of a run."""
    return resume is True or resume_path(resume) is not None


def resume_path(resume: Any) -> str | None:
    """The run directory ``trainer.resume`` names, or None for false/true."""
    if isinstance(resume, str) and resume.strip().lower() not in ("", "true", "false"):
        return resume
    return None


def anchored(cfg: Config, launch_dir: str | Path) -> Config:
    """``cfg`` with its relative paths (``data.root``, a ``trainer.resume`` path) made
    absolute from ``launch_dir``, the directory the command was launched in.

    So a relative path means the same with ``hydra.job.chdir=true``, where the
    job runs inside its output directory, as without it.
    """
    base = Path(launch_dir).absolute()
    cfg.data.root = str(base / cfg.data.root)  # an absolute root stays itself
    if resume_path(cfg.trainer.resume):
        cfg.trainer.resume = str(base / cfg.trainer.resume)
    return cfg


def _run_dir(resume: Any, default: str) -> str:
    """``hydra.run.dir``: the run being resumed, when ``trainer.resume`` names one.

    Only a directory that holds a checkpoint is used, so that a mistyped path is
    reported without creating it or writing into an unrelated folder.
    """
    path = resume_path(resume)
    return path if path and (Path(path) / "checkpoint.pt").is_file() else default


def _hydra_subdir(output_dir: str, resume: Any, started: str) -> str:
    """``hydra.output_subdir``: never overwrite the ``.hydra`` files of an existing run.

    A session in a directory that already holds a run's record, its lock or its
    Hydra files (a resumed run, a re-launched sweep job, a second command into
    a busy directory) writes its own beside them. Registered with
    ``use_cache=True``: the answer is fixed when Hydra first asks, before it
    writes, so later look-ups (a refused command removing its files) agree.
    """
    existing = any((Path(output_dir) / name).exists() for name in
                   ("summary.json", "metrics.csv", "checkpoint.pt", "run.lock", ".hydra"))
    if not existing:
        return ".hydra"
    kind = "resumed" if wants_resume(resume) else "session"
    return f".hydra/{kind}_{started}"


def register_resolvers() -> None:
    """Register the OmegaConf resolvers that ``conf/config.yaml`` uses (idempotent)."""
    OmegaConf.register_new_resolver("mnist_lab.run_dir", _run_dir, replace=True)
    OmegaConf.register_new_resolver("mnist_lab.hydra_subdir", _hydra_subdir, replace=True,
                                    use_cache=True)


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
        ConfigError: a value is outside its allowed range
            (see :func:`mnist_lab.validation.validate`).
    """
    from .validation import validate

    settings = OmegaConf.to_object(cfg)
    assert isinstance(settings, Config), type(settings)
    validate(settings)
    return settings


def model_kwargs(model: ConvNetConfig) -> dict[str, Any]:
    """The model config's arguments for the model class (all but ``name``)."""
    return {k: v for k, v in asdict(model).items() if k != "name"}


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
