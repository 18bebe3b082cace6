"""The Optuna sweeper (``+sweep=optuna``, ``hydra/sweeper=mnist_optuna``) on Optuna >= 5.

Built on Hydra's public ``Sweeper`` interface, as the grid sweeper is, with Optuna's
ask-and-tell interface; the logic is in :mod:`mnist_lab.sweeps.optuna_study` (the
sweep's side) and :mod:`mnist_lab.sweeps.trial` (a job's side: reports and pruning).
Samplers and pruners are config groups: ``hydra/sweeper/sampler=tpe|random|cmaes|gp|
nsgaii|qmc`` (tpe by default) and ``hydra/sweeper/pruner=median|none|percentile|
successive_halving|hyperband`` (median by default: experiments/pruning). Optuna is
imported when a sweep starts, so this module costs nothing to runs that do not sweep.
"""

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.types import HydraContext, TaskFunction
from omegaconf import MISSING, DictConfig

from mnist_lab.sweeps.optuna_study import continuation_seed  # noqa: F401 (public name)
from mnist_lab.sweeps.plumbing import LaunchingSweeper

log = logging.getLogger(__name__)


# -- samplers (hydra/sweeper/sampler=...): Optuna 5.1's constructors and defaults ----------

@dataclass
class TPESamplerConf:
    _target_: str = "optuna.samplers.TPESampler"
    seed: Optional[int] = None
    n_startup_trials: int = 10  # random trials before the model's proposals
    n_ei_candidates: int = 24
    multivariate: Optional[bool] = None  # None: Optuna decides (multivariate for one objective)
    constant_liar: bool = True  # parallel trials (n_jobs > 1) avoid each other's points


@dataclass
class RandomSamplerConf:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: Optional[int] = None


@dataclass
class CmaEsSamplerConf:  # needs cmaes (in the [optuna] extra); floats and ints only
    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: Optional[int] = None
    sigma0: Optional[float] = None
    n_startup_trials: int = 1
    restart_strategy: Optional[str] = None  # ipop | bipop
    consider_pruned_trials: bool = False


@dataclass
class GPSamplerConf:  # Gaussian-process Bayesian optimisation; needs torch and scipy
    _target_: str = "optuna.samplers.GPSampler"
    seed: Optional[int] = None
    n_startup_trials: int = 10
    deterministic_objective: bool = False


@dataclass
class NSGAIISamplerConf:  # a genetic algorithm, for several objectives
    _target_: str = "optuna.samplers.NSGAIISampler"
    seed: Optional[int] = None
    population_size: int = 50
    mutation_prob: Optional[float] = None
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5


@dataclass
class QMCSamplerConf:  # quasi-random (Sobol, Halton) points; needs scipy
    _target_: str = "optuna.samplers.QMCSampler"
    seed: Optional[int] = None
    qmc_type: str = "sobol"
    scramble: bool = False


# -- pruners (hydra/sweeper/pruner=...); steps are training steps -------------------------

@dataclass
class NoPrunerConf:
    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConf:  # prune below the median of earlier trials at the same step
    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5  # trials that are never pruned, to learn the median from
    n_warmup_steps: int = 0    # training steps before a trial may be pruned
    interval_steps: int = 1
    n_min_trials: int = 1      # trials reported at a step before it is judged


@dataclass
class PercentilePrunerConf:
    _target_: str = "optuna.pruners.PercentilePruner"
    percentile: float = 25.0   # keep the best 25 % at each step
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class SuccessiveHalvingPrunerConf:
    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    min_resource: Any = "auto"  # training steps of the first rung
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0
    bootstrap_count: int = 0


@dataclass
class HyperbandPrunerConf:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1      # training steps; trainer.eval_every is a natural choice
    max_resource: Any = "auto"
    reduction_factor: int = 3
    bootstrap_count: int = 0


@dataclass
class OptunaSweeperConf:
    """``hydra.sweeper``: the keys users of hydra-optuna-sweeper type, and objectives."""

    # median pruning kept the best trial while cutting 22 to 45 % of the training steps in
    # experiments/pruning (6 studies); hydra/sweeper/pruner=none trains every trial out
    defaults: List[Any] = field(default_factory=lambda: [
        {"sampler": "tpe"}, {"pruner": "median"}, "_self_"])
    _target_: str = "hydra_plugins.mnist_lab_sweepers.optuna.OptunaSweeper"
    sampler: Any = MISSING
    pruner: Any = MISSING
    direction: Any = "minimize"         # every objective is minimised
    objectives: List[str] = field(default_factory=lambda: ["val_error"])  # val_error|params|step_ms
    study_name: str = "mnist_lab"
    storage: Optional[str] = "auto"     # auto | sqlite | journal | an RDB URL | null (in memory)
    n_trials: int = 20                  # trials this invocation adds
    n_jobs: int = 1                     # trials launched at once (a batch)
    max_failure_rate: float = 0.0       # stop when more of this invocation's trials failed
    params: Optional[Dict[str, str]] = None


_store = ConfigStore.instance()
_store.store(group="hydra/sweeper", name="mnist_optuna", node=OptunaSweeperConf,
             provider="mnist_lab")
for _name, _node in [("tpe", TPESamplerConf), ("random", RandomSamplerConf),
                     ("cmaes", CmaEsSamplerConf), ("gp", GPSamplerConf),
                     ("nsgaii", NSGAIISamplerConf), ("qmc", QMCSamplerConf)]:
    _store.store(group="hydra/sweeper/sampler", name=_name, node=_node,
                 package="hydra.sweeper.sampler", provider="mnist_lab")
for _name, _node in [("none", NoPrunerConf), ("median", MedianPrunerConf),
                     ("percentile", PercentilePrunerConf),
                     ("successive_halving", SuccessiveHalvingPrunerConf),
                     ("hyperband", HyperbandPrunerConf)]:
    _store.store(group="hydra/sweeper/pruner", name=_name, node=_node,
                 package="hydra.sweeper.pruner", provider="mnist_lab")


class OptunaSweeper(LaunchingSweeper):
    """Optuna's ask-and-tell over Hydra jobs: trial ``n`` runs in ``<sweep dir>/n``.

    See :mod:`mnist_lab.sweeps.optuna_study`; the sweep itself is
    :func:`mnist_lab.sweeps.optuna_sweep.run_study`.
    """

    def __init__(self, sampler: Any, pruner: Any, direction: Any = "minimize",
                 objectives: Optional[List[str]] = None, study_name: str = "mnist_lab",
                 storage: Optional[str] = "auto", n_trials: int = 20, n_jobs: int = 1,
                 max_failure_rate: float = 0.0,
                 params: Optional[Dict[str, str]] = None) -> None:
        super().__init__(params)
        self.settings = dict(sampler=sampler, pruner=pruner, direction=direction,
                             objectives=list(objectives or ["val_error"]),
                             study_name=study_name, storage=storage, n_trials=n_trials,
                             n_jobs=n_jobs, max_failure_rate=max_failure_rate)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        # Hydra built the sampler and pruner from their configs; the configs are kept
        # instead: a continued study reseeds its sampler, and jobs rebuild the pruner
        self.settings.update(sampler=config.hydra.sweeper.sampler,
                             pruner=config.hydra.sweeper.pruner)

    def sweep(self, arguments: List[str]) -> Any:
        from mnist_lab.sweeps.optuna_sweep import StudySettings, run_study

        swept, sweep_dir = self.swept(arguments), self.sweep_dir()
        settings = StudySettings(**self.settings)
        return run_study(settings, swept, sweep_dir, self.config,
                         self.launcher, self.validate_batch_is_legal)

