"""The Optuna sweeper, continuable: a second run adds trials without overwriting.

Needs the ``[optuna]`` extra (hydra-optuna-sweeper); without it this module
registers nothing.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List

from hydra.core.config_store import ConfigStore

from mnist_lab.sweep import finish_sweep, share_cores_evenly

log = logging.getLogger(__name__)

try:  # light modules: the plugin imports optuna itself only when it sweeps
    from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
except ImportError:  # the [optuna] extra is not installed
    OptunaSweeper = None

if OptunaSweeper is not None:

    @dataclass
    class ContinuableOptunaSweeperConf(OptunaSweeperConf):
        _target_: str = "hydra_plugins.mnist_lab_sweepers.optuna.ContinuableOptunaSweeper"

    ConfigStore.instance().store(group="hydra/sweeper", name="mnist_optuna",
                                 node=ContinuableOptunaSweeperConf, provider="mnist_lab")

    class ContinuableOptunaSweeper(OptunaSweeper):
        """Hydra's Optuna sweeper whose job numbers continue the study's trial count.

        The study's storage (e.g. sqlite in the sweep directory) is created after
        the sweep directory, and trial n runs in ``<sweep dir>/n``, so a second
        invocation adds trials to the same study in new directories.
        """

        def sweep(self, arguments: List[str]) -> Any:
            import optuna

            impl = self.sweeper
            sweep_dir = Path(impl.config.hydra.sweep.dir)
            sweep_dir.mkdir(parents=True, exist_ok=True)
            study = optuna.create_study(study_name=impl.study_name, storage=impl.storage,
                                        directions=impl._get_directions(), load_if_exists=True)
            impl.job_idx = len(study.trials)
            if impl.job_idx:
                log.info("Continuing study %s: %d trials so far.", study.study_name, impl.job_idx)
            share_cores_evenly(impl.config.hydra.launcher, impl.n_jobs)
            try:
                return super().sweep(arguments)
            finally:
                finish_sweep(sweep_dir)
