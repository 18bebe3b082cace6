"""Optimizers as parts: torch's, each with its schema and checks beside it, or a user's.

An ``optimizer`` node names a ``torch.optim.Optimizer`` subclass (``_target_``) and
its keyword arguments; :func:`build_optimizer` builds it over the model's parameters.
mnist_lab's options (``optimizer=sgd|adam|adamw``) have schemas here, whose defaults
are the seed protocol's and whose checks run when the config is turned into settings.
A user's optimizer needs no schema: its own constructor checks its arguments (any
number of ``betas``, say), and refusals come back as one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, List

import torch

from ..config.parts import build
from ..errors import ConfigError


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"optimizer.{key}", value, allowed)


@dataclass
class SGDConfig:
    """``torch.optim.SGD`` (``optimizer=sgd``): the seed protocol's, lr 0.001, momentum 0.9."""

    _target_: str = "torch.optim.SGD"
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        _require(self.lr > 0, "lr", self.lr, "must be > 0")
        _require(0 <= self.momentum < 1, "momentum", self.momentum, "must be in [0, 1)")
        _require(self.weight_decay >= 0, "weight_decay", self.weight_decay, "must be >= 0")
        _require(not self.nesterov or self.momentum > 0, "nesterov", self.nesterov,
                 "needs optimizer.momentum > 0")


@dataclass
class AdamConfig:
    """``torch.optim.Adam`` (Kingma & Ba, 2015; ``optimizer=adam``)."""

    _target_: str = "torch.optim.Adam"
    lr: float = 0.001
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _require(self.lr > 0, "lr", self.lr, "must be > 0")
        _require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas",
                 self.betas, "must be two numbers in [0, 1)")
        _require(self.eps > 0, "eps", self.eps, "must be > 0")
        _require(self.weight_decay >= 0, "weight_decay", self.weight_decay, "must be >= 0")


@dataclass
class AdamWConfig(AdamConfig):
    """``torch.optim.AdamW``: decoupled weight decay (Loshchilov & Hutter, 2019)."""

    _target_: str = "torch.optim.AdamW"
    weight_decay: float = 0.01


SCHEMAS = {"sgd": SGDConfig, "adam": AdamConfig, "adamw": AdamWConfig}


def build_optimizer(node: Any, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """``_target_(params, **kwargs)``: the node's optimizer over ``params``.

    The class must be a ``torch.optim.Optimizer`` subclass, checked before anything is
    constructed (:func:`mnist_lab.config.parts.build`). Only for a trusted target (the
    command's own config, or a saved one checked by
    :func:`mnist_lab.config.settings.settings_from_container`).

    Raises:
        UserError: the class is not an optimizer, or cannot be built with these
            arguments (names both).
    """
    return build(node, "optimizer", params)
