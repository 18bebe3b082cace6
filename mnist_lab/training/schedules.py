"""Learning-rate schedules as parts (``scheduler=constant|cosine|onecycle|step``).

A schedule gives, for each training step, the factor by which the optimizer's
learning rate (``optimizer.lr``, the peak) is multiplied; it is stepped once per
training step (``torch.optim.lr_scheduler.LambdaLR``), over the run's total steps,
so training longer on resume stretches it. Each schedule may start with a linear
warm-up of ``warmup_steps`` steps, from ``lr / warmup_steps`` to ``lr``.

A schedule of a user's own is a :class:`Schedule` subclass that implements
:meth:`Schedule.after_warmup`, and one YAML file with its ``_target_``.
"""

from __future__ import annotations

import math

import torch

from ..config.parts import schema_of
from ..errors import ConfigError


class Schedule:
    """The factor of the peak learning rate at each step, with an optional linear warm-up.

    Args:
        warmup_steps: steps of linear warm-up (0: none).

    Raises:
        ConfigError: ``warmup_steps`` < 0.
    """

    def __init__(self, warmup_steps: int = 0) -> None:
        if warmup_steps < 0:
            raise ConfigError("scheduler.warmup_steps", warmup_steps, "must be >= 0")
        self.warmup_steps = warmup_steps

    def warmup(self, total_steps: int) -> int:
        """Warm-up steps of a run of ``total_steps`` steps."""
        return self.warmup_steps

    def factor(self, step: int, total_steps: int) -> float:
        """Multiplier of the peak lr for the update after ``step`` steps (of ``total_steps``)."""
        warmup = self.warmup(total_steps)
        if step < warmup:
            return (step + 1) / warmup
        return self.after_warmup(step - warmup, total_steps - warmup)

    def after_warmup(self, step: int, steps: int) -> float:
        """The factor ``step`` steps after the warm-up, of ``steps`` such steps."""
        raise NotImplementedError

    def build(self, optimizer: torch.optim.Optimizer,
              total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
        """A per-step ``LambdaLR`` following :meth:`factor` over ``total_steps``."""
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: self.factor(step, total_steps))


class Constant(Schedule):
    """The peak learning rate throughout (the seed protocol), after any warm-up."""

    def after_warmup(self, step: int, steps: int) -> float:
        return 1.0


class Cosine(Schedule):
    """Half a cosine from 1 to 0 over the steps after warm-up (Loshchilov & Hutter, SGDR,
    2017, without restarts)."""

    def after_warmup(self, step: int, steps: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * min(1.0, step / max(1, steps))))


class OneCycle(Cosine):
    """A linear warm-up over ``warmup_fraction`` of the run (when ``warmup_steps`` is 0),
    then a cosine to 0 (after Smith & Topin, super-convergence, 2017).

    Raises:
        ConfigError: ``warmup_fraction`` outside [0, 1).
    """

    def __init__(self, warmup_steps: int = 0, warmup_fraction: float = 0.3) -> None:
        super().__init__(warmup_steps)
        if not 0 <= warmup_fraction < 1:
            raise ConfigError("scheduler.warmup_fraction", warmup_fraction, "must be in [0, 1)")
        self.warmup_fraction = warmup_fraction

    def warmup(self, total_steps: int) -> int:
        return self.warmup_steps or int(self.warmup_fraction * total_steps)


class Step(Schedule):
    """The rate multiplied by ``gamma`` every ``step_size`` steps after warm-up (as
    ``torch.optim.lr_scheduler.StepLR``, counted in steps, not epochs).

    Raises:
        ConfigError: ``step_size`` < 1 or ``gamma`` outside (0, 1].
    """

    def __init__(self, step_size: int = 1000, gamma: float = 0.1, warmup_steps: int = 0) -> None:
        super().__init__(warmup_steps)
        if step_size < 1:
            raise ConfigError("scheduler.step_size", step_size, "must be >= 1 (steps)")
        if not 0 < gamma <= 1:
            raise ConfigError("scheduler.gamma", gamma, "must be in (0, 1]")
        self.step_size, self.gamma = step_size, gamma

    def after_warmup(self, step: int, steps: int) -> float:
        return self.gamma ** (step // self.step_size)


SCHEMAS = {name: schema_of(cls, supplied=()) for name, cls in (
    ("constant", Constant), ("cosine", Cosine), ("onecycle", OneCycle), ("step", Step))}
