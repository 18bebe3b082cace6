"""A sweep job's side of an Optuna trial: report ``val/error``, ask the pruner.

The Optuna sweeper (``hydra_plugins/mnist_lab_sweepers/optuna.py``) asks the study for
a trial and launches it as a Hydra job. When the sweep prunes, it hands the job the
study's storage, its name and the trial's id in the job's environment (Hydra's
``hydra.job.env_set``, applied wherever the job runs: in the sweep's own process, a
joblib worker, a SLURM node, and again in a requeued SLURM job). The job opens the
study from that storage, which every process can reach (sqlite on one machine, a
journal file on a shared filesystem), and :class:`PruneOnReport`, a training stop
rule, reports each evaluation's ``val/error`` to the trial and asks the pruner. The
storage is the channel between the sweep and its jobs: no other link is needed.

Light at import (``run.py`` imports it): Optuna is imported only when a job has a trial.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import UserError

if TYPE_CHECKING:
    from ..training.loop import Stop, StopRule

log = logging.getLogger(__name__)
TRIAL_ENV = "MNIST_LAB_OPTUNA_TRIAL"      # the trial's id in its study's storage
STORAGE_ENV = "MNIST_LAB_OPTUNA_STORAGE"  # the storage, as :func:`open_storage` takes it
STUDY_ENV = "MNIST_LAB_OPTUNA_STUDY"      # the study's name
JOURNAL = "journal:"                      # prefix of a journal file's storage
REPORTED = "val/error"                    # the metrics column reported at every evaluation
SQLITE_WAIT_S = 60                        # how long a writer waits for sqlite's lock


class StudyRefused(UserError):
    """The study's storage cannot be opened as it is (written by an older Optuna)."""


def open_storage(storage: str | None) -> Any:
    """The Optuna storage for ``storage``: ``journal:/abs/path`` (a journal file), an RDB
    URL (``sqlite:////abs/optuna.db``, ``postgresql://...``), or None (in memory).

    A journal file's appends are guarded by Optuna's symlink lock, which is atomic on
    NFS; sqlite's own file locking is not safe there (see sqlite's "How To Corrupt").

    Raises:
        StudyRefused: an sqlite study written by an Optuna whose schema this one no
            longer reads (Optuna 2.10.1 under the old hydra-optuna-sweeper): one line
            naming ``optuna storage upgrade`` and saying to copy the file first.
    """
    import optuna

    if storage is None:
        return None
    if storage.startswith(JOURNAL):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(storage[len(JOURNAL):]))
    # parallel jobs write to one sqlite file: wait for its lock (up to a minute) rather than
    # fail with "database is locked" after SQLite's default 5 s
    engine = {"connect_args": {"timeout": SQLITE_WAIT_S}} if storage.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(storage, engine_kwargs=engine)
    except RuntimeError as error:
        if "no longer compatible with the table schema" not in str(error):
            raise
        written_by = str(error).partition("(set up by ")[2].partition(")")[0] or "an older Optuna"
        path = storage.removeprefix("sqlite:///")
        raise StudyRefused(
            f"The study in {path} was written by {written_by}, whose schema Optuna "
            f"{optuna.__version__} reads only after a one-way upgrade: copy the file first "
            f"(cp {path} {path}.bak), then run: optuna storage upgrade --storage {storage}"
        ) from None


class PruneOnReport:
    """A training stop rule (:class:`mnist_lab.training.loop.StopRule`) for one trial.

    After every evaluation, each ``val/error`` row not yet reported is reported to the
    trial at its training step (a resumed or requeued job skips the steps it reported
    before it stopped: Optuna keeps the first value of a step), then the study's pruner
    is asked; when it says prune, training ends with status ``pruned``.
    """

    def __init__(self, trial: Any, reported: set[int], pruner: str, study_name: str) -> None:
        self.trial, self.reported = trial, set(reported)
        self.pruner, self.study_name = pruner, study_name

    def check(self, rows: list[dict[str, float]]) -> "Stop | None":
        from ..record.folder import Status
        from ..training.loop import Stop

        for row in rows:
            step, value = int(row["step"]), float(row[REPORTED])
            if step not in self.reported and math.isfinite(value):
                self.trial.report(value, step)
                self.reported.add(step)
        if not rows or not self.trial.should_prune():
            return None
        last = rows[-1]
        return Stop(Status.PRUNED, f"pruned by the {self.pruner} pruner of Optuna study "
                                   f"'{self.study_name}' (trial {self.trial.number}): "
                                   f"{REPORTED} {last[REPORTED]:.4f} at step {int(last['step'])}")


def trial_stop_rules(sweeper: Any) -> Sequence["StopRule"]:
    """The stop rules of a sweep job: :class:`PruneOnReport` when the Optuna sweeper
    handed this job a trial (see the module's docstring), else none.

    ``sweeper``: the job's ``hydra.sweeper`` config; its ``pruner`` is built here, as the
    study's pruner is not kept in its storage. A trial that already finished (its
    sweep told the study while the job was away) is not reported to.

    Raises:
        UserError: the environment names a trial but the study cannot be opened.
    """
    trial_id = os.environ.get(TRIAL_ENV)
    if not trial_id:
        return []
    import optuna
    from hydra.utils import instantiate

    pruner_cfg = sweeper.get("pruner") if sweeper is not None else None
    if pruner_cfg is None:
        return []
    pruner = instantiate(pruner_cfg)
    name = os.environ.get(STUDY_ENV, "")
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(os.environ[STORAGE_ENV]),
                                  pruner=pruner, sampler=optuna.samplers.RandomSampler())
        trial = optuna.trial.Trial(study, int(trial_id))
    except (KeyError, ValueError) as error:
        raise UserError(f"This sweep job's Optuna trial {trial_id} of study '{name}' cannot be "
                        f"opened ({error}): run the sweep again with the same "
                        "hydra.sweep.dir.") from None
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
    if frozen.state.is_finished():
        log.info("Optuna trial %d is already %s: not reported to.", trial.number,
                 frozen.state.name)
        return []
    return [PruneOnReport(trial, set(frozen.intermediate_values), pruner_label(pruner_cfg), name)]


def pruner_label(pruner_cfg: Any) -> str:
    """``MedianPruner`` → ``median``: the pruner's name as its config group names it."""
    target = str(pruner_cfg.get("_target_", "")).rsplit(".", 1)[-1]
    names = {"MedianPruner": "median", "PercentilePruner": "percentile",
             "SuccessiveHalvingPruner": "successive_halving", "HyperbandPruner": "hyperband",
             "NopPruner": "none"}
    return names.get(target, target)


def sweep_folder_storage(kind: str, sweep_dir: Path) -> str:
    """The storage of a study kept in the sweep folder: ``sqlite`` → ``optuna.db``,
    ``journal`` → ``optuna.journal`` (absolute, so that every job finds it)."""
    folder = Path(sweep_dir).absolute()
    return f"sqlite:///{folder / 'optuna.db'}" if kind == "sqlite" else \
        f"{JOURNAL}{folder / 'optuna.journal'}"
