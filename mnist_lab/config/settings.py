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
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .schema import Config, NoLoggerConfig, WandbLoggerConfig, schema_for
from ..errors import ConfigError, UserError
from .checks import validate

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
    validate(settings)
    return settings


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


def settings_from_container(container: dict) -> Config:
    """Typed, checked settings from a plain resolved config (e.g. a checkpoint's).

    Raises:
        ConfigError: a value is outside its allowed range.
        UserError: its ``logger.name`` is not one this mnist_lab knows.
    """
    logger = container["logger"].get("name")
    if logger not in LOGGERS:
        raise UserError(f"logger.name={logger!r} in the saved config: this mnist_lab knows "
                        f"{', '.join(LOGGERS)}. Use the mnist_lab that wrote it.")
    groups = {"model": _typed(container["model"]), "optimizer": _typed(container["optimizer"]),
              "logger": OmegaConf.merge(OmegaConf.structured(LOGGERS[logger]),
                                        container["logger"])}
    rest = {k: v for k, v in container.items() if k not in groups}
    return to_settings(OmegaConf.merge(OmegaConf.structured(Config), rest, groups))
