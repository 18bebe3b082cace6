"""Where a run computes: the device and the number of CPU threads.

Torch is imported only where needed, so that sweepers can use the thread rules
without paying for it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    import torch

JOBS_AT_ONCE_ENV = "MNIST_LAB_JOBS_AT_ONCE"


def resolve_device(name: str) -> "torch.device":
    """``trainer.device`` → a torch device: ``auto`` is CUDA when present, else CPU.

    Raises:
        ConfigError: ``cuda`` (or ``cuda:N``) asked for where no such GPU exists.
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count()
        index = device.index or 0
        if index >= count:
            raise ConfigError(
                "trainer.device", name,
                f"no such CUDA device here ({count} GPU(s) visible to torch "
                f"{torch.__version__}, CUDA build {torch.version.cuda})",
                "Use trainer.device=cpu or trainer.device=auto.",
            )
    return device


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a SLURM allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _positive_int_env(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def default_num_threads() -> int:
    """This job's share of the cores: used when ``trainer.num_threads`` is null.

    The smallest of: the cores this process may use; ``OMP_NUM_THREADS`` where
    set (joblib sets it to cores ÷ workers for its workers); and cores ÷ the jobs
    a sweep runs at once (``MNIST_LAB_JOBS_AT_ONCE``, set by mnist_lab's sweepers).
    Measured here: two processes of two threads each on two cores ran up to 6x
    slower than one thread each, so oversubscription is worth avoiding.
    """
    cores = usable_cores()
    candidates = [cores]
    omp = _positive_int_env("OMP_NUM_THREADS")
    if omp:
        candidates.append(omp)
    jobs = _positive_int_env(JOBS_AT_ONCE_ENV)
    if jobs:
        candidates.append(max(1, cores // jobs))
    return max(1, min(candidates))


def configure_threads(num_threads: int | None) -> int:
    """Set torch's intra-op threads to ``num_threads`` (null: the default share); return it."""
    import torch

    threads = num_threads or default_num_threads()
    torch.set_num_threads(threads)
    return threads
