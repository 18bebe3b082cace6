"""One live run per run directory, and a heartbeat that tells live runs from lost ones.

The lock is a file in the run directory (``run.lock``, named by
:mod:`mnist_lab.record.folder`) created only if absent, atomically, also on NFS (v3
and later), where SLURM jobs run (:func:`~mnist_lab.record.atomic.create_exclusively`).
It holds the holder's host, pid, a random token,
the heartbeat interval and the last heartbeat (Unix time, seconds). While the
run lives, a thread rewrites the heartbeat every interval.

A holder is **lost** (and its lock stale) when its heartbeat is older than
:data:`MISSED_BEATS` (3) intervals, or, seen from the same host, when its
process no longer exists. A stale lock is taken over: a second process that
finds a live holder is refused (:class:`RunDirBusy`), so two runs never write
one record, and a run killed outright (``kill -9``, a node failure) never
leaves its directory locked for good. Readers of a record use the same rule to
show a ``running`` run whose holder is gone as ``lost``.

A lock file that cannot be read (damaged, or of the wrong shape) is stale once it
is :data:`TAKEOVER_TIMEOUT_S` old. A run whose lock is no longer its own (another
token, or no lock at all: it was frozen for three intervals, a suspended job or a
stalled NFS mount, and a run that took over may even have finished) exits at once
with :data:`EXIT_TAKEN_OVER`, writing nothing more: the run that took the directory
over owns its record. It checks in its heartbeat thread and, through
:meth:`RunLock.check_held`, right before each write of its record, since after a
SIGCONT the main thread may write before the heartbeat thread wakes.

Torch-free, so ``run.py`` and the readers (compare, sweep summaries) stay fast.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import math

from .atomic import create_exclusively, replace_atomically
from ..errors import UserError

log = logging.getLogger(__name__)
MISSED_BEATS = 3  # a heartbeat older than this many intervals means the holder is lost
TAKEOVER_TIMEOUT_S = 60.0  # a guard or unreadable lock older than this: left by a dead process
EXIT_TAKEN_OVER = 75  # exit status of a run whose lock another run took over (EX_TEMPFAIL)


class RunDirBusy(UserError):
    """Another live run holds the run directory; nothing of its record was touched."""


@dataclass(frozen=True)
class Holder:
    """What a lock file says about the process that holds it.

    Attributes:
        host: hostname. pid: process id on that host. token: random, unique per lock.
        interval_s: seconds between heartbeats. heartbeat: Unix time (s) of the last one.
        started: Unix time (s) the lock was taken.
    """

    host: str
    pid: int
    token: str
    interval_s: float
    heartbeat: float
    started: float

    def age_s(self, now: float | None = None) -> float:
        """Seconds since the last heartbeat."""
        return (time.time() if now is None else now) - self.heartbeat

    def is_lost(self, now: float | None = None) -> bool:
        """The holder is gone: heartbeat too old, or (same host) its process has ended."""
        if self.age_s(now) > MISSED_BEATS * self.interval_s:
            return True
        return self.host == socket.gethostname() and not _pid_alive(self.pid)

    def describe(self, now: float | None = None) -> str:
        """``pid 123 on host node1, last heartbeat 4 s ago``."""
        return (f"pid {self.pid} on host {self.host}, last heartbeat "
                f"{self.age_s(now):.0f} s ago")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _holder(text: str) -> Holder | None:
    """The holder a lock file's text names; None unless it has every field, of its type."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    types = {"host": str, "pid": int, "token": str, "interval_s": (int, float),
             "heartbeat": (int, float), "started": (int, float)}
    if not isinstance(data, dict) or set(data) != set(types) or any(
            isinstance(data[k], bool) or not isinstance(data[k], t) for k, t in types.items()):
        return None
    if not all(math.isfinite(data[k]) for k in ("interval_s", "heartbeat", "started")) \
            or data["interval_s"] <= 0:
        return None
    return Holder(**data)


def read_holder(lock_path: str | Path) -> Holder | None:
    """The holder named by the lock file; None when absent, unreadable or of the wrong shape."""
    try:
        return _holder(Path(lock_path).read_text())
    except OSError:
        return None


def _age_s(path: Path) -> float:
    """Seconds since ``path`` was last modified; 0 when it is gone."""
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _remove_if_stale(path: Path, judged: Holder | None) -> None:
    """Remove a stale lock, unless someone else is taking it over or it changed.

    A guard file created only if absent makes one process at a time do this, so of
    two processes that find the same stale lock, one takes it and the other is
    refused.
    """
    guard = path.with_name(path.name + ".takeover")
    if not create_exclusively(guard, f"{socket.gethostname()} {os.getpid()}"):
        if _age_s(guard) > TAKEOVER_TIMEOUT_S:
            guard.unlink(missing_ok=True)  # left by a process that died mid-takeover
        return
    try:
        if read_holder(path) == judged:
            path.unlink(missing_ok=True)
    finally:
        guard.unlink(missing_ok=True)


