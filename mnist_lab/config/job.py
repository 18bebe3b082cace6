"""What Hydra knows about a job, as plain values (filled in by ``run.py``).

Torch-free, so ``run.py`` can build it before the config is checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


NAME_EXCLUDES = ("logger", "hydra", "sweep", "trainer.progress", "trainer.device",
                 "trainer.num_threads", "trainer.resume", "trainer.heartbeat_s", "data.root",
                 "data.download")


@dataclass(frozen=True)
class JobInfo:
    """One Hydra job.

    Attributes:
        run_dir: the job's output directory.
        launch_dir: where the command was launched; relative paths start there.
        overrides: the task overrides of this job (``hydra.overrides.task``).
        multirun: part of a sweep (``-m``). job_num: its position in the sweep.
        group: the sweep's W&B group (:func:`mnist_lab.sweeps.summary.sweep_group`); None
            for a single run.
        config: the composed config, resolved, as plain containers.
        hydra_subdir: where Hydra wrote this session's files (``hydra.output_subdir``,
            relative to ``run_dir``; ``.hydra/resumed_<time>`` for a resume).
    """

    run_dir: Path
    launch_dir: str = "."
    overrides: list[str] = field(default_factory=list)
    multirun: bool = False
    job_num: int | None = None
    group: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    hydra_subdir: str | None = None

    @property
    def run_name(self) -> str:
        """Readable and unique in a sweep: ``3-model.depth=[8,16],optimizer.lr=0.01``.

        The job number and the overrides that define the experiment (not those
        of :data:`NAME_EXCLUDES`, which only say how or where it runs).
        """
        kept = [o for o in self.overrides if not o.lstrip("+~").startswith(NAME_EXCLUDES)]
        label = ",".join(kept) or "defaults"
        return f"{self.job_num}-{label}" if self.multirun else label
