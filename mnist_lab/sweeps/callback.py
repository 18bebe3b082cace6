"""The Hydra callback of every run (``hydra.callbacks.sweep`` in ``conf/config.yaml``)."""

from __future__ import annotations

import os
from typing import Any

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from .summary import refresh_summary, sweep_group

LAUNCH_DIR_ENV = "MNIST_LAB_LAUNCH_DIR"  # the submitting host's launch directory (sweeps)


class SweepCallback(Callback):
    """Hydra callback (``hydra.callbacks.sweep``): the sweep's W&B group, summaries."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Fix the sweep's W&B group at its first start (kept on later invocations).

        Also hand the jobs this (submitting) host's launch directory, which
        anchors their relative paths (``data.root``) wherever they run: launchers
        pass the environment on (SLURM's ``sbatch`` exports it by default).
        """
        os.environ[LAUNCH_DIR_ENV] = os.getcwd()
        sweep_group(config.hydra.sweep.dir, config.hydra.runtime.choices.get("sweep") or "sweep")

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """After each job of a sweep (in the job's process): refresh the summary."""
        if config.hydra.mode == RunMode.MULTIRUN:
            refresh_summary(config.hydra.sweep.dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        refresh_summary(config.hydra.sweep.dir)
