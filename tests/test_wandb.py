"""W&B tracking, read back from the real offline run files (no mocks)."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from conftest import FAST, REPO, compose_config, run_training, wait_for, wandb_run
from mnist_lab.training.tracking import wandb_files as wf
from mnist_lab.errors import UserError
from mnist_lab.record.folder import RunRecord
from mnist_lab.training.tracking.base import Tracker
from mnist_lab.training.tracking.wandb_mode import resolve_mode

WANDB = FAST + ["logger=wandb", "logger.wandb.log_images_every=2"]


def test_run_logs_what_the_record_holds(tmp_path, wandb_env):
    run_training(tmp_path, WANDB)
    run = wandb_run(tmp_path)
    rows = RunRecord(tmp_path).read_metrics()
    assert wf.history_values(run, "val/error") == [(r["step"], r["val/error"]) for r in rows]
    assert wf.history_values(run, "train/error") == [(r["step"], r["train/error"]) for r in rows]
    assert all(v > 0 for _, v in wf.history_values(run, "train/images_per_s"))
    assert run.config == OmegaConf.to_container(compose_config(WANDB), resolve=True)
    assert run.job_type == "train" and run.project == "mnist_lab" and run.exit_code == 0
    summary = RunRecord(tmp_path).read_summary()
    assert run.summary["test/error"] == summary["test/error"]
    assert run.summary["val/error"]["min"] == summary["val/best_error"]
    [model] = [a for a in run.artifacts if a["type"] == "model"]
    assert sorted(model["files"]) == ["best.pt", "checkpoint.pt"]
    assert model["metadata"]["test/final_error"] == summary["test/final_error"]
    assert model["metadata"]["test/best_checkpoint_error"] == summary["test/best_checkpoint_error"]
    # images at evaluations 0 and 2 (steps 100 and 300): uint8 grids, not blank
    steps_with_images = [s for s, _ in wf.history_values(run, "features/conv1")]
    assert steps_with_images == [100, 300]
    for key in ("features/conv1", "features/conv2", "filters/conv1"):
        for _, image in wf.history_values(run, key):
            pixels = np.asarray(Image.open(run.file_path(image["path"])))
            assert pixels.dtype == np.uint8 and pixels.std() > 20 and pixels.max() == 255
    assert "test/misclassified" in run.history[-1] and "test/confusion_matrix_table" in run.history[-1]


def test_resumed_run_continues_the_same_wandb_run(tmp_path, wandb_env):
    from test_training import RESUME, CrashAt

    overrides = [o for o in RESUME if o != "logger=none"] + ["logger=wandb"]
    with pytest.raises(RuntimeError):
        run_training(tmp_path, overrides, extra_trackers=[CrashAt(120)])
    first_id = RunRecord(tmp_path).read_tracker_state()["wandb_run_id"]
    run_training(tmp_path, overrides + ["trainer.resume=true"])
    files = wf.find_run_files(tmp_path / "wandb", first_id)
    assert len(files) == 2
    sessions = [wf.read_run(f) for f in files]
    assert sessions[0].exit_code == 1 and sessions[1].exit_code == 0
    assert sessions[1].resumed and sessions[1].run_id == first_id
    steps = [s for s, _ in wf.history_values(wf.read_runs(files), "val/error")]
    assert steps == [40, 80, 120, 160, 200, 240]  # increasing: row 120 is not logged twice


def test_logger_none_writes_no_wandb_directory(short_run):
    assert not (short_run / "wandb").exists()
    assert not (short_run / "tracker.json").exists()


def test_failing_optional_tracker_never_stops_training(tmp_path, caplog):
    class Broken(Tracker):
        closed = None

        def log_evaluation(self, row, images_per_s, model):
            raise ConnectionError("server went away")

        def close(self, exit_code):
            Broken.closed = exit_code

    run_training(tmp_path, FAST + ["logger=none"], extra_trackers=[Broken()])
    assert [r["step"] for r in RunRecord(tmp_path).read_metrics()] == [100, 200, 300]
    assert RunRecord(tmp_path).read_summary()["status"] == "completed"
    warnings = [r for r in caplog.records if "server went away" in r.message]
    assert len(warnings) == 1 and Broken.closed == 1


def test_auto_mode_is_online_only_with_credentials(wandb_env, monkeypatch):
    monkeypatch.delenv("WANDB_MODE")
    assert resolve_mode("auto") == "offline"
    with pytest.raises(UserError, match="wandb login"):
        resolve_mode("online")
    monkeypatch.setenv("WANDB_API_KEY", "a" * 40)
    assert resolve_mode("auto") == "online"
    (wandb_env / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "b" * 40)
    monkeypatch.delenv("WANDB_API_KEY")
    assert resolve_mode("auto") == "online"


def test_unreachable_server_falls_back_to_offline(tmp_path, wandb_env, monkeypatch, caplog):
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_API_KEY", "a" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    run_training(tmp_path, FAST + ["trainer.max_steps=100", "logger=wandb",
                                   "logger.wandb.mode=online", "logger.wandb.init_timeout=1"])
    assert any("logging offline instead" in r.message for r in caplog.records)
    run = wandb_run(tmp_path)
    assert run.exit_code == 0 and len(wf.history_values(run, "val/error")) == 1


def env_without_credentials(home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    return {**env, "HOME": str(home), "WANDB_SILENT": "true"}


@pytest.mark.slow
def test_online_without_credentials_fails_fast_without_a_tty(tmp_path):
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(REPO / "run.py"), "logger.wandb.mode=online", f"hydra.run.dir={tmp_path}/r"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env=env_without_credentials(tmp_path), cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "no W&B credentials" in result.stderr and "wandb login" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.perf_counter() - start < 60
    assert not (tmp_path / "r" / "metrics.csv").exists(), "training must not start"


@pytest.mark.slow
def test_multirun_gives_one_wandb_run_per_job_in_one_group(tmp_path):
    sweep = tmp_path / "sweep"
    env = {**env_without_credentials(tmp_path), "WANDB_MODE": "offline"}
    result = subprocess.run(
        [sys.executable, str(REPO / "run.py"), "-m", "model.depth=[4,8],[8,16]", "logger=wandb",
         "trainer.max_steps=40", "trainer.eval_every=20", "trainer.progress=false",
         f"hydra.sweep.dir={sweep}"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = [wandb_run(sweep / str(job)) for job in (0, 1)]
    assert runs[0].group == runs[1].group and runs[0].group.startswith("sweep-20")
    assert [r.name for r in runs] == [
        f"{i}-model.depth={d},trainer.max_steps=40,trainer.eval_every=20"
        for i, d in enumerate(["[4,8]", "[8,16]"])]
    assert runs[0].run_id != runs[1].run_id and all(r.exit_code == 0 for r in runs)
    for job, run in zip((0, 1), runs):
        rows = RunRecord(sweep / str(job)).read_metrics()
        assert wf.history_values(run, "val/error") == [(r["step"], r["val/error"]) for r in rows]


TINY = ["trainer.max_steps=20", "trainer.eval_every=10", "optimizer.lr=0.05",
        "trainer.progress=false"]


def offline_env(home):
    """Offline W&B without credentials, its console output as a user would see it."""
    env = {**env_without_credentials(home), "WANDB_MODE": "offline"}
    del env["WANDB_SILENT"]
    return env


def run_py(args, cwd, env):
    return subprocess.run([sys.executable, str(REPO / "run.py"), *args], capture_output=True,
                          text=True, timeout=300, env=env, cwd=cwd)


def start_py(args, cwd, env):
    return subprocess.Popen([sys.executable, str(REPO / "run.py"), *args], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_rows(proc, run_dir, rows):
    """Until ``metrics.csv`` in ``run_dir`` has ``rows`` rows, or the process ends."""
    path = run_dir / "metrics.csv"
    wait_for(lambda: proc.poll() is not None or (
        path.is_file() and path.read_text().count("\n") > rows), 300,
        f"{rows} rows in {path}", poll_s=0.02)


def wandb_noise(output):
    """wandb's own console lines, but for its sync hint."""
    return [line for line in output.splitlines()
            if line.startswith("wandb:") and "wandb sync" not in line]


