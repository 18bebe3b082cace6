"""Deciding whether a run starts fresh or continues from its checkpoint.

``trainer.resume=RUN_DIR`` (or ``true`` with ``hydra.run.dir=RUN_DIR``) continues
that run *as it was configured*: every setting comes from its checkpoint, except
the ``trainer.*`` and ``logger.*`` keys the resuming command names (say more
epochs, another device). A sweep job re-launched into its own directory (a
resumed sweep) continues from its checkpoint when its overrides are the same.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from ..record.checkpoint import Checkpoint
from ..config.schema import Config
from ..config.resolvers import resume_path, wants_resume
from ..errors import ConfigError, UserError
from ..record.folder import RecordError, RunRecord, same_overrides
from ..config.settings import settings_from_container, upgrade
from ..config.trust import Trust

RUNTIME_KEYS = ("trainer", "logger")  # may change when a run is resumed
# Where the data is, not what the run is: may change on resume; the dataset checks the
# files there against MNIST's published sizes and MD5s (mnist_lab.data.integrity) before training.
DATA_LOCATION_KEYS = ("data.root", "data.download")


class RunDirTaken(UserError):
    """A fresh run was pointed at a directory that holds another run's record."""


def _resume_target(record: RunRecord, resume: Any) -> RunRecord:
    """The run to resume, which must hold a checkpoint and be the directory in use."""
    path = resume_path(resume)
    target = RunRecord(path) if path else record
    if not target.has_checkpoint():
        where = (f"'{path}' holds no checkpoint.pt (no such run, or it stopped before its "
                 "first checkpoint)" if path else
                 f"the directory in use, '{record.dir}', holds no checkpoint.pt")
        raise UserError(
            f"trainer.resume={resume}: {where}. Give the directory of the run to continue, "
            "e.g. trainer.resume=outputs/2026-11-29/10-15-02_123456 (or hydra.run.dir=RUN_DIR "
            "trainer.resume=true)."
        )
    if target.dir.resolve() != record.dir.resolve():
        raise UserError(f"trainer.resume={resume} but hydra.run.dir={record.dir}: give one of "
                        "them, the run's directory.")
    return target


def check_start(record: RunRecord, resume: Any, multirun: bool,
                overrides: list[str]) -> Checkpoint | None:
    """Return the checkpoint to resume from, or None to start fresh.

    Raises:
        UserError: resuming where there is no checkpoint; RunDirTaken: a fresh
            start in a directory that holds another run's record (never overwritten).
    """
    if wants_resume(resume):
        return _resume_target(record, resume).load_checkpoint()
    try:
        recorded = (record.read_summary() or {}).get("overrides")
    except RecordError:  # a damaged summary: Hydra's copy of the run's overrides tells
        recorded = record.overrides() or None
    own = multirun and same_overrides(recorded, overrides)
    if own and record.has_checkpoint():
        return record.load_checkpoint()  # a re-launched sweep job continues
    if record.has_record() and not own:
        hint = ("This sweep directory was made by a different sweep: give a new "
                "hydra.sweep.dir." if multirun else
                "Continue it with trainer.resume=true, or choose another hydra.run.dir.")
        raise RunDirTaken(f"'{record.dir}' already holds the record of a run "
                          f"(overrides {recorded}); refusing to overwrite it. "
                          + hint)
    return None


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node) if OmegaConf.is_config(node) else node


def resumed_settings(current: Config, checkpoint: Checkpoint, task_overrides: list[str],
                     run_overrides: list[str], trust: Trust, source: str) -> Config:
    """The settings of a resumed run: the checkpoint's, and what the command changes.

    Only ``trainer.*``, ``logger.*`` (or another ``logger=`` option),
    ``data.root`` and ``data.download`` may be changed (a new data root must
    hold files with MNIST's published MD5s, which loading the data checks), and
    only the keys the command names: a run started with
    ``trainer.max_steps=600`` keeps that cap when resumed without it. A preset
    (``experiment=...``) may be named only as the run was started with it
    (``run_overrides``, the run's own).

    The checkpoint's config is untrusted input (``source`` names its file): the
    classes it names must be trusted (``trust``: mnist_lab's own, the command's own
    config, or ``MNIST_LAB_TRUST``) before anything is imported.

    Raises:
        ConfigError: the command overrides a key outside ``trainer``/``logger``
            with a value different from the run's, or names another preset.
        UserError: the saved config is damaged or names a class that is not trusted.
    """
    if not isinstance(checkpoint.config, dict):
        raise UserError(f"{source} holds no mnist_lab config: the file is damaged.")
    mine, saved = OmegaConf.structured(current), OmegaConf.create(upgrade(checkpoint.config))
    for override in task_overrides:
        key = override.lstrip("+~").partition("=")[0]
        if key == "experiment":
            _check_preset(override, run_overrides)
        if key in ("hydra", "experiment") or key.startswith("hydra."):
            continue
        value = _plain(OmegaConf.select(mine, key, default=None))
        if key.split(".")[0] in RUNTIME_KEYS or key in DATA_LOCATION_KEYS:
            OmegaConf.update(saved, key, value, merge=False, force_add=True)
            continue
        theirs = _plain(OmegaConf.select(saved, key, default=None))
        if value != theirs:
            raise ConfigError(
                key, value, f"a resumed run keeps its own settings (this run has {theirs!r})",
                "Only trainer.*, logger.*, data.root and data.download may change on "
                "resume; for other settings start a new run.",
            )
    return settings_from_container(OmegaConf.to_container(saved), trust, source)


def _check_preset(override: str, run_overrides: list[str]) -> None:
    """A resume may name the run's own preset, no other (a preset sets the model)."""
    own = [o for o in run_overrides if o.lstrip("+~").startswith("experiment=")]
    if override.lstrip("+~") not in [o.lstrip("+~") for o in own]:
        key, _, value = override.lstrip("+~").partition("=")
        raise ConfigError(
            key, value, f"a resumed run keeps its own settings (this run was started with "
            f"{own[0] if own else 'no preset'})",
            "Leave the preset out when resuming; for another preset start a new run.")


def describe(checkpoint: Checkpoint, schedule: Any, total_steps: int) -> str:
    """One line for the log: where the resumed run stands, and a stretched schedule
    (``schedule``: the run's :class:`~mnist_lab.training.schedules.Schedule`)."""
    line = f"resuming from step {checkpoint.step} (checkpoint of {checkpoint.saved_at})"
    before = checkpoint.loop.get("total_steps")
    if type(schedule).__name__ != "Constant" and before and before != total_steps:
        line += (f"; the run now has {total_steps} steps instead of {before}, and its "
                 f"{type(schedule).__name__} learning-rate schedule is stretched to match")
    return line
