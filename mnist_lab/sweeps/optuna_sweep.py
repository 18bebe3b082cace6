"""One invocation of the Optuna sweeper: open the study, settle what an earlier one left,
ask for trials in batches of ``n_jobs``, launch them, tell the study how each ended.

The pieces are in :mod:`.optuna_study` (search space, storage, outcomes, figures) and
:mod:`.trial` (the job's side); the plugin (``hydra_plugins/mnist_lab_sweepers/optuna.py``)
only hands over its settings.

Hydra's ``launcher.launch(batch)`` returns when every job of the batch has ended, so
with ``n_jobs > 1`` a pruned trial's slot idles until its batch ends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn, JobStatus
from hydra.utils import instantiate
from omegaconf import DictConfig

from .optuna_study import (Leftover, check_directions, check_pruner, continuation_seed,
                           leftover_trials, objective_keys, record_objectives, refresh_figures,
                           resolve_storage, search_space, tell, trial_overrides, write_results)
from .plumbing import (SweepFailed, contiguous, failure_message, job_error, launch,
                       recorded_overrides, visible_gpus, waves, with_devices, with_thread_shares)
from .summary import finish_sweep, refresh_summary
from .trial import STORAGE_ENV, STUDY_ENV, TRIAL_ENV, StudyRefused, open_storage

log = logging.getLogger(__name__)


@dataclass
class StudySettings:
    """``hydra.sweeper``'s values (see ``OptunaSweeperConf`` in the plugin)."""

    sampler: Any
    pruner: Any
    direction: Any
    objectives: list[str]
    study_name: str
    storage: str | None
    n_trials: int
    n_jobs: int
    max_failure_rate: float


def env_override(name: str, value: Any) -> str:
    """``++hydra.job.env_set.NAME='value'``: set in the job's environment by Hydra wherever
    the job runs (quoted, so that URLs and paths pass whole)."""
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"++hydra.job.env_set.{name}='{text}'"


def run_study(settings: StudySettings, overrides: Sequence[Override], sweep_dir: Path,
              config: DictConfig, launcher: Any,
              validate: Callable[[list[list[str]]], None]) -> Any:
    """Run this invocation's trials; return the study's best trials.

    Raises:
        SweepFailed: a refused setting (one line), a study that an older Optuna wrote, or
            more than ``max_failure_rate`` of this invocation's trials failed.
    """
    import optuna

    if settings.n_trials < 0 or settings.n_jobs < 1:
        raise SweepFailed(f"hydra.sweeper.n_trials={settings.n_trials}, n_jobs="
                          f"{settings.n_jobs}: give n_trials >= 0 and n_jobs >= 1.")
    space, fixed = search_space(overrides)
    keys = objective_keys(settings.objectives)
    directions = check_directions(settings.direction, len(keys))
    launcher_cfg = config.hydra.launcher
    storage = resolve_storage(settings.storage, sweep_dir, str(launcher_cfg.get("_target_", "")))
    prunes = check_pruner(settings.pruner, settings.objectives, storage)
    record_objectives(sweep_dir, settings.objectives)
    try:
        handle = open_storage(storage)
    except StudyRefused as error:
        raise SweepFailed(str(error)) from None
    pruner = instantiate(settings.pruner)
    study = optuna.create_study(study_name=settings.study_name, storage=handle,
                                directions=directions, load_if_exists=True, pruner=pruner)
    if list(study.directions) != [optuna.study.StudyDirection.MINIMIZE] * len(keys):
        raise SweepFailed(f"Study '{settings.study_name}' in {storage} has "
                          f"{len(study.directions)} objective(s), not {len(keys)} "
                          f"({', '.join(settings.objectives)}): give another study_name or "
                          "hydra.sweep.dir.")
    so_far = len(study.trials)
    study.sampler = sampler_for(settings.sampler, so_far, settings.study_name)
    log.info("Optuna study '%s' in %s: %d trials so far; %d to add, %d at a time%s.",
             settings.study_name, storage or "memory", so_far, settings.n_trials,
             settings.n_jobs, "; pruned by " + str(settings.pruner.get("_target_")) if prunes
             else "")

    run = _Runner(study, sweep_dir, keys, launcher, launcher_cfg, validate, storage, prunes,
                  settings)
    try:
        leftovers = leftover_trials(study, sweep_dir, keys, fixed)
        if leftovers:
            log.info("Trials %s were left running by an earlier invocation: launched again "
                     "(each resumes from its checkpoint).", [t.number for t in leftovers])
        for start in range(0, len(leftovers), settings.n_jobs):
            run.batch(leftovers[start:start + settings.n_jobs])
        added = 0
        while added < settings.n_trials:
            count = min(settings.n_jobs, settings.n_trials - added)
            asked = [study.ask(space) for _ in range(count)]
            # the jobs open their trial with Optuna's public optuna.trial.Trial(study,
            # trial_id); ask() exposes that id only as _trial_id (the one private name used)
            run.batch([Leftover(t.number, t._trial_id, trial_overrides(t.params, fixed))
                       for t in asked])
            added += count
    finally:
        finish_sweep(sweep_dir)
        run.figures()
    best = study.best_trials if len(keys) > 1 else (
        [study.best_trial] if any(t.state.name == "COMPLETE" for t in study.trials) else [])
    return best


