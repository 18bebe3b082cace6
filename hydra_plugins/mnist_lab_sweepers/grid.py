"""The grid sweeper (``hydra/sweeper=grid``, the default): every combination, resumable.

Built on Hydra's public ``Sweeper`` interface; the logic is in
:mod:`mnist_lab.sweeps.plumbing`.
"""

import itertools
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobStatus

from mnist_lab.sweeps.plumbing import (LaunchingSweeper, SweepFailed, contiguous,
                                       failure_message, launch, pending_jobs, recorded_overrides,
                                       skipped_note, visible_gpus, waves, with_devices,
                                       with_thread_shares)
from mnist_lab.sweeps.summary import finish_sweep, record_plan

log = logging.getLogger(__name__)


@dataclass
class GridSweeperConf:
    _target_: str = "hydra_plugins.mnist_lab_sweepers.grid.GridSweeper"
    max_batch_size: Optional[int] = None  # jobs handed to the launcher at once
    params: Optional[Dict[str, str]] = None  # the sweep, as in Hydra's basic sweeper


ConfigStore.instance().store(group="hydra/sweeper", name="grid", node=GridSweeperConf,
                             provider="mnist_lab")


def grid(overrides: List[Override]) -> List[List[str]]:
    """The cartesian product of the overrides' values, as each job's override strings.

    Raises:
        SweepFailed: a continuous range (``interval()``), which a grid cannot list.
    """
    choices: Dict[str, List[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        if not override.is_sweep_override():
            choices[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            raise SweepFailed(f"{key}: a continuous range is not a list of values. A grid "
                              "sweep takes lists of values (a,b,c, range(), choice()); for "
                              "continuous ranges use +sweep=optuna.")
    return [list(job) for job in itertools.product(*choices.values())]


class GridSweeper(LaunchingSweeper):
    """Every combination of the swept values, each in ``<sweep dir>/<position>``.

    Jobs that completed with the same overrides in the same sweep directory are
    not launched again; a sweep with failed jobs raises :class:`SweepFailed`.
    """

    def __init__(self, max_batch_size: Optional[int] = None,
                 params: Optional[Dict[str, str]] = None) -> None:
        super().__init__(params)
        self.max_batch_size = max_batch_size

    def sweep(self, arguments: List[str]) -> Any:
        jobs = grid(self.swept(arguments))
        sweep_dir = self.sweep_dir()
        record_plan(sweep_dir, len(jobs))
        pending = pending_jobs(sweep_dir, jobs)
        if len(pending) < len(jobs):
            log.info("Resuming %s: %s", sweep_dir, skipped_note(sweep_dir, jobs, pending))
        results = []
        launcher_cfg = self.config.hydra.launcher
        gpus = visible_gpus(launcher_cfg)
        for _, group in contiguous(pending, self.max_batch_size):
            for positions in waves(group, launcher_cfg, gpus):
                batch = with_devices([jobs[p] for p in positions], launcher_cfg, gpus,
                                     [recorded_overrides(sweep_dir / str(p)) for p in positions])
                batch = with_thread_shares(batch, launcher_cfg)
                self.validate_batch_is_legal(batch)
                results += zip(positions, launch(self.launcher, batch, positions[0], sweep_dir))
        finish_sweep(sweep_dir)
        failed = [(p, r) for p, r in results if r.status == JobStatus.FAILED]
        if failed:
            raise SweepFailed(failure_message(sweep_dir, failed, len(jobs)))
        return [[r for _, r in results]]
