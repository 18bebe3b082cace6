"""The Optuna sweeper's logic: search space, storage, study, ask and tell, figures.

Used by the thin plugin ``hydra_plugins/mnist_lab_sweepers/optuna.py`` (``+sweep=optuna``,
``hydra/sweeper=mnist_optuna``). The sweeper asks the study for trials (Optuna's
ask-and-tell interface), launches each as a Hydra job in ``<sweep dir>/<trial number>``
and tells the study each job's outcome, read from the job's own record
(``summary.json``): ``completed`` → COMPLETE with the objectives' values, ``pruned`` →
PRUNED (Optuna keeps its last reported value), anything else (failed, diverged) → FAIL.

- **Search space.** ``hydra.sweeper.params`` and the command's overrides, in Hydra's
  sweep syntax: ``choice()`` → categorical, ``range()`` → stepped int or float,
  ``interval()`` → float (``tag(log, ...)``: on a log scale); a plain value is fixed.
- **Storage.** ``auto`` (the default): the study file already in the sweep folder, else
  a journal file under ``hydra/launcher=submitit_slurm`` (a shared filesystem, where
  sqlite's locking is not safe) and sqlite otherwise; ``sqlite`` or ``journal``; any RDB
  URL; ``null`` (in memory: nothing to continue, no pruning).
- **Continuation.** A second invocation into the same folder adds ``n_trials`` trials to
  the study, after its own, with a sampler seeded by :func:`continuation_seed`. Trials
  that a stopped invocation left running are settled first from their records, or
  launched again (they resume from their checkpoints): see :func:`leftover_trials`.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from hydra.core.override_parser.types import (ChoiceSweep, IntervalSweep, Override, RangeSweep,
                                              Transformer)

from ..record.atomic import replace_atomically
from ..record.folder import RunRecord, Status
from .plumbing import SweepFailed
from .slurm import still_queued
from .summary import SWEEP_RECORD
from .trial import sweep_folder_storage

log = logging.getLogger(__name__)

# objective name -> the summary.json key it is read from (all minimised)
OBJECTIVES = {"val_error": "val/best_error", "params": "model/params", "step_ms": "train/step_ms",
              "train_s": "train/seconds"}
FIGURES = {"history": "optuna_history.png", "importances": "optuna_importances.png",
           "pareto": "optuna_pareto_front.png", "intermediate": "optuna_intermediate_values.png"}
RESULTS = "optimization_results.yaml"


# -- the search space ------------------------------------------------------------------

def distribution(override: Override) -> Any:
    """The Optuna distribution of one sweep override.

    ``choice(a, b)`` → categorical (values that are lists, such as ``[4,8]``, as the
    override strings); ``range(a, b, s)`` → int or float with step ``s``, from ``a`` to the
    last value below ``b`` (Hydra's range excludes ``b``), categorical when shuffled;
    ``interval(a, b)`` → float in [a, b], ``tag(log, interval(a, b))`` on a log scale.

    Raises:
        SweepFailed: another tag than ``log``, or ``log`` on a range or a choice.
    """
    import optuna.distributions as d

    key, value = override.get_key_element(), override.value()
    tags = set(getattr(value, "tags", set()))
    if tags - {"log"} or ("log" in tags and not isinstance(value, IntervalSweep)):
        raise SweepFailed(f"{key}: tags {sorted(tags)} are not understood; the Optuna sweeper "
                          "knows tag(log, interval(a, b)) only.")
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        return d.CategoricalDistribution(list(override.sweep_iterator(Transformer.encode)))
    if isinstance(value, RangeSweep):
        values = list(override.sweep_iterator())
        if not values:
            raise SweepFailed(f"{key}: {override.get_value_element_as_str()} is empty.")
        if all(isinstance(v, int) for v in (value.start, value.stop, value.step)):
            return d.IntDistribution(values[0], values[-1], step=int(value.step))
        return d.FloatDistribution(values[0], values[-1], step=value.step)
    if isinstance(value, IntervalSweep):
        return d.FloatDistribution(value.start, value.end, log="log" in tags)
    raise SweepFailed(f"{key}: {override.get_value_element_as_str()} is not a search space.")


def search_space(overrides: Sequence[Override]) -> tuple[dict[str, Any], dict[str, str]]:
    """(name → distribution of the swept keys, name → value of the fixed ones).

    A later override of a key replaces an earlier one in place (the command's
    ``optimizer.lr=0.05`` fixes what ``params`` searched), so the order in which the
    sampler draws the keys is that of ``params``.
    """
    space: dict[str, Any] = {}
    fixed: dict[str, str] = {}
    for override in overrides:
        key = override.get_key_element()
        if override.is_sweep_override():
            fixed.pop(key, None)
            space[key] = distribution(override)
        else:
            space.pop(key, None)
            fixed[key] = override.get_value_element_as_str()
    return space, fixed


def trial_overrides(params: dict[str, Any], fixed: dict[str, str]) -> list[str]:
    """A trial's job overrides: the fixed values, then the sampled ones."""
    return [f"{k}={v}" for k, v in fixed.items()] + [f"{k}={v}" for k, v in params.items()]


# -- what the study minimises -------------------------------------------------------------

def objective_keys(objectives: Sequence[str]) -> list[str]:
    """The ``summary.json`` keys of ``hydra.sweeper.objectives`` (see :data:`OBJECTIVES`).

    Raises:
        SweepFailed: none, an unknown name, or a name given twice.
    """
    names = list(objectives)
    unknown = [n for n in names if n not in OBJECTIVES]
    if not names or unknown or len(set(names)) != len(names):
        raise SweepFailed(f"hydra.sweeper.objectives={names}: give one or more distinct names "
                          f"of {list(OBJECTIVES)} (e.g. hydra.sweeper.objectives=[val_error,"
                          "params]).")
    return [OBJECTIVES[n] for n in names]


def check_directions(direction: Any, n_objectives: int) -> list[str]:
    """``minimize`` for each objective: ``hydra.sweeper.direction`` may only say so.

    Every objective (an error rate, a parameter count, a step time) is better smaller.

    Raises:
        SweepFailed: ``maximize``, or a list whose length is not the objectives'.
    """
    given = [direction] if isinstance(direction, str) else list(direction or ["minimize"])
    if len(given) == 1:
        given = given * n_objectives
    if len(given) != n_objectives or any(str(d).lower() != "minimize" for d in given):
        raise SweepFailed(f"hydra.sweeper.direction={direction}: every objective is minimised "
                          "(error rates, parameter counts and step times are better smaller); "
                          "leave direction at minimize.")
    return ["minimize"] * n_objectives


def check_pruner(pruner_cfg: Any, objectives: Sequence[str], storage: str | None) -> bool:
    """Whether the sweep prunes (a pruner other than ``none``).

    Raises:
        SweepFailed: a pruner with several objectives (Optuna's ``Trial.report`` raises
            for multi-objective studies), or with an in-memory study (``storage=null``),
            which no job process can reach.
    """
    target = str((pruner_cfg or {}).get("_target_", "optuna.pruners.NopPruner"))
    prunes = not target.endswith("NopPruner")
    if prunes and len(objectives) > 1:
        raise SweepFailed(f"Optuna cannot prune a study of {len(objectives)} objectives "
                          f"({', '.join(objectives)}): use hydra/sweeper/pruner=none, or one "
                          "objective.")
    if prunes and storage is None:
        raise SweepFailed("A pruned study needs a storage its jobs can open: "
                          "hydra.sweeper.storage=auto, sqlite or journal (not null).")
    return prunes


# -- storage and study ------------------------------------------------------------------

def resolve_storage(storage: str | None, sweep_dir: Path, launcher_target: str) -> str | None:
    """The storage as :func:`mnist_lab.sweeps.trial.open_storage` takes it.

    ``auto``: the study file already in the sweep folder (``optuna.journal``, else
    ``optuna.db``), else a journal under ``submitit_slurm`` and sqlite otherwise.
    ``sqlite`` / ``journal``: that file in the sweep folder. A relative sqlite URL
    (``sqlite:///study.db``) is made absolute from the launch directory, so that jobs
    elsewhere find it. None: in memory.
    """
    if storage is None:
        return None
    if storage == "auto":
        if (sweep_dir / "optuna.journal").is_file():
            storage = "journal"
        elif (sweep_dir / "optuna.db").is_file():
            storage = "sqlite"
        else:
            storage = "journal" if launcher_target.endswith("SlurmLauncher") else "sqlite"
    if storage in ("sqlite", "journal"):
        return sweep_folder_storage(storage, sweep_dir)
    if storage.startswith("sqlite:///") and not storage.startswith("sqlite:////"):
        return f"sqlite:///{Path(storage[len('sqlite:///'):]).absolute()}"
    return storage


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


@dataclass
class Outcome:
    """What a trial's job ended with, as the study is told it."""

    state: Any  # optuna.trial.TrialState
    values: list[float] | None
    status: str  # the record's status (or "not started")


def outcome(job_dir: Path, keys: Sequence[str]) -> Outcome:
    """The study's view of the job in ``job_dir``, from its ``summary.json``.

    ``completed`` with every objective a finite number → COMPLETE; ``pruned`` → PRUNED;
    anything else (failed, diverged, a damaged record, an objective missing) → FAIL.
    """
    from optuna.trial import TrialState

    try:
        summary = RunRecord(job_dir).read_summary() or {}
    except (ValueError, OSError):
        summary = {}
    status = str(summary.get("status", Status.NOT_STARTED))
    if status == Status.PRUNED:
        return Outcome(TrialState.PRUNED, None, status)
    if status == Status.COMPLETED:
        values = [summary.get(k) for k in keys]
        if all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            return Outcome(TrialState.COMPLETE, [float(v) for v in values], status)
        log.warning("Job %s completed without a finite %s: told as failed.", job_dir,
                    ", ".join(k for k, v in zip(keys, values) if v is None or not
                              math.isfinite(float(v))))
    return Outcome(TrialState.FAIL, None, status)


def tell(study: Any, number: int, job_dir: Path, keys: Sequence[str]) -> Outcome:
    """Tell the study how trial ``number`` ended (:func:`outcome`); once only."""
    result = outcome(job_dir, keys)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a trial already told: skipped, as asked
        study.tell(number, result.values, state=result.state, skip_if_finished=True)
    return result


@dataclass
class Leftover:
    """A trial a stopped invocation left running, to launch again in its folder."""

    number: int
    trial_id: int
    overrides: list[str]


def leftover_trials(study: Any, sweep_dir: Path, keys: Sequence[str],
                    fixed: dict[str, str]) -> list[Leftover]:
    """Settle the trials an earlier invocation left RUNNING (it was stopped, or died).

    Each trial's job folder decides: a record that ended (completed, pruned, failed,
    diverged) is told to the study; a job SLURM still holds, or one whose run is alive
    (its lock's heartbeat), is left to finish (a later invocation tells it); any other
    (interrupted, lost, requeued and no longer queued, never started) is returned, to be
    launched again with the overrides it began with, and resumes from its checkpoint.
    """
    from optuna.trial import TrialState

    from .slurm import reader_status

    again = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        job_dir = sweep_dir / str(trial.number)
        record = RunRecord(job_dir)
        try:
            summary = record.read_summary()
        except (ValueError, OSError):
            summary = None
        status = reader_status(record, summary) if summary else Status.NOT_STARTED
        if status in (Status.COMPLETED, Status.PRUNED, Status.FAILED, Status.DIVERGED):
            told = tell(study, trial.number, job_dir, keys)
            log.info("Trial %d had ended (%s): told the study %s.", trial.number, status,
                     told.state.name)
        elif status is Status.RUNNING or still_queued(summary):
            log.info("Trial %d is still running (%s): left to finish; a later invocation "
                     "tells the study its result.", trial.number, status)
        else:
            overrides = (summary or {}).get("overrides") or trial_overrides(
                {k: v for k, v in trial.params.items()}, fixed)
            again.append(Leftover(trial.number, trial._trial_id, list(overrides)))
    return again


# -- records and figures -----------------------------------------------------------------

def record_objectives(sweep_dir: Path, names: Sequence[str]) -> None:
    """Note the objectives in ``sweep.json``, for the sweep summary's Pareto front."""
    path = sweep_dir / SWEEP_RECORD
    data = json.loads(path.read_text()) if path.is_file() else {}
    data["objectives"] = {n: OBJECTIVES[n] for n in names}
    text = json.dumps(data, indent=2) + "\n"
    replace_atomically(path, lambda tmp: tmp.write_text(text))


def write_results(study: Any, sweep_dir: Path, names: Sequence[str]) -> None:
    """``optimization_results.yaml``: the best trial (or the Pareto front), as the old
    hydra-optuna-sweeper wrote it (``name``, ``best_params``, ``best_value``)."""
    import yaml
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return
    if len(names) == 1:
        best = study.best_trial
        data = {"name": "optuna", "best_trial": best.number, "best_params": best.params,
                "best_value": best.value}
    else:
        data = {"name": "optuna", "objectives": list(names), "pareto_front": [
            {"trial": t.number, "params": t.params, "values": t.values}
            for t in study.best_trials]}
    text = yaml.safe_dump(data, sort_keys=False)
    replace_atomically(sweep_dir / RESULTS, lambda tmp: tmp.write_text(text))


def refresh_figures(study: Any, sweep_dir: Path, names: Sequence[str], prunes: bool) -> list[Path]:
    """Draw the study's figures in the sweep folder (``optuna.visualization.matplotlib``).

    One objective: the optimisation history and, with a pruner, every trial's reported
    ``val/error`` (intermediate values); several: the Pareto front; both: parameter
    importances (Optuna's default, fANOVA), once two trials completed. A figure that
    cannot be drawn yet is skipped with a log line; none ever fails the sweep.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ovm
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    single = len(names) == 1
    drawings = {}
    if done and single:
        drawings["history"] = lambda: ovm.plot_optimization_history(study, target_name=names[0])
    if prunes and single:
        drawings["intermediate"] = lambda: ovm.plot_intermediate_values(study)
    if done and not single:
        drawings["pareto"] = lambda: ovm.plot_pareto_front(study, target_names=list(names))
    if len(done) >= 2 and study.trials[0].distributions:
        drawings["importances"] = lambda: ovm.plot_param_importances(
            study, target=(lambda t: t.values[0]) if not single else None,
            target_name=names[0])
    written = []
    for name, draw in drawings.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ExperimentalWarning on every call
                axes = draw()
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
            path = sweep_dir / FIGURES[name]
            replace_atomically(path, lambda tmp: figure.savefig(tmp, format="png", dpi=100,
                                                                bbox_inches="tight"))
            plt.close(figure)
            written.append(path)
        except Exception as error:  # too few trials, a constant objective: next time
            log.info("The study's %s figure is not drawn yet: %s: %s", name,
                     type(error).__name__, error)
    return written
