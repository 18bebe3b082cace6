"""Where a run computes: the device, CPU threads, determinism, stop signals, and the
SLURM job it runs in (what SLURM tells a job in its environment, ``SLURM_*``; the
``sbatch`` manual, "OUTPUT ENVIRONMENT VARIABLES").

Torch is imported only where needed, so that sweepers can use the thread rules
without paying for it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import ConfigError, UserError

if TYPE_CHECKING:
    import torch

THREADS_ENV = "MNIST_LAB_NUM_THREADS"  # a sweep job's share of the cores, set by the sweeper
CUBLAS_WORKSPACE = ":4096:8"  # deterministic cuBLAS needs it (CUDA docs, "Results reproducibility")


def resolve_device(name: str, key: str = "trainer.device") -> "torch.device":
    """``trainer.device`` → a torch device: ``auto`` is CUDA when present, else CPU.

    Args:
        name: auto, cpu, cuda or cuda:N. key: the setting's name, for the message.

    Raises:
        ConfigError: an unknown device, or CUDA asked for where no such GPU exists.
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(key, name, "must be auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        count = torch.cuda.device_count()
        index = device.index or 0
        if index >= count:
            raise ConfigError(
                key, name,
                f"no such CUDA device here ({count} GPU(s) visible to torch "
                f"{torch.__version__}, CUDA build {torch.version.cuda})",
                "Use cpu or auto.",
            )
    return device


def device_name(device: "torch.device") -> str:
    """The device's name for the record: the GPU's model (``NVIDIA H100 80GB HBM3``) or ``cpu``."""
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


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

    In a sweep of mnist_lab's sweepers: the share they computed for this job
    (``MNIST_LAB_NUM_THREADS``: the cores divided by the jobs running at once,
    see :func:`mnist_lab.sweeps.plumbing.thread_shares`). In a SLURM job, the CPUs
    it was given (``SLURM_CPUS_PER_TASK``, from ``hydra.launcher.cpus_per_task``),
    which a cluster without CPU binding does not show in the affinity mask.
    Otherwise the cores this process may use (its affinity mask), and no more
    than ``OMP_NUM_THREADS`` where set. Measured here: two processes of two threads
    each on two cores ran up to 6x slower than one thread each.
    """
    cores = usable_cores()
    share = _positive_int_env(THREADS_ENV)
    if share:
        return min(cores, share)
    allocated = _positive_int_env("SLURM_CPUS_PER_TASK") or cores
    return min(allocated, _positive_int_env("OMP_NUM_THREADS") or allocated)


def configure_threads(num_threads: int | None) -> int:
    """Set torch's intra-op threads to ``num_threads`` (null: the default share); return it."""
    import torch

    threads = num_threads or default_num_threads()
    torch.set_num_threads(threads)
    return threads


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """``trainer.deterministic``: deterministic kernels on every device, for the block.

    Turns on ``torch.use_deterministic_algorithms(True)`` (an operation without a
    deterministic implementation then raises instead of running), cuDNN's
    deterministic mode with its auto-tuner off, and sets
    ``CUBLAS_WORKSPACE_CONFIG`` (unless the user set it) before CUDA starts, as
    PyTorch's reproducibility notes require for cuBLAS on CUDA 10.2 and later.
    The previous settings are restored afterwards. With ``enabled`` false,
    nothing changes.
    """
    if not enabled:
        yield
        return
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1:]


class JobRequeued(SystemExit):
    """The job was requeued (by submitit, after a checkpoint) and this process exits.

    A ``SystemExit``, as submitit's requeue ends the process with ``sys.exit``;
    the run's record says ``requeued`` and the requeued job resumes it.
    """


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps.

    Also SIGUSR2 when a Python handler is already installed for it: submitit's,
    which SLURM triggers ``hydra.launcher.signal_delay_s`` before a job's time
    limit (some clusters also at a preemption; others send SIGTERM, and SLURM
    requeues the job itself). That handler checkpoints the job's
    callable and requeues the job; here it is deferred to the next step
    boundary and called by :meth:`hand_over` after the run's checkpoint.

    A second Ctrl-C interrupts at once (the default handler is back by then).
    Only installed in the main thread (signal handlers can only live there).
    """

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
            if callable(signal.getsignal(signal.SIGUSR2)):  # submitit's requeue handler
                self._previous[signal.SIGUSR2] = signal.signal(signal.SIGUSR2, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = signal.Signals(signum).name
        signal.signal(signum, self._previous[signum])  # the next one is not deferred

    def hand_over(self, step: int) -> None:
        """After the checkpoint: let the deferred handler act, or raise KeyboardInterrupt.

        Raises:
            JobRequeued: submitit requeued the job (its handler called ``sys.exit``).
            KeyboardInterrupt: any other stop request.
        """
        signum = signal.Signals[self.requested] if self.requested else None
        handler = self._previous.get(signum) if signum == signal.SIGUSR2 else None
        if callable(handler):
            self.__exit__()
            try:
                handler(signum, None)
            except SystemExit as exit_:
                raise JobRequeued(f"requeued by SLURM ({self.requested}: time limit or "
                                  f"preemption) at step {step}") from exit_
        raise KeyboardInterrupt(f"stopped by {self.requested} at step {step}")

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def slurm_job() -> dict[str, str] | None:
    """This process's SLURM job, for ``summary.json``; None outside a SLURM job.

    Returns:
        ``{"job_id", "node", "restarts"}`` (``job_id`` as ``squeue -j`` takes it:
        ``<array job>_<task>`` for an array task, as submitit names its folders;
        ``restarts``: how often SLURM requeued it, ``SLURM_RESTART_COUNT``).
    """
    env = os.environ
    if "SLURM_JOB_ID" not in env:
        return None
    array, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    return {"job_id": f"{array}_{task}" if array and task else env["SLURM_JOB_ID"],
            "node": env.get("SLURMD_NODENAME", socket.gethostname()),
            "restarts": env.get("SLURM_RESTART_COUNT", "0")}


def check_data_visible(root: str | Path) -> None:
    """Fail fast when a SLURM job's data root does not exist on its node.

    ``data.root`` is resolved on the submitting host; on a cluster it must be
    on a filesystem that every compute node mounts at the same path. Outside a
    SLURM job nothing is checked here (a missing root may be downloaded into).

    Raises:
        UserError: in a SLURM job, ``root`` is not a directory on this node.
    """
    job = slurm_job()
    if job is None or Path(root).is_dir():
        return
    raise UserError(
        f"data.root '{root}' does not exist on node {job['node']} (SLURM job "
        f"{job['job_id']}). Jobs read the data root resolved on the submitting host: it "
        "must be on a filesystem shared with the compute nodes (the same path on every "
        "node). Put MNIST there, or set data.root (or MNIST_LAB_DATA) to a shared folder."
    )