@pytest.mark.slow
def test_run_killed_then_resumed_has_every_metrics_row_in_wandb_and_tensorboard_once(tmp_path):
    """W&B and TensorBoard together (issue 17): after a kill -9 and a resume, each holds
    every metrics row once, equal to metrics.csv (TensorBoard: float32, read back with
    its own event reader)."""
    from test_parts import tensorboard_scalars

    run_dir, env = tmp_path / "r", offline_env(tmp_path)
    first = start_py(["logger=[wandb,tensorboard]", "trainer.max_steps=400",
                      "trainer.eval_every=20", "trainer.checkpoint_every=60",
                      "optimizer.lr=0.05", "trainer.progress=false", f"hydra.run.dir={run_dir}"],
                     tmp_path, env)
    wait_for_rows(first, run_dir, 7)
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=60) == -signal.SIGKILL, "the run ended before it was killed"
    resumed = run_py(["logger=[wandb,tensorboard]", f"trainer.resume={run_dir}"], tmp_path, env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = RunRecord(run_dir).read_metrics()
    assert [r["step"] for r in rows] == list(range(20, 401, 20))
    run = wandb_run(run_dir)
    assert wf.history_values(run, "val/error") == [(r["step"], r["val/error"]) for r in rows]
    assert RunRecord(run_dir).read_tracker_state() == {"wandb_run_id": run.run_id}
    assert wandb_noise(resumed.stdout + resumed.stderr) == []
    scalars = tensorboard_scalars(run_dir)
    for key in ("train/error", "val/error", "train/loss", "lr"):
        assert [step for step, _ in scalars[key]] == [r["step"] for r in rows], key  # once each
        assert [value for _, value in scalars[key]] == [
            float(torch.tensor(r[key], dtype=torch.float32)) for r in rows], key


@pytest.mark.slow
def test_resumed_sweep_keeps_its_wandb_group(tmp_path):
    sweep, env = tmp_path / "sweep", offline_env(tmp_path)
    command = ["-m", "trainer.max_steps=20,400", "logger=wandb", "trainer.eval_every=10",
               "optimizer.lr=0.05", "trainer.progress=false", f"hydra.sweep.dir={sweep}"]
    first = start_py(command, tmp_path, env)
    wait_for_rows(first, sweep / "1", 1)
    first.send_signal(signal.SIGINT)  # Ctrl-C during job 1: it keeps a checkpoint
    assert first.wait(timeout=120) == 130
    again = run_py(command, tmp_path, env)  # job 0 is skipped, job 1 resumes
    assert again.returncode == 0, again.stderr[-3000:]
    sessions = [wf.read_run(f) for job in (0, 1) for f in wandb_run(sweep / str(job)).paths]
    assert len(sessions) == 3 and sessions[2].resumed
    groups = [s.group for s in sessions]
    assert groups == [groups[0]] * 3 and groups[0].startswith("sweep-20")


@pytest.mark.slow
def test_sweep_output_keeps_only_wandb_sync_hints_and_names_its_summary(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_py(["-m", "seed=0,1", "logger=wandb", *TINY, f"hydra.sweep.dir={sweep}"],
                    tmp_path, offline_env(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert wandb_noise(output) == []
    for job in (0, 1):  # the sync hint once for each job, relative to the launch folder
        (folder,) = (sweep / str(job) / "wandb").glob("offline-run-*")
        assert output.count(f"upload it with: wandb sync {folder.relative_to(tmp_path)}") == 1
    assert output.count("wandb sync") == 2
    assert str(sweep / "sweep_summary.md") in output
