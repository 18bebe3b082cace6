"""Typed, checked settings: a composed config (or a saved one) turned into dataclasses.

Below ``run.py`` nothing sees a DictConfig: :func:`to_settings` turns the composed
config into the dataclasses of :mod:`mnist_lab.config` (``OmegaConf.to_object``)
and runs the value checks of :mod:`mnist_lab.config.checks`, before any data is
read. Model and optimizer nodes stay what Hydra made of them: the dataclass of
their schema, or a plain dict for a user's own class without one; code reads
them through :func:`mnist_lab.config.schema.component`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .schema import Config, NoLoggerConfig, WandbLoggerConfig, schema_for
from ..errors import ConfigError, UserError
from .checks import validate
from .trust import Trust

LOGGERS = {"none": NoLoggerConfig, "wandb": WandbLoggerConfig}


def to_settings(cfg: DictConfig) -> Config:
    """Turn a composed config into typed settings and check its values.

    Args:
        cfg: the config Hydra composed (``hydra`` node absent or ignored).

    Returns:
        A :class:`~mnist_lab.config.schema.Config`.

    Raises:
        ConfigError: a value is outside its allowed range (see
            :func:`mnist_lab.config.checks.validate`; a model's own checks run too).
    """
    settings = OmegaConf.to_object(cfg)
    assert isinstance(settings, Config), type(settings)
    _refuse_unknown_keys(settings)
    _refuse_non_finite(dataclasses.asdict(settings))
    validate(settings)
    return settings


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


def _typed(node: dict[str, Any]) -> Any:
    """A saved model/optimizer node on its schema (found by ``_target_``), if it has one."""
    schema = schema_for(node.get("_target_", ""))
    return OmegaConf.merge(OmegaConf.structured(schema), node) if schema else node


def settings_from_container(container: Any, trust: Trust, source: str) -> Config:
    """Typed, checked settings from a plain resolved config read from a file (a
    checkpoint's): untrusted input.

    Every class it names is checked with ``trust`` before anything is imported: its
    model and optimizer ``_target_`` (a ``_target_`` nested deeper is data, never
    called). ``source`` names the file in messages.

    Raises:
        ConfigError: a value is outside its allowed range.
        UserError: it is not a config of this mnist_lab (missing parts, an unknown
            ``logger.name``), or it names a class that is not trusted.
    """
    parts = ("model", "optimizer", "logger")
    if not isinstance(container, dict) or not all(isinstance(container.get(k), dict)
                                                  for k in parts):
        raise UserError(f"{source} holds no mnist_lab config (it needs the nodes "
                        f"{', '.join(parts)}): the file is damaged or not mnist_lab's.")
    for kind in ("model", "optimizer"):
        trust.check(container[kind].get("_target_"), kind, f"{source} ({kind}._target_)")
    logger = container["logger"].get("name")
    if logger not in LOGGERS:
        raise UserError(f"logger.name={logger!r} in {source}: this mnist_lab knows "
                        f"{', '.join(LOGGERS)}. Use the mnist_lab that wrote it.")
    groups = {"model": _typed(container["model"]), "optimizer": _typed(container["optimizer"]),
              "logger": OmegaConf.merge(OmegaConf.structured(LOGGERS[logger]),
                                        container["logger"])}
    rest = {k: v for k, v in container.items() if k not in groups}
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), rest, groups)
    except OmegaConfBaseException as error:
        raise UserError(f"{source} holds a config this mnist_lab cannot read: "
                        f"{' '.join(str(error).split())}") from None
    return to_settings(merged)
