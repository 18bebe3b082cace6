"""Damaged record files cost one line and no result; divergence and a full disk stop a
run honestly (issue 15). Real runs in this process, real files; a full disk and a
read-only folder are simulated by raising ENOSPC or EROFS at the write (these machines
run as root, so chmod proves nothing)."""

from __future__ import annotations

import errno
import importlib.util
import json
import math
import shutil

import pytest
import torch

from conftest import REPO, SHORT, run_training
from mnist_lab.compare import main as compare_main
from mnist_lab.errors import ConfigError, RunError, UserError
from mnist_lab.evaluate import main as evaluate_main
from mnist_lab.models.build import load_model
from mnist_lab.record import folder
from mnist_lab.record.folder import RunRecord
from mnist_lab.sweeps.slurm import reader_status
from mnist_lab.training.tracking.base import Tracker

RESUME = ["trainer.progress=false"]


def strict(path):
    """``path`` parsed as strict JSON: NaN and Infinity are refused."""
    def refuse(name):
        raise ValueError(f"{path} holds {name}")
    return json.loads(path.read_text(), parse_constant=refuse)


def resume(run_dir, data_root, *more):
    return run_training(run_dir, [f"trainer.resume={run_dir}", f"data.root={data_root}",
                                  *RESUME, *more])


# -- summary.json, metrics.csv, run.lock ------------------------------------------------

