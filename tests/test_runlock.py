"""One live run per directory, and lost runs: real processes, real kills."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import REPO, run_py, wait_for
from mnist_lab.compare import main as compare_main
from mnist_lab.record.folder import LOCK, RunRecord
from mnist_lab.record.lock import (EXIT_TAKEN_OVER, TAKEOVER_TIMEOUT_S, RunDirBusy, RunLock,
                               read_holder)
from mnist_lab.sweeps.summary import write_summary

HOLD = ("import sys, time; from mnist_lab.record.lock import RunLock; "
        "RunLock(sys.argv[1], float(sys.argv[2])).acquire(); print('held', flush=True); "
        "time.sleep(600)")


def hold_lock(run_dir, interval_s=30.0):
    """Another process that takes the lock of ``run_dir`` and keeps it."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir / LOCK), str(interval_s)],
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.slow
def test_a_live_holder_keeps_the_lock_and_a_killed_one_loses_it(tmp_path):
    holder = hold_lock(tmp_path)
    try:
        with pytest.raises(RunDirBusy, match=rf"in use by another run \(pid {holder.pid} on host"):
            RunLock(tmp_path / LOCK, 30).acquire()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path / LOCK, 30) as lock:  # a dead holder on this host: taken over at once
        assert read_holder(tmp_path / LOCK) == lock.holder and lock.holder.pid == os.getpid()
    assert not (tmp_path / LOCK).exists(), "released"


def write_foreign_lock(run_dir, heartbeat_age_s, interval_s=1.0):
    now = time.time()
    (run_dir / LOCK).write_text(json.dumps({
        "host": "another-node", "pid": 1, "token": "x", "interval_s": interval_s,
        "heartbeat": now - heartbeat_age_s, "started": now - 100}))


def test_a_lock_from_another_host_is_taken_over_only_when_its_heartbeat_is_stale(tmp_path):
    write_foreign_lock(tmp_path, heartbeat_age_s=2.5)  # 2.5 beats late: still alive
    with pytest.raises(RunDirBusy, match="another-node"):
        RunLock(tmp_path / LOCK, 1).acquire()
    write_foreign_lock(tmp_path, heartbeat_age_s=3.5)  # more than 3 beats late: lost
    with RunLock(tmp_path / LOCK, 1) as lock:
        assert read_holder(tmp_path / LOCK).host == lock.holder.host != "another-node"


def test_the_heartbeat_is_rewritten_every_interval(tmp_path):
    with RunLock(tmp_path / LOCK, 0.2) as lock:
        first = read_holder(tmp_path / LOCK).heartbeat
        wait_for(lambda: read_holder(tmp_path / LOCK).heartbeat > first + 0.3, timeout=10,
                 what="two heartbeats")
        assert read_holder(tmp_path / LOCK).token == lock.holder.token


def test_an_empty_lock_left_by_a_dead_writer_is_taken_over_once_old(tmp_path):
    (tmp_path / LOCK).write_text("")  # died between creating the file and writing it
    with pytest.raises(RunDirBusy, match="another process"):
        RunLock(tmp_path / LOCK, 1).acquire()  # young: perhaps being written right now
    old = time.time() - TAKEOVER_TIMEOUT_S - 1
    os.utime(tmp_path / LOCK, (old, old))
    with RunLock(tmp_path / LOCK, 1) as lock:
        assert read_holder(tmp_path / LOCK) == lock.holder


@pytest.mark.slow
def test_a_run_whose_lock_was_taken_over_exits_writing_nothing_more(tmp_path):
    holder = hold_lock(tmp_path, interval_s=0.2)
    try:
        write_foreign_lock(tmp_path, heartbeat_age_s=0)  # as a takeover would leave it
        assert holder.wait(timeout=30) == EXIT_TAKEN_OVER
    finally:
        holder.kill()
    assert read_holder(tmp_path / LOCK).host == "another-node"


RUN = ["trainer.eval_every=50", "trainer.checkpoint_every=50", "optimizer.lr=0.01",
       "trainer.progress=false", "logger=none"]


@pytest.mark.slow
def test_a_second_run_into_a_busy_directory_is_refused_and_changes_nothing(tmp_path):
    run_dir = tmp_path / "same"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = run_py("seed=0", "trainer.max_steps=1000", *RUN, f"hydra.run.dir={run_dir}",
                   cwd=tmp_path, env=env, popen=True)
    wait_for(lambda: (run_dir / LOCK).exists() or first.poll() is not None, what="lock")
    second = run_py("seed=1", "trainer.max_steps=200", *RUN, f"hydra.run.dir={run_dir}",
                    cwd=tmp_path, env=env, timeout=300)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-3000:]
    assert second.returncode == 2, second.stderr[-3000:]
    assert "in use by another run" in second.stderr and "Traceback" not in second.stderr
    record = RunRecord(run_dir)
    assert [r["step"] for r in record.read_metrics()] == list(range(50, 1001, 50))
    assert record.read_summary()["overrides"][0] == "seed=0"
    assert yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())[0] == "seed=0"
    assert [p.name for p in (run_dir / ".hydra").iterdir() if p.is_dir()] == []


