"""Optimizers and learning-rate schedules, built from their config dataclasses."""

from __future__ import annotations

import math
from typing import Iterable

import torch

from .config import SGDConfig


def build_optimizer(cfg: SGDConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """``torch.optim.SGD`` with the config's lr, momentum, weight decay and Nesterov flag.

    Raises:
        ValueError: an optimizer name other than ``sgd``.
    """
    if cfg.name != "sgd":
        raise ValueError(f"Unknown optimizer {cfg.name!r}; known: sgd")
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)


def lr_factor(step: int, total_steps: int, schedule: str, warmup_steps: int) -> float:
    """Multiplier of the peak lr for the update after ``step`` steps.

    - ``constant``: 1 (the seed protocol).
    - ``cosine``: half a cosine from 1 to 0 over the steps after warm-up
      (Loshchilov & Hutter, SGDR, 2017, without restarts).
    - ``onecycle``: like cosine, but with a linear warm-up of 30 % of the run
      when ``warmup_steps`` is 0 (after Smith & Topin, super-convergence, 2017).

    ``warmup_steps`` > 0 ramps linearly from 1/warmup_steps to 1 first.
    """
    if schedule == "onecycle" and warmup_steps == 0:
        warmup_steps = int(0.3 * total_steps)
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def build_scheduler(cfg: SGDConfig, optimizer: torch.optim.Optimizer,
                    total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step ``LambdaLR`` following :func:`lr_factor` over ``total_steps``."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, cfg.schedule, cfg.warmup_steps)
    )
