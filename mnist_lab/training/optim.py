"""Optimizers and learning-rate schedules, built from the ``optimizer`` config node.

The optimizer is built with Hydra's ``instantiate`` from the node's ``_target_``
(``torch.optim.SGD``, ``Adam``, ``AdamW``, or any optimizer class taking the
parameters first) and its keyword arguments; the node's ``schedule`` and
``warmup_steps`` are read by the trainer and give the per-step learning-rate
schedule (:func:`lr_factor`).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch
from hydra.utils import instantiate

from ..config.schema import OptimizerConfig, component
from ..config.parts import import_class
from ..errors import UserError

SCHEDULE_KEYS = tuple(OptimizerConfig.__dataclass_fields__)  # schedule, warmup_steps


def build_optimizer(node: Any, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """``_target_(params, **kwargs)``, the keyword arguments without the schedule keys.

    The class must be a ``torch.optim.Optimizer`` subclass, checked before anything
    is constructed; a ``_target_`` nested in the arguments is passed on as a dict,
    never called (``_recursive_=False``). Only for a trusted target (the command's own
    config, or a saved one checked by :func:`mnist_lab.config.settings.settings_from_container`).

    Raises:
        UserError: the class is not an optimizer, or cannot be built with these
            arguments (names both).
    """
    target, kwargs = component(node, "optimizer")
    kwargs = {k: v for k, v in kwargs.items() if k not in SCHEDULE_KEYS}
    import_class(target, torch.optim.Optimizer, "optimizer")
    try:
        return instantiate({"_target_": target, **kwargs}, params, _convert_="all",
                           _recursive_=False)
    except Exception as error:
        cause = error.__cause__ or error  # instantiate wraps the constructor's error
        raise UserError(f"optimizer {target} with {kwargs}: {type(cause).__name__}: "
                        f"{' '.join(str(cause).split())}") from None


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


def build_scheduler(node: Any, optimizer: torch.optim.Optimizer,
                    total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step ``LambdaLR`` following :func:`lr_factor` over ``total_steps``.

    ``node``: the optimizer node; its ``schedule`` and ``warmup_steps`` (defaults
    ``constant`` and 0 for a user's optimizer node without them).
    """
    kwargs = component(node, "optimizer")[1]
    schedule, warmup = kwargs.get("schedule", "constant"), kwargs.get("warmup_steps", 0)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, schedule, warmup))