class RunLock:
    """The lock of one run directory, with its heartbeat thread.

    Use as a context manager around everything a run writes::

        with RunLock(RunRecord(run_dir).lock_path, interval_s=30):
            ...  # train, write the record

    Args:
        lock_path: the lock file (its folder, the run directory, is created if missing).
        interval_s: seconds between heartbeats (> 0).

    Raises:
        RunDirBusy: (on enter) another live run holds the directory.
    """

    def __init__(self, lock_path: str | Path, interval_s: float) -> None:
        self.path = Path(lock_path)
        self.interval_s = float(interval_s)
        self.holder: Holder | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock (taking over a stale one) and start the heartbeat."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        now = time.time()
        mine = Holder(socket.gethostname(), os.getpid(), secrets.token_hex(8), self.interval_s,
                      now, now)
        for _ in range(3):
            if create_exclusively(self.path, json.dumps(asdict(mine))):
                break
            current = read_holder(self.path)
            if current is None and _age_s(self.path) > TAKEOVER_TIMEOUT_S:
                log.warning("Removing %s: unreadable and %.0f s old (damaged, or left by a "
                            "process that died).", self.path, _age_s(self.path))
                _remove_if_stale(self.path, None)
                continue
            if current is None:  # just released, or damaged: look again
                time.sleep(0.1)
                continue
            if not current.is_lost():
                raise self._busy(current) from None
            log.warning("Taking over %s from a lost run (%s).", self.path, current.describe())
            _remove_if_stale(self.path, current)
        else:
            raise self._busy(read_holder(self.path))
        self.holder = mine
        self._thread = threading.Thread(target=self._beat, name="run-heartbeat", daemon=True)
        self._thread.start()

    def _busy(self, holder: Holder | None) -> RunDirBusy:
        who = holder.describe() if holder else (
            f"another process; its lock cannot be read, and is taken over once "
            f"{TAKEOVER_TIMEOUT_S:.0f} s old, or delete it if no run uses this folder")
        return RunDirBusy(
            f"'{self.path.parent}' is in use by another run ({who}); refusing to write "
            "into it. Wait for that run to end, or choose another directory "
            "(hydra.run.dir=..., or a new hydra.sweep.dir for a sweep). A run that was "
            f"killed is taken over once its heartbeat is {MISSED_BEATS} intervals old."
        )

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.beat()
            except OSError as error:  # a full disk, an NFS hiccup: try again next time
                log.warning("Heartbeat of %s not written (%s); retrying in %.0f s.",
                            self.path, error, self.interval_s)

    def holds(self) -> bool:
        """Whether the lock file is still this run's (the same token).

        No lock file, or one naming another holder or none, means another run took
        the folder over (and may have finished since).

        Raises:
            OSError: the lock cannot be read for another reason (an I/O error): not
                taken for a takeover.
        """
        assert self.holder is not None
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return False
        current = _holder(text)
        return current is not None and current.token == self.holder.token

    def check_held(self) -> None:
        """Exit at once, writing nothing more, unless the lock is still this run's.

        Called right before each write of the run's record (and by the heartbeat).
        """
        if not self.holds():
            self.on_taken_over(read_holder(self.path))

    def beat(self) -> None:
        """Rewrite the heartbeat now (atomically), if the lock is still this run's.

        When it is not (another token, or no lock), this process exits at once
        (:data:`EXIT_TAKEN_OVER`): the run that took over owns the record.
        """
        beaten = Holder(**{**asdict(self.holder), "heartbeat": time.time()})
        text = json.dumps(asdict(beaten))
        replace_atomically(self.path, lambda tmp: tmp.write_text(text), guard=self.check_held)
        self.holder = beaten

    def on_taken_over(self, current: Holder | None) -> None:
        """Exit now, writing nothing more: another run owns the run directory."""
        by = f"taken over by {current.describe()}" if current else \
            "removed (a run that took it over has finished)"
        log.error("%s was %s while this run was silent for %.0f s; that run owns the record "
                  "now, so this run exits without writing more (exit %d).", self.path, by,
                  time.time() - self.holder.heartbeat, EXIT_TAKEN_OVER)
        logging.shutdown()
        os._exit(EXIT_TAKEN_OVER)

    def release(self) -> None:
        """Stop the heartbeat and remove the lock, if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.holder is not None and read_holder(self.path) == self.holder:
            self.path.unlink(missing_ok=True)
        self.holder = None
