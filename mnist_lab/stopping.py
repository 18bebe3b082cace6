"""Stopping a run between two steps: Ctrl-C, SIGTERM, and SLURM's requeue signal.

:func:`mnist_lab.train.fit` checks :class:`StopRequest` after every step; on a
request it writes a checkpoint and calls :meth:`StopRequest.hand_over`, which
raises :class:`KeyboardInterrupt`, or lets submitit requeue a SLURM job
(:class:`JobRequeued`). Submitit's protocol (its ``SignalHandler``): SLURM sends
``SIGUSR2`` ``hydra.launcher.signal_delay_s`` seconds before the time limit;
submitit's handler pickles the job's callable, runs ``scontrol requeue`` and
ends the process with ``sys.exit``.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


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