def sampler_for(sampler_cfg: Any, trials_so_far: int, study_name: str) -> Any:
    """The configured sampler; a seeded one continuing a study gets
    :func:`~mnist_lab.sweeps.optuna_study.continuation_seed` instead of its seed."""
    seed = sampler_cfg.get("seed")
    if trials_so_far and seed is not None:
        new_seed = continuation_seed(int(seed), trials_so_far)
        log.info("Continuing study %s: %d trials so far; sampler seed %d (from %d).",
                 study_name, trials_so_far, new_seed, seed)
        return instantiate(sampler_cfg, seed=new_seed)
    return instantiate(sampler_cfg)


class _Runner:
    """Launches batches of trials and tells the study their outcomes."""

    def __init__(self, study: Any, sweep_dir: Path, keys: list[str], launcher: Any,
                 launcher_cfg: DictConfig, validate: Callable, storage: str | None,
                 prunes: bool, settings: StudySettings) -> None:
        self.study, self.sweep_dir, self.keys = study, sweep_dir, keys
        self.launcher, self.launcher_cfg, self.validate = launcher, launcher_cfg, validate
        self.storage, self.prunes, self.settings = storage, prunes, settings
        self.gpus = visible_gpus(launcher_cfg)
        self.told: list[tuple[int, str]] = []  # (trial number, Optuna state) this invocation
        self.failed: list[tuple[int, JobReturn]] = []

    def job(self, trial: Leftover) -> list[str]:
        """A trial's overrides, and where pruning needs it, the channel to its study."""
        channel = [env_override(TRIAL_ENV, trial.trial_id),
                   env_override(STORAGE_ENV, self.storage),
                   env_override(STUDY_ENV, self.settings.study_name)] if self.prunes else []
        return list(trial.overrides) + channel

    def batch(self, trials: list[Leftover]) -> None:
        """Launch ``trials`` (numbers that follow each other in one launch, so that each
        job's folder is its trial's number), then tell the study each outcome."""
        by_number = {t.number: t for t in trials}
        for _, numbers in contiguous(sorted(by_number), None):
            for wave in waves(numbers, self.launcher_cfg, self.gpus):
                jobs = with_devices([self.job(by_number[n]) for n in wave], self.launcher_cfg,
                                    self.gpus,
                                    [recorded_overrides(self.sweep_dir / str(n)) for n in wave])
                jobs = with_thread_shares(jobs, self.launcher_cfg)
                self.validate(jobs)
                returns = launch(self.launcher, jobs, wave[0], self.sweep_dir)
                for number, ret in zip(wave, returns):
                    result = tell(self.study, number, self.sweep_dir / str(number), self.keys)
                    self.told.append((number, result.state.name))
                    if result.state.name == "FAIL":
                        self.failed.append((number, ret))
                        log.warning("Trial %d failed (%s)%s", number, result.status,
                                    f": {_error(ret)}" if ret.status == JobStatus.FAILED else "")
        self.figures()
        self.check_failures()

    def figures(self) -> None:
        """The study's figures and results file, refreshed as trials end (never fatal)."""
        try:
            write_results(self.study, self.sweep_dir, self.settings.objectives)
            refresh_figures(self.study, self.sweep_dir, self.settings.objectives, self.prunes)
        except Exception as error:  # a figure or a file must never end the study
            log.warning("The study's figures were not refreshed: %s: %s",
                        type(error).__name__, error)

    def check_failures(self) -> None:
        """Stop when more than ``max_failure_rate`` of this invocation's trials failed."""
        if self.told and len(self.failed) / len(self.told) > self.settings.max_failure_rate:
            refresh_summary(self.sweep_dir)
            raise SweepFailed(failure_message(self.sweep_dir, self.failed, len(self.told))
                              + f" (more than hydra.sweeper.max_failure_rate="
                              f"{self.settings.max_failure_rate} of this invocation's trials "
                              "failed)")


def _error(ret: JobReturn) -> str:
    """The failed job's exception in one line: its type and message."""
    error = job_error(ret)
    return f"{type(error).__name__}: {error}" if error is not None else ""
