"""mnist_lab's entry point: train one configured run, or a sweep with ``-m``.

    python run.py                                   # the seed protocol
    python run.py 'model.depth=[8,16]' optimizer.lr=0.01
    python run.py -m 'model.depth=[4,8],[8,16]' seed=0,1
    python run.py trainer.resume=outputs/2026-11-29/10-15-02_123456

A thin adapter: composed config → typed settings → train → objective (the best
validation error, which a sweeper minimises). The work lives in ``mnist_lab``.
"""

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from mnist_lab.sweeps.callback import LAUNCH_DIR_ENV
from mnist_lab.config.settings import to_settings  # registers the schemas and resolvers
from mnist_lab.errors import RunError, UserError
from mnist_lab.config.job import JobInfo
from mnist_lab.config.resolvers import resume_path
from mnist_lab.record.folder import discard_session_files, record_failure
from mnist_lab.training.runtime import slurm_job
from mnist_lab.record.lock import RunDirBusy
from mnist_lab.sweeps.summary import refresh_summary, sweep_group
from mnist_lab.sweeps.trial import trial_stop_rules


def job_info(cfg: DictConfig) -> JobInfo:
    """The job as Hydra sees it, in plain values.

    A sweep job's relative paths start from the directory the sweep was launched
    in on the submitting host (set by the sweep's callback), wherever the job runs.
    """
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    return JobInfo(
        run_dir=hc.runtime.output_dir,
        launch_dir=os.environ.get(LAUNCH_DIR_ENV, hc.runtime.cwd) if multirun else hc.runtime.cwd,
        overrides=list(hc.overrides.task),
        multirun=multirun,
        job_num=hc.job.num if multirun else None,
        group=sweep_group(Path(hc.runtime.cwd, hc.sweep.dir),
                          hc.runtime.choices.get("sweep") or "sweep") if multirun else None,
        config=OmegaConf.to_container(cfg, resolve=True),
        hydra_subdir=hc.output_subdir,
    )


def check_mode() -> None:
    """A sweep preset (``+sweep=...``) needs ``-m``; without it Hydra would quietly run one job."""
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN and hc.sweeper.get("params"):
        preset = hc.runtime.choices.get("sweep")
        raise UserError(f"+sweep={preset} is a sweep: run it with -m "
                        f"(python run.py -m +sweep={preset} ...).")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    job = job_info(cfg)
    try:
        check_mode()
        settings = to_settings(cfg)  # value checks, before any data is read
        from mnist_lab.training.loop import RunStopped
        from mnist_lab.training.run import run_experiment

        stop_rules = trial_stop_rules(HydraConfig.get().sweeper) if job.multirun else []
        try:
            return run_experiment(settings, job, stop_rules=stop_rules)
        except RunStopped as stopped:  # pruned: its record says so, and its sweeper reads it
            if not job.multirun:
                raise
            print(f"Stopped: {stopped}", file=sys.stderr)
            return None
    except UserError as error:
        if not job.multirun:
            print(f"Error: {error}", file=sys.stderr)
            discard_session_files(job.run_dir, job.hydra_subdir, job.launch_dir)
            sys.exit(2)
        if not isinstance(error, RunDirBusy):  # the directory is another run's record
            record_failure(job.run_dir, job.overrides, error, slurm_job())
        raise
    except RunError as error:  # diverged, or the record could not be written: one line
        print(f"Error: {error}", file=sys.stderr)
        if job.multirun:
            raise
        sys.exit(1)
    except KeyboardInterrupt:
        if job.multirun:  # Hydra calls no callback now: keep the summary up to date
            refresh_summary(HydraConfig.get().sweep.dir)
        raise
    except Exception as error:
        if job.multirun:
            record_failure(job.run_dir, job.overrides, error, slurm_job())
        raise


def missing_optuna(argv: list[str]) -> str | None:
    """The one-line error for an Optuna sweep without the ``[optuna]`` extra, else None.

    Without it the sweep would stop at its first ``import optuna``, with a traceback
    that does not say what to install.
    """
    asks = any(a.lstrip("+").startswith(("sweep=optuna", "hydra/sweeper=mnist_optuna"))
               for a in argv)
    if asks and importlib.util.find_spec("optuna") is None:
        return ("Error: the Optuna sweeper needs the optuna extra: "
                "pip install -c constraints.txt -e '.[optuna]'")
    return None


def unwritable_resume(argv: list[str]) -> str | None:
    """The one-line error for a resume into a folder that cannot be written, else None.

    Hydra opens the run's log file in that folder before mnist_lab runs, and reports a
    read-only folder as "Unable to configure handler 'file'", with a traceback.
    """
    given = dict(a.lstrip("+").partition("=")[::2] for a in argv if "=" in a)
    resume = given.get("trainer.resume", "")
    folder = resume_path(resume) or (given.get("hydra.run.dir") if resume.lower() == "true"
                                     else None)
    if not folder or not Path(folder).is_dir():
        return None
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        return (f"Error: cannot resume the run in '{folder}': the folder cannot be written "
                f"({(error.strerror or str(error)).lower()}). Make it writable, or copy the "
                "run folder somewhere writable and resume the copy.")
    return None


if __name__ == "__main__":
    if error := missing_optuna(sys.argv[1:]) or unwritable_resume(sys.argv[1:]):
        print(error, file=sys.stderr)
        sys.exit(2)
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)  # the run has said how to continue; no traceback
