"""The grid sweeper: Hydra's ``BasicSweeper`` made resumable (see mnist_lab.sweeps.plumbing)."""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from hydra.errors import HydraException
from omegaconf import OmegaConf

from mnist_lab.sweeps.plumbing import (SweepFailed, contiguous, failure_message, launch,
                                       pending_jobs, with_thread_shares)
from mnist_lab.sweeps.summary import finish_sweep

log = logging.getLogger(__name__)


@dataclass
class GridSweeperConf:
    _target_: str = "hydra_plugins.mnist_lab_sweepers.grid.GridSweeper"
    max_batch_size: Optional[int] = None  # jobs handed to the launcher at once
    params: Optional[Any] = None  # the sweep, as in hydra.sweeper.params


# Registered as "basic", Hydra's default sweeper: its config (same keys) is replaced by
# this one when Hydra scans the plugins, after its core plugins. So every grid sweep is
# resumable, and a sweep preset may still pick another sweeper (e.g. Optuna) in its
# defaults list, which an `override hydra/sweeper` in config.yaml would forbid.
ConfigStore.instance().store(group="hydra/sweeper", name="basic", node=GridSweeperConf,
                             provider="mnist_lab")


class GridSweeper(BasicSweeper):
    """Every combination of the swept values, each in ``<sweep dir>/<position>``.

    Jobs that completed with the same overrides in the same sweep directory are
    not launched again; a sweep with failed jobs raises :class:`SweepFailed`.
    """

    def sweep(self, arguments: List[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides(self._parse_config() + list(arguments))
        try:
            jobs = self.split_arguments(overrides, None)[0]
        except HydraException as error:  # e.g. interval(): a range, not a list of values
            raise SweepFailed(f"{error}. A grid sweep takes lists of values (a,b,c, range(), "
                              "choice()); for continuous ranges use +sweep=optuna.") from None
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        pending = pending_jobs(sweep_dir, jobs)
        if len(pending) < len(jobs):
            log.info("Resuming %s: %d of %d jobs completed earlier and are skipped.",
                     sweep_dir, len(jobs) - len(pending), len(jobs))
        results = []
        for start, positions in contiguous(pending, self.max_batch_size):
            batch = with_thread_shares([jobs[p] for p in positions], self.config.hydra.launcher)
            self.validate_batch_is_legal(batch)
            for position, ret in zip(positions, launch(self.launcher, batch, start, sweep_dir)):
                results.append((position, ret))
        finish_sweep(sweep_dir)
        failed = [(p, r) for p, r in results if r.status == JobStatus.FAILED]
        if failed:
            raise SweepFailed(failure_message(sweep_dir, failed, len(jobs)))
        return [[r for _, r in results]]
