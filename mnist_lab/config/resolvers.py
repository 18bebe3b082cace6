"""Paths in the config: the run directory of a resumed run, Hydra's output subfolder,
and relative paths taken from the launch directory.

The resolvers are registered for ``conf/config.yaml`` (``hydra.run.dir`` and
``hydra.output_subdir``); :func:`anchored` fixes the meaning of relative paths
whatever ``hydra.job.chdir`` says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ..record.folder import HYDRA, RunRecord


def wants_resume(resume: Any) -> bool:
    """``trainer.resume`` is true or the path of a run."""
    return resume is True or resume_path(resume) is not None


def resume_path(resume: Any) -> str | None:
    """The run directory ``trainer.resume`` names, or None for false/true."""
    if isinstance(resume, str) and resume.strip().lower() not in ("", "true", "false"):
        return resume
    return None


def anchored(cfg: Any, launch_dir: str | Path) -> Any:
    """``cfg`` with its relative paths (``data.root``, a ``trainer.resume`` path) made
    absolute from ``launch_dir``, the directory the command was launched in.

    So a relative path means the same with ``hydra.job.chdir=true``, where the
    job runs inside its output directory, as without it. A dataset without a
    ``root`` (a user's own) has nothing to anchor.
    """
    base = Path(launch_dir).absolute()
    data = cfg.data
    if isinstance(data, dict) and isinstance(data.get("root"), str):
        data["root"] = str(base / data["root"])  # an absolute root stays itself
    elif isinstance(getattr(data, "root", None), str):
        data.root = str(base / data.root)
    if resume_path(cfg.trainer.resume):
        cfg.trainer.resume = str(base / cfg.trainer.resume)
    return cfg


def _run_dir(resume: Any, default: str) -> str:
    """``hydra.run.dir``: the run being resumed, when ``trainer.resume`` names one.

    Only a directory that holds a checkpoint is used, so that a mistyped path is
    reported without creating it or writing into an unrelated folder.
    """
    path = resume_path(resume)
    return path if path and RunRecord(path).has_checkpoint() else default


def _hydra_subdir(output_dir: str, resume: Any, started: str) -> str:
    """``hydra.output_subdir``: never overwrite the ``.hydra`` files of an existing run.

    A session in a directory that already holds a run's record, its lock or its
    Hydra files (a resumed run, a re-launched sweep job, a second command into
    a busy directory) writes its own beside them. Registered with
    ``use_cache=True``: the answer is fixed when Hydra first asks, before it
    writes, so later look-ups (a refused command removing its files) agree.
    """
    if not RunRecord(output_dir).is_occupied():
        return HYDRA
    kind = "resumed" if wants_resume(resume) else "session"
    return f"{HYDRA}/{kind}_{started}"


def register_resolvers() -> None:
    """Register the OmegaConf resolvers that ``conf/config.yaml`` uses (idempotent)."""
    OmegaConf.register_new_resolver("mnist_lab.run_dir", _run_dir, replace=True)
    OmegaConf.register_new_resolver("mnist_lab.hydra_subdir", _hydra_subdir, replace=True,
                                    use_cache=True)
