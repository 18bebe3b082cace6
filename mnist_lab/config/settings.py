"""Typed, checked settings: a composed config (or a saved one) turned into dataclasses.

Below ``run.py`` nothing sees a DictConfig: :func:`to_settings` turns the composed
config into the dataclasses of :mod:`.schema` (``OmegaConf.to_object``, which runs
each schema's own checks) and checks what no single schema can: unknown keys, that
every number is finite, and the parts together (the model built for the dataset's
shape, the schedule built), before any data is read. Part nodes stay what Hydra made
of them: the dataclass of their schema, or a plain dict for a user's own class
without one.

A saved config (a checkpoint's) is untrusted input: :func:`settings_from_container`
checks every class it names before importing anything, and upgrades what older
versions of mnist_lab wrote.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..errors import ConfigError, UserError
from .parts import KINDS, build, schema_for
from .schema import Config
from .trust import Trust

SCHEDULES = "mnist_lab.training.schedules"
TRACKERS = {"wandb": "mnist_lab.training.tracking.wandb_tracker.WandbTracker",
            "tensorboard": "mnist_lab.training.tracking.tensorboard_tracker.TensorBoardTracker"}


def to_settings(cfg: DictConfig) -> Config:
    """Turn a composed config into typed settings and check its values.

    Args:
        cfg: the config Hydra composed (``hydra`` node absent or ignored).

    Returns:
        A :class:`~mnist_lab.config.schema.Config`.

    Raises:
        ConfigError: a value is outside its allowed range (a schema's check, a part's
            constructor, or a number that is not finite), or a key no schema has.
        UserError: a part's class cannot be imported or refuses its arguments.
    """
    _refuse_non_finite(OmegaConf.to_container(cfg, resolve=True))
    settings = OmegaConf.to_object(cfg)
    assert isinstance(settings, Config), type(settings)
    _refuse_unknown_keys(settings)
    check_parts(settings)
    return settings


def check_parts(settings: Config) -> None:
    """Build the cheap parts once, so that their own checks run now: the dataset (which
    reads nothing) for its shape, the model for that shape, the schedule.

    Raises:
        ConfigError, UserError: as :func:`mnist_lab.config.parts.build`.
    """
    from ..data.datasets import dataset_of

    info = dataset_of(settings.data).info
    build(settings.model, "model", in_shape=info.in_shape, num_classes=info.num_classes)
    build(settings.scheduler, "scheduler")


def _refuse_non_finite(node: Any, prefix: str = "") -> None:
    """Every number of the settings must be finite: ``optimizer.lr=inf`` or ``nan`` would
    train nothing, or crash later, and cannot be written as strict JSON.

    Raises:
        ConfigError: naming the first key whose value is ``inf`` or ``nan``.
    """
    if isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(prefix.rstrip("."), node, "must be a finite number",
                          "inf and nan are not allowed.")
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, (list, tuple)) else ()
    for key, value in items:
        _refuse_non_finite(value, f"{prefix}{key}." if isinstance(node, dict)
                           else f"{prefix.rstrip('.')}[{key}].")


def _refuse_unknown_keys(node: Any, prefix: str = "") -> None:
    """Refuse a key its schema lacks: Hydra's ``+trainer.epoch=1`` adds it, and it would
    change nothing (``trainer.epochs`` is the key), silently.

    Raises:
        ConfigError: names the key and the closest known one.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            _refuse_unknown_keys(value, f"{prefix}{key}.")
        return
    if not dataclasses.is_dataclass(node):
        return
    known = [f.name for f in dataclasses.fields(node)]
    for key, value in vars(node).items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            raise ConfigError(f"{prefix}{key}", value, "no such key" + (
                f" (did you mean {prefix}{close[0]}?)" if close else ""),
                f"The keys of {prefix.rstrip('.') or 'the config'} are: {', '.join(known)}.")
    for key in known:
        _refuse_unknown_keys(getattr(node, key), f"{prefix}{key}.")