def test_a_truncated_summary_costs_evaluate_no_result(old_run, data_root, capsys):
    summary = old_run / "summary.json"
    summary.write_text(summary.read_text()[:200])
    assert evaluate_main([str(old_run), "--data-root", str(data_root)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("test/error ") and "(5000 images, final weights)" in out
    assert "summary.json cannot be read" in err and len(err.strip().splitlines()) == 1


def test_a_truncated_summary_is_set_aside_on_resume_and_written_anew(old_run, data_root):
    (old_run / "summary.json").write_text('{"status": "compl')
    resume(old_run, data_root, "trainer.max_steps=60")
    assert len(list(old_run.glob("summary.json.damaged-*"))) == 1
    summary = strict(old_run / "summary.json")
    assert summary["status"] == "completed" and summary["steps"] == 60
    assert summary["overrides"][:2] == ["model.depth=[2,4]", "model.fc_width=16"]  # .hydra's


@pytest.mark.parametrize("content", ["[]", '"running"', "{", "\x00\x01"])
def test_a_summary_that_is_not_an_object_costs_compare_one_line(old_run, tmp_path, capsys,
                                                               content):
    good = tmp_path / "good"
    shutil.copytree(old_run, good)
    (old_run / "summary.json").write_text(content)
    assert compare_main([str(old_run), str(good)]) == 0
    out, err = capsys.readouterr()
    assert str(good) in out and str(old_run) not in out
    assert err.count("skipped") == 1 and "summary.json" in err


def test_a_garbage_metrics_row_is_dropped_with_one_warning(old_run, data_root, caplog):
    metrics = old_run / "metrics.csv"
    lines = metrics.read_text().splitlines()
    metrics.write_text("\n".join([lines[0], "20,oops,x", *lines[1:]]) + "\n")
    assert [r["step"] for r in RunRecord(old_run).read_metrics()] == [20, 40]
    assert "line 2, cannot be read and is left out" in caplog.text
    resume(old_run, data_root, "trainer.max_steps=60")
    assert [r["step"] for r in RunRecord(old_run).read_metrics()] == [20, 40, 60]


def test_metrics_are_read_by_column_name(old_run):
    """A column more (a newer mnist_lab's metric) and another order still read and append."""
    metrics = old_run / "metrics.csv"
    rows = RunRecord(old_run).read_metrics()
    header = ["val/error", "step", "extra/metric", *[c for c in rows[0] if c not in (
        "val/error", "step")]]
    lines = [",".join(header)] + [",".join(str({**r, "extra/metric": 7}[c]) for c in header)
                                  for r in rows]
    metrics.write_text("\n".join(lines) + "\n")
    again = RunRecord(old_run).read_metrics()
    assert [r["step"] for r in again] == [20, 40] and all(r["extra/metric"] == 7 for r in again)
    assert [r["val/error"] for r in again] == [r["val/error"] for r in rows]
    RunRecord(old_run).append_metrics({**rows[-1], "step": 60})
    assert [r["step"] for r in RunRecord(old_run).read_metrics()] == [20, 40, 60]
    assert math.isnan(RunRecord(old_run).read_metrics()[-1]["extra/metric"])


def test_a_running_run_with_a_damaged_lock_reads_as_lost(old_run, capsys):
    summary = json.loads((old_run / "summary.json").read_text())
    (old_run / "summary.json").write_text(json.dumps({**summary, "status": "running"}))
    (old_run / "run.lock").write_text('{"host": 1, "pid": "x", "token": 2, "interval_s": "s",'
                                      ' "heartbeat": [], "started": {}}')
    assert reader_status(RunRecord(old_run), None) == "lost"
    assert compare_main([str(old_run)]) == 0
    assert " lost " in capsys.readouterr().out


# -- best.pt, weights_history.pt, trainer.max_steps -------------------------------------

def test_a_damaged_best_checkpoint_is_set_aside_and_the_summary_agrees(old_run, data_root):
    (old_run / "best.pt").write_bytes(b"not a checkpoint")
    resume(old_run, data_root, "trainer.max_steps=80", "trainer.test_on=best")
    assert len(list(old_run.glob("best.pt.discarded-*"))) == 1
    summary = strict(old_run / "summary.json")
    best = torch.load(old_run / "best.pt", weights_only=True)
    assert best["step"] == summary["val/best_step"] > 40  # counted from the resumed step
    assert best["val/error"] == summary["val/best_error"]
    assert summary["test/weights"] == "best"
    assert summary["test/error"] == summary["test/best_checkpoint_error"]


def test_a_weight_history_of_another_model_is_refused_where_it_is_read(old_run, data_root,
                                                                       tmp_path):
    from mnist_lab.app.runs import load_runs

    other = {"format_version": 2, "steps": torch.tensor([20, 40]), "stride": 1,
             "weights": [torch.zeros(2, 8, 1, 3, 3)], "biases": [torch.zeros(2, 8)]}
    torch.save(other, old_run / "weights_history.pt")
    (run,) = load_runs([old_run])
    assert run.history == [] and "is not this model's history" in run.history_note
    resume(old_run, data_root, "trainer.max_steps=60")
    assert len(list(old_run.glob("weights_history.pt.mismatched-*"))) == 1
    assert torch.load(old_run / "weights_history.pt", weights_only=True)["steps"].tolist() == [60]


def test_a_resume_with_fewer_steps_than_reached_is_refused(old_run, data_root):
    before = (old_run / "metrics.csv").read_bytes()
    with pytest.raises(ConfigError, match=r"trainer.max_steps=20: gives 20 steps, fewer than "
                                          r"the 40 this run has already trained"):
        resume(old_run, data_root, "trainer.max_steps=20")
    assert (old_run / "metrics.csv").read_bytes() == before


# -- divergence ---------------------------------------------------------------------------

class Poison(Tracker):
    """From the evaluation at ``step`` on, the model's outputs are NaN, so the next
    training step's loss and update are, as when a step blows up."""

    def __init__(self, step):
        self.step = step

    def log_evaluation(self, row, images_per_s, model):
        if row["step"] == self.step:
            model.register_forward_hook(lambda module, inputs, output: output * math.nan)


def test_a_diverged_run_stops_and_saves_nothing_non_finite(tmp_path):
    with pytest.raises(RunError, match=r"Training diverged at step 100: the training loss is "
                                       r"NaN.*checkpoint.pt \(step 50\) and best.pt keep.*lower "
                                       r"optimizer.lr \(this run: 0.01\)"):
        run_training(tmp_path, SHORT + ["trainer.eval_every=50", "trainer.checkpoint_every=50"],
                     extra_trackers=[Poison(50)])
    summary = strict(tmp_path / "summary.json")
    assert summary["status"] == "diverged" and "diverged at step 100" in summary["error"]
    for name in ("checkpoint.pt", "best.pt"):
        saved = torch.load(tmp_path / name, weights_only=True)
        assert saved["step"] == 50
        assert all(torch.isfinite(t).all() for t in saved["model_state"].values())
    assert [r["step"] for r in RunRecord(tmp_path).read_metrics()] == [50]


def test_a_learning_rate_of_1e9_diverges_and_weights_with_nan_are_refused(tmp_path, old_run):
    with pytest.raises(RunError, match="diverged before its first checkpoint"):
        run_training(tmp_path, SHORT + ["optimizer.lr=1e9"])
    assert strict(tmp_path / "summary.json")["status"] == "diverged"
    assert not (tmp_path / "checkpoint.pt").exists() and not (tmp_path / "best.pt").exists()
    ckpt = torch.load(old_run / "checkpoint.pt", weights_only=True)
    ckpt["model_state"]["fc.weight"][0, 0] = math.inf
    torch.save(ckpt, old_run / "checkpoint.pt")
    with pytest.raises(UserError, match=r"holds weights that are not finite \(fc.weight"):
        load_model(old_run)


@pytest.mark.parametrize("override", ["optimizer.lr=inf", "optimizer.lr=nan",
                                      "trainer.heartbeat_s=inf", "trainer.snapshot_max_mb=inf",
                                      "logger.wandb.init_timeout=inf"])
def test_every_float_setting_must_be_finite(override):
    from conftest import compose_config
    from mnist_lab.config.settings import to_settings

    with pytest.raises(ConfigError, match=rf"{override.split('=')[0]}=.*must be a finite"):
        to_settings(compose_config([override]))


# -- a full disk, a read-only folder --------------------------------------------------

class DiskFullAt(Tracker):
    """From the evaluation at ``step`` on, writing ``names`` fails with ENOSPC."""

    def __init__(self, step, names, monkeypatch):
        self.step, self.names, self.monkeypatch = step, names, monkeypatch

    def log_evaluation(self, row, images_per_s, model):
        if row["step"] != self.step:
            return
        real = folder.replace_atomically

        def full(path, write, guard=None):
            if path.name in self.names:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(path, write, guard)
        self.monkeypatch.setattr(folder, "replace_atomically", full)


def test_a_full_disk_costs_one_line_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    settings = SHORT + ["trainer.eval_every=50", "trainer.checkpoint_every=50"]
    with pytest.raises(RunError, match=r"^no space left on device while writing "
                                       r"weights_history.pt in .*; the checkpoint of step 50 "
                                       r"is intact$"):
        run_training(tmp_path, settings, extra_trackers=[
            DiskFullAt(100, {"weights_history.pt", "checkpoint.pt"}, monkeypatch)])
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 50
    summary = strict(tmp_path / "summary.json")
    assert summary["status"] == "failed" and "no space left" in summary["error"]


def test_a_disk_too_full_for_the_status_reads_as_lost(tmp_path, monkeypatch):
    names = {"weights_history.pt", "checkpoint.pt", "summary.json", "best.pt"}
    with pytest.raises(RunError, match="its status could not be written either, so readers "
                                       "show it as lost"):
        run_training(tmp_path, SHORT + ["trainer.eval_every=50", "trainer.checkpoint_every=50"],
                     extra_trackers=[DiskFullAt(100, names, monkeypatch)])
    assert strict(tmp_path / "summary.json")["status"] == "running"
    assert reader_status(RunRecord(tmp_path), None) == "lost"


def test_a_read_only_run_folder_is_named_in_one_line_before_hydra_starts(old_run, monkeypatch):
    spec = importlib.util.spec_from_file_location("run_py", REPO / "run.py")
    run_py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_py)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")
    assert run_py.unwritable_resume([f"trainer.resume={old_run}"]) is None
    monkeypatch.setattr(run_py.tempfile, "TemporaryFile", read_only)
    for argv in ([f"trainer.resume={old_run}"],
                 [f"hydra.run.dir={old_run}", "trainer.resume=true"]):
        message = run_py.unwritable_resume(argv)
        assert message == (f"Error: cannot resume the run in '{old_run}': the folder cannot be "
                           "written (read-only file system). Make it writable, or copy the run "
                           "folder somewhere writable and resume the copy.")


@pytest.mark.slow
def test_a_diverged_run_py_exits_1_with_one_line(tmp_path):
    from conftest import run_py

    result = run_py("optimizer.lr=1e9", "trainer.max_steps=100", "logger=none",
                    "trainer.progress=false", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: Training diverged at step 100: the training loss "
                                    "is NaN.") and len(result.stderr.strip().splitlines()) == 1
    assert strict(tmp_path / "run" / "summary.json")["status"] == "diverged"