@pytest.mark.slow
def test_a_killed_run_is_shown_as_lost_with_how_to_resume_it(tmp_path, capsys):
    run_dir = tmp_path / "killed"
    run = run_py("trainer.max_steps=600", "trainer.heartbeat_s=1", *RUN,
                 f"hydra.run.dir={run_dir}", cwd=tmp_path, popen=True,
                 env={**os.environ, "OMP_NUM_THREADS": "1"})
    record = RunRecord(run_dir)
    wait_for(lambda: len(record.read_metrics()) >= 2 or run.poll() is not None, what="2 rows")
    assert record.status() == "running"
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert record.read_summary()["status"] == "running"  # what the dead process left
    assert record.status() == "lost"  # same host, process gone: lost at once
    holder = read_holder(run_dir / LOCK)
    holder_elsewhere = holder.__class__(**{**holder.__dict__, "host": "another-node"})
    assert not holder_elsewhere.is_lost(now=holder.heartbeat + 2.9)  # seen from another host
    assert holder_elsewhere.is_lost(now=holder.heartbeat + 3.1)  # after 3 missed beats
    assert compare_main([str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert " lost " in out and f"python run.py trainer.resume={run_dir}" in out
    write_summary(tmp_path)
    assert "| lost |" in (tmp_path / "sweep_summary.md").read_text()
    resumed = run_py(f"trainer.resume={run_dir}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert record.status() == "completed" and not (run_dir / LOCK).exists()


def test_a_lock_is_held_only_while_it_names_this_run(tmp_path):
    with RunLock(tmp_path / LOCK, 30) as lock:
        assert lock.holds()
        (tmp_path / LOCK).unlink()  # the run that took over has finished and released it
        assert not lock.holds()
        write_foreign_lock(tmp_path, heartbeat_age_s=0)
        assert not lock.holds()


@pytest.mark.parametrize("content", [
    '{"host": 1, "pid": "x", "token": 2, "interval_s": "s", "heartbeat": [], "started": {}}',
    '{"host": "h", "pid": true, "token": "t", "interval_s": 1, "heartbeat": 1, "started": 1}',
    '{"host": "h", "pid": 1, "token": "t", "interval_s": 0, "heartbeat": 1, "started": 1}',
    '[]', 'null', '{"host": "h"}'])
def test_a_lock_of_the_wrong_shape_is_unreadable_not_a_crash(tmp_path, content):
    (tmp_path / LOCK).write_text(content)
    assert read_holder(tmp_path / LOCK) is None
    with pytest.raises(RunDirBusy, match="its lock cannot be read"):
        RunLock(tmp_path / LOCK, 1).acquire()  # young: one line, not a traceback
    old = time.time() - TAKEOVER_TIMEOUT_S - 1
    os.utime(tmp_path / LOCK, (old, old))
    with RunLock(tmp_path / LOCK, 1) as lock:
        assert read_holder(tmp_path / LOCK) == lock.holder


def record_files(run_dir):
    names = ("checkpoint.pt", "best.pt", "weights_history.pt", "summary.json", "metrics.csv")
    return {name: (run_dir / name).read_bytes() for name in names}


@pytest.mark.slow
def test_a_frozen_run_that_wakes_after_its_successor_finished_writes_nothing(tmp_path):
    """Run A is frozen (SIGSTOP) past 3 heartbeats; run B takes its folder over with
    trainer.resume, finishes and releases the lock; A wakes (SIGCONT) and must exit 75
    before writing anything, however soon its main thread gets to a write."""
    run_dir = tmp_path / "frozen"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    a = run_py("trainer.max_steps=3000", "trainer.heartbeat_s=0.5", *RUN,
               f"hydra.run.dir={run_dir}", cwd=tmp_path, popen=True, env=env)
    try:
        wait_for(lambda: (run_dir / "checkpoint.pt").exists(), what="A's first checkpoint")
        os.kill(a.pid, signal.SIGSTOP)
        time.sleep(2.0)  # more than 3 heartbeats of 0.5 s
        b = run_py(f"trainer.resume={run_dir}", "trainer.max_steps=400", cwd=tmp_path, env=env)
        assert b.returncode == 0, b.stderr[-2000:]
        assert not (run_dir / LOCK).exists() and RunRecord(run_dir).status() == "completed"
        finished = record_files(run_dir)
        os.kill(a.pid, signal.SIGCONT)
        assert a.wait(timeout=120) == EXIT_TAKEN_OVER
    finally:
        a.kill()
    assert record_files(run_dir) == finished, "A wrote over B's record"
    assert [r["step"] for r in RunRecord(run_dir).read_metrics()] == list(range(50, 401, 50))
    assert "owns the record now" in a.stdout.read() + a.stderr.read()