# -- saved configs ------------------------------------------------------------------------

def upgrade(container: dict[str, Any]) -> dict[str, Any]:
    """A saved config as this mnist_lab writes it, from what earlier versions wrote.

    - ``data`` without ``_target_`` (before datasets were parts): MNIST.
    - ``optimizer.schedule`` and ``optimizer.warmup_steps`` (before schedules were
      parts): the ``scheduler`` node.
    - ``logger.name`` (one tracker): ``logger.<name>`` with its ``_target_``; ``none``: ``{}``.
    """
    out = dict(container)
    data = dict(out.get("data") or {})
    if "_target_" not in data:
        out["data"] = {"_target_": "mnist_lab.data.datasets.MNIST", **data}
    optimizer = dict(out.get("optimizer") or {})
    if "scheduler" not in out:
        name = optimizer.pop("schedule", "constant")
        warmup = optimizer.pop("warmup_steps", 0)
        classes = {"constant": "Constant", "cosine": "Cosine", "onecycle": "OneCycle"}
        out["scheduler"] = {"_target_": f"{SCHEDULES}.{classes.get(name, name)}",
                            "warmup_steps": warmup}
        out["optimizer"] = optimizer
    logger = out.get("logger")
    if isinstance(logger, dict) and isinstance(logger.get("name"), str):
        name, rest = logger["name"], {k: v for k, v in logger.items() if k != "name"}
        out["logger"] = {} if name == "none" else {name: {"_target_": TRACKERS.get(name, name),
                                                          **rest}}
    return out


def _typed(node: dict[str, Any]) -> Any:
    """A saved part's node on its schema (found by ``_target_``), if it has one."""
    schema = schema_for(node.get("_target_", ""))
    return OmegaConf.merge(OmegaConf.structured(schema), node) if schema else node


def saved_targets(container: dict[str, Any]) -> list[tuple[str, Any]]:
    """(kind, ``_target_``) of every part a saved config names."""
    found = [(kind, container[kind].get("_target_")) for kind in KINDS if kind != "logger"]
    return found + [("logger", node.get("_target_") if isinstance(node, dict) else node)
                    for node in container["logger"].values()]


def settings_from_container(container: Any, trust: Trust, source: str) -> Config:
    """Typed, checked settings from a plain resolved config read from a file (a
    checkpoint's): untrusted input.

    Every class it names is checked with ``trust`` before anything is imported: each
    part's ``_target_`` (a ``_target_`` nested deeper is data, never called). What
    earlier versions wrote is upgraded first (:func:`upgrade`). ``source`` names the
    file in messages.

    Raises:
        ConfigError: a value is outside its allowed range.
        UserError: it is not a config of this mnist_lab (missing parts), or it names a
            class that is not trusted.
    """
    parts = ("data", "model", "optimizer", "logger")
    if not isinstance(container, dict) or not all(isinstance(container.get(k), dict)
                                                  for k in parts):
        raise UserError(f"{source} holds no mnist_lab config (it needs the nodes "
                        f"{', '.join(parts)}): the file is damaged or not mnist_lab's.")
    container = upgrade(container)
    for kind, target in saved_targets(container):
        trust.check(target, kind, f"{source} ({kind}._target_)")
    groups = {kind: _typed(container[kind]) for kind in ("data", "model", "optimizer",
                                                         "scheduler")}
    groups["logger"] = {name: _typed(node) for name, node in container["logger"].items()}
    rest = {k: v for k, v in container.items() if k not in groups}
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), rest, groups)
    except OmegaConfBaseException as error:
        raise UserError(f"{source} holds a config this mnist_lab cannot read: "
                        f"{' '.join(str(error).split())}") from None
    return to_settings(merged)


def to_container(settings: Config) -> dict[str, Any]:
    """The settings as plain containers: the one shape of a run's config in
    ``summary.json``, ``checkpoint.pt`` and the trackers."""
    return dataclasses.asdict(settings)
