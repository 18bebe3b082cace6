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

from .config import Config, settings_from_container
from .errors import ConfigError, UserError
from .record import RunRecord

RUNTIME_KEYS = ("trainer", "logger")  # may change when a run is resumed


class RunDirTaken(UserError):
    """A fresh run was pointed at a directory that holds another run's record."""

    keeps_directory = True  # nothing may be written there, not even the failure


def wants_resume(resume: Any) -> bool:
    """``trainer.resume`` is true or a path."""
    return resume is True or (isinstance(resume, str) and resume.lower() != "false")


def check_start(record: RunRecord, resume: Any, multirun: bool,
                overrides: list[str]) -> dict[str, Any] | None:
    """Return the checkpoint to resume from, or None to start fresh.

    Raises:
        UserError: resuming where there is no checkpoint; or a fresh start in a
            directory that already holds a run's record (never overwrite a run).
    """
    if wants_resume(resume):
        if not record.has_checkpoint():
            raise UserError(
                f"trainer.resume={resume}: there is no checkpoint.pt in '{record.dir}' to "
                "resume. Give the directory of a run that trained for at least one "
                "checkpoint (trainer.resume=RUN_DIR), or start a new run."
            )
        return record.load_checkpoint()
    summary = record.read_summary() or {}
    if multirun and record.has_checkpoint() and summary.get("overrides") == overrides:
        return record.load_checkpoint()  # a re-launched sweep job continues
    if record.has_record() and not (multirun and summary.get("overrides") == overrides):
        raise RunDirTaken(
            f"'{record.dir}' already holds the record of a run; refusing to overwrite it. "
            "Continue it with trainer.resume=true, or choose another hydra.run.dir."
        )
    return None


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node) if OmegaConf.is_config(node) else node


def resumed_settings(current: Config, checkpoint: dict[str, Any],
                     task_overrides: list[str]) -> Config:
    """The settings of a resumed run: the checkpoint's, and what the command changes.

    Only ``trainer.*`` and ``logger.*`` (or another ``logger=`` option) may be
    changed, and only the keys the command names: a run started with
    ``trainer.max_steps=600`` keeps that cap when resumed without it.

    Raises:
        ConfigError: the command overrides a key outside ``trainer``/``logger``
            with a value different from the run's.
    """
    mine, saved = OmegaConf.structured(current), OmegaConf.create(checkpoint["config"])
    for override in task_overrides:
        key = override.lstrip("+~").partition("=")[0]
        if key in ("hydra", "experiment") or key.startswith("hydra."):
            continue
        value = _plain(OmegaConf.select(mine, key, default=None))
        if key.split(".")[0] in RUNTIME_KEYS:
            OmegaConf.update(saved, key, value, merge=False, force_add=True)
            continue
        theirs = _plain(OmegaConf.select(saved, key, default=None))
        if value != theirs:
            raise ConfigError(
                key, value, f"a resumed run keeps its own settings (this run has {theirs!r})",
                "Only trainer.* and logger.* may change on resume; for other settings "
                "start a new run.",
            )
    return settings_from_container(OmegaConf.to_container(saved))


def describe(checkpoint: dict[str, Any]) -> str:
    """One line for the log: where the resumed run stands."""
    return f"resuming from step {checkpoint['step']} (checkpoint of {checkpoint['saved_at']})"

