"""Hydra plumbing for sweeps (``python run.py -m ...``).

:class:`SweepCallback` runs in the process that launches the sweep and in each
job. At the start of a sweep it fixes the sweep's start time (the W&B group of
its runs), so every job, in whatever process a launcher starts it, agrees.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

SWEEP_START_ENV = "MNIST_LAB_SWEEP_START"


class SweepCallback(Callback):
    """Hydra callback (``hydra.callbacks.sweep``) for mnist_lab's sweeps."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Record the sweep's start time in the environment the jobs inherit."""
        os.environ[SWEEP_START_ENV] = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
