"""The Optuna sweeper, continuable: a second run adds trials without overwriting.

Needs the ``[optuna]`` extra (hydra-optuna-sweeper); without it this module
registers nothing.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List

from hydra.core.config_store import ConfigStore
from hydra.utils import instantiate

from mnist_lab.sweeps.plumbing import share_cores_evenly
from mnist_lab.sweeps.summary import finish_sweep

log = logging.getLogger(__name__)

try:  # light modules: the plugin imports optuna itself only when it sweeps
    from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
except ImportError:  # the [optuna] extra is not installed
    OptunaSweeper = None


def continuation_seed(seed: int, n_trials: int) -> int:
    """The sampler's seed for an invocation that continues a study of ``n_trials`` trials.

    ``seed`` is the configured ``hydra.sweeper.sampler.seed`` (an int >= 0).
    NumPy's ``SeedSequence`` hashes the pair into a 32-bit seed (the entropy
    mixing NumPy documents for deriving independent streams), so every
    continuation draws points unlike the first invocation's and unlike other
    continuations', while the same study continued the same way proposes the
    same points again. A fresh study (``n_trials == 0``) uses ``seed`` itself.
    """
    import numpy as np

    if n_trials == 0:
        return seed
    return int(np.random.SeedSequence([seed, n_trials]).generate_state(1)[0])


if OptunaSweeper is not None:

    @dataclass
    class ContinuableOptunaSweeperConf(OptunaSweeperConf):
        _target_: str = "hydra_plugins.mnist_lab_sweepers.optuna.ContinuableOptunaSweeper"

    ConfigStore.instance().store(group="hydra/sweeper", name="mnist_optuna",
                                 node=ContinuableOptunaSweeperConf, provider="mnist_lab")

    def _continue_study(impl: Any) -> int:
        """Open the study (or create it), number new trials after its trials and, when
        continuing a seeded one, give its sampler :func:`continuation_seed`. Returns the
        number of trials so far.

        The one place that touches the sweeper's internals. Checked against
        hydra-optuna-sweeper 1.3.0, whose ``OptunaSweeperImpl`` has no public way to do
        this: it numbers trials from its ``job_idx`` attribute, builds its sampler once
        (kept in ``sampler``) when Hydra instantiates it, and turns the config's
        directions into Optuna's in ``_get_directions()``.
        """
        import optuna

        study = optuna.create_study(study_name=impl.study_name, storage=impl.storage,
                                    directions=impl._get_directions(), load_if_exists=True)
        impl.job_idx = n_trials = len(study.trials)
        sampler = impl.config.hydra.sweeper.sampler
        if n_trials and sampler.get("seed") is not None:  # unseeded samplers stay as they are
            seed = continuation_seed(sampler.seed, n_trials)
            log.info("Continuing study %s: %d trials so far; sampler seed %d (from %d).",
                     study.study_name, n_trials, seed, sampler.seed)
            impl.sampler = instantiate(sampler, seed=seed)
        return n_trials

    class ContinuableOptunaSweeper(OptunaSweeper):
        """Hydra's Optuna sweeper whose job numbers continue the study's trial count.

        The study's storage (e.g. sqlite in the sweep directory) is created after
        the sweep directory, and trial n runs in ``<sweep dir>/n``, so a second
        invocation adds trials to the same study in new directories. A continuing
        invocation seeds its sampler with :func:`continuation_seed` (when a seed is
        configured), so it proposes new points rather than the first ones again.
        """

        def sweep(self, arguments: List[str]) -> Any:
            impl = self.sweeper
            sweep_dir = Path(impl.config.hydra.sweep.dir)
            sweep_dir.mkdir(parents=True, exist_ok=True)
            _continue_study(impl)
            share_cores_evenly(impl.config.hydra.launcher, impl.n_jobs)
            try:
                return super().sweep(arguments)
            finally:
                finish_sweep(sweep_dir)
