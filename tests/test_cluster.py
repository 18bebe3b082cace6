"""The cluster path's parts that run anywhere: the requeue signal, data roots on
resume, threads from a SLURM allocation, the NFS-safe summary lock. The same
paths on a real SLURM cluster: tests/test_slurm.py."""

import os
import shutil
import signal
import sys
import threading
import time

import pytest
import torch

from conftest import linked_root, metrics_without_time, run_training
from mnist_lab.errors import ConfigError, UserError
from mnist_lab.record.folder import RunRecord
from mnist_lab.training.runtime import default_num_threads
from mnist_lab.sweeps.summary import write_summary
from mnist_lab.training.tracking.base import Tracker

RUN = ["trainer.max_steps=240", "trainer.eval_every=40", "trainer.checkpoint_every=80",
       "optimizer.lr=0.01", "trainer.progress=false", "logger=none", "data=tiny"]


class SignalAt(Tracker):
    """Sends the process a real signal shortly after an evaluation (mid-window)."""

    def __init__(self, step, signum):
        self.step, self.signum = step, signum

    def log_evaluation(self, row, images_per_s, model):
        if row["step"] == self.step:
            threading.Timer(0.02, os.kill, (os.getpid(), self.signum)).start()


@pytest.fixture
def requeue_handler():
    """A SIGUSR2 handler like submitit's: it notes the checkpoint's step, then exits."""
    seen = []

    def handler(signum, frame):
        seen.append(torch.load(run_dir[0] / "checkpoint.pt", weights_only=True)["step"])
        sys.exit(-1)  # submitit: `scontrol requeue`, then sys.exit(-1)

    run_dir = []
    previous = signal.signal(signal.SIGUSR2, handler)
    yield run_dir, seen
    signal.signal(signal.SIGUSR2, previous)


def test_the_requeue_signal_is_handed_over_after_a_checkpoint_between_steps(
        requeue_handler, tmp_path):
    run_dir, seen = requeue_handler
    run_dir.append(tmp_path / "job")
    with pytest.raises(SystemExit, match="requeued by SLURM \\(SIGUSR2"):
        run_training(tmp_path / "job", RUN, extra_trackers=[SignalAt(120, signal.SIGUSR2)],
                     multirun=True)
    record = RunRecord(tmp_path / "job")
    assert record.read_summary()["status"] == "requeued"
    (step,) = seen  # submitit's handler ran once, when the checkpoint was there
    assert 120 < step < 240 and checkpoint(record)["step"] == step
    run_training(tmp_path / "job", RUN, multirun=True)  # the requeued job: same overrides
    run_training(tmp_path / "straight", RUN)
    straight = RunRecord(tmp_path / "straight")
    assert metrics_without_time(record.dir) == metrics_without_time(straight.dir)
    a, b = checkpoint(record)["model_state"], checkpoint(straight)["model_state"]
    assert all(torch.equal(a[k], b[k]) for k in b)
    assert record.read_summary()["status"] == "completed"


def checkpoint(record):
    return torch.load(record.dir / "checkpoint.pt", weights_only=True)


@pytest.mark.slow
def test_a_resumed_run_may_read_its_data_from_another_root_with_the_same_files(
        data_root, tmp_path):
    """The real MNIST files, linked from another root (the published MD5s decide)."""
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_training(run, [*RUN[:-1], "data=mnist"],
                     extra_trackers=[SignalAt(80, signal.SIGINT)])
    damaged = linked_root(tmp_path / "damaged", data_root, damaged="t10k-labels-idx1-ubyte")
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte' is damaged: its MD5"):
        run_training(run, [f"trainer.resume={run}", f"data.root={damaged}"])
    moved = linked_root(tmp_path / "moved", data_root)
    run_training(run, [f"trainer.resume={run}", f"data.root={moved}", "data.download=false"])
    summary = RunRecord(run).read_summary()
    assert summary["status"] == "completed" and summary["steps"] == 240
    assert summary["config"]["data"]["root"] == str(moved)
    with pytest.raises(ConfigError, match="data.val_size"):  # what the run is stays
        run_training(run, [f"trainer.resume={run}", "data.val_size=1000"])


def test_a_slurm_job_uses_the_cpus_it_was_given(monkeypatch):
    monkeypatch.delenv("MNIST_LAB_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")  # sbatch's, from cpus_per_task=1
    assert default_num_threads() == 1
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's cap still caps
    assert default_num_threads() == 2


def test_a_summary_lock_left_by_a_dead_writer_is_taken_over(short_run, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(short_run, sweep / "0")
    lock = sweep / ".summary.lock"
    lock.write_text("")
    os.utime(lock, (time.time() - 600, time.time() - 600))  # its writer died 10 min ago
    assert write_summary(sweep) == sweep / "sweep_summary.md"
    assert "1 job: 1 completed" in (sweep / "sweep_summary.md").read_text()
    assert not lock.exists(), "the lock is a file created with O_EXCL, removed after use"
