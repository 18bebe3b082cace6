"""Real short training runs: the record, determinism, stop-and-resume, evaluate."""

import json
import os
import shutil

import pytest
import torch

from conftest import SHORT, StopAt, metrics_without_time, run_training
from mnist_lab.errors import ConfigError
from mnist_lab.models.build import load_model
from mnist_lab.evaluate import main as evaluate_main
from mnist_lab.record.metrics import METRIC_COLUMNS
from mnist_lab.record.folder import RunRecord
from mnist_lab.training.resume import RunDirTaken
from mnist_lab.training.tracking.base import Tracker

RESUME = ["trainer.max_steps=240", "trainer.eval_every=40", "trainer.checkpoint_every=80",
          "optimizer.lr=0.01", "trainer.progress=false", "logger=none", "data=tiny"]


def test_short_run_learns_and_records_everything(short_run):
    record = RunRecord(short_run)
    rows = record.read_metrics()
    assert [r["step"] for r in rows] == [100, 200, 300]
    assert list(rows[0]) == list(METRIC_COLUMNS)
    assert rows[-1]["val/error"] < 0.15
    assert rows[-1]["train/error"] < rows[0]["train/error"]
    assert all(0 <= r["train/error"] <= 1 and r["lr"] == 0.01 for r in rows)
    summary = record.read_summary()
    assert summary["status"] == "completed" and summary["steps"] == 300
    assert summary["val/best_error"] == min(r["val/error"] for r in rows)
    assert summary["val/final_error"] == rows[-1]["val/error"]
    assert summary["test/images"] == 500  # the tiny MNIST's test split
    assert summary["test/accuracy"] == pytest.approx(1 - summary["test/error"])
    assert summary["train/images_per_s"] > 0 and summary["wall_s"] > 0
    assert torch.__version__.startswith(summary["versions"]["torch"])
    for name in ("error_curves", "feature_maps", "filters", "confusion_matrix"):
        png = record.plot_path(name)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_checkpoint_is_self_describing_and_loads_weights_only(short_run):
    ckpt = torch.load(short_run / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 300 and ckpt["format_version"] == 3
    assert ckpt["model"] == {"target": "mnist_lab.models.convnet.ConvNet",
                             "in_shape": [1, 28, 28], "num_classes": 10,
                             "kwargs": {"depth": [4, 8], "kernel_size": 5, "fc_width": 512,
                                        "dropout": 0.5, "batch_norm": False},
                             "classes": list("0123456789"), "mean": [0.0], "std": [1.0]}
    loaded = load_model(short_run)
    assert not loaded.model.training and loaded.step == 300
    history = torch.load(short_run / "weights_history.pt", weights_only=True)
    assert history["steps"].tolist() == [100, 200, 300]
    assert history["weights"][0].shape == (3, 4, 1, 5, 5)
    assert torch.equal(history["weights"][1][-1], ckpt["model_state"]["convs.1.weight"])


def test_evaluate_reproduces_the_test_error(short_run, data_root, capsys):
    assert evaluate_main([str(short_run)]) == 0
    out = capsys.readouterr().out
    error = json.loads((short_run / "summary.json").read_text())["test/error"]
    assert f"test/error {100 * error:.2f}%" in out and "(equal)" in out


def test_same_seed_gives_identical_metrics(short_run, tmp_path):
    run_training(tmp_path, SHORT)
    assert metrics_without_time(tmp_path) == metrics_without_time(short_run)


class CrashAt(Tracker):
    """Fails the run at an evaluation, like a crash after the last checkpoint."""

    required = True

    def __init__(self, step):
        self.step = step

    def log_evaluation(self, row, images_per_s, model):
        if row["step"] == self.step:
            raise RuntimeError("simulated crash")


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("straight")
    run_training(run_dir, RESUME)
    return run_dir


def assert_same_run(a, b):
    assert metrics_without_time(a) == metrics_without_time(b)
    wa = torch.load(a / "checkpoint.pt", weights_only=True)["model_state"]
    wb = torch.load(b / "checkpoint.pt", weights_only=True)["model_state"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    ha = torch.load(a / "weights_history.pt", weights_only=True)
    hb = torch.load(b / "weights_history.pt", weights_only=True)
    assert torch.equal(ha["steps"], hb["steps"])
    assert all(torch.equal(x, y) for x, y in zip(ha["weights"], hb["weights"]))


def test_stopped_and_resumed_equals_straight_through(straight, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_training(tmp_path, RESUME, extra_trackers=[StopAt(120)])
    summary = RunRecord(tmp_path).read_summary()
    stopped_at = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"]
    assert summary["status"] == "interrupted" and 120 <= stopped_at < 240
    # Only the resume is named: the cap of 240 steps, lr and logger=none are the run's own.
    run_training(tmp_path, ["trainer.resume=true", "trainer.progress=false"])
    assert RunRecord(tmp_path).read_summary()["status"] == "completed"
    assert_same_run(straight, tmp_path)


def test_crashed_and_resumed_equals_straight_through(straight, tmp_path):
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_training(tmp_path, RESUME, extra_trackers=[CrashAt(120)])
    record = RunRecord(tmp_path)
    assert record.read_summary()["status"] == "failed"
    assert "simulated crash" in record.read_summary()["error"]
    assert [r["step"] for r in record.read_metrics()] == [40, 80, 120]
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 80
    run_training(tmp_path, RESUME + [f"trainer.resume={tmp_path}"])
    assert_same_run(straight, tmp_path)
    summary = RunRecord(tmp_path).read_summary()
    assert summary["overrides"] == RESUME  # the run's own, not the resuming command's
    assert summary["resumed_with"] == RESUME + [f"trainer.resume={tmp_path}"]


def test_checkpoints_follow_their_own_interval_and_resume_mid_window(straight, tmp_path):
    """checkpoint_every=60 with eval_every=40 checkpoints at 60, 120, 180 (not only at
    their common multiple, 120); resuming from 180, between evaluations, still ends
    as the straight run."""
    settings = RESUME + ["trainer.checkpoint_every=60"]
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_training(tmp_path, settings, extra_trackers=[CrashAt(160)])
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 120
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_training(tmp_path, settings + [f"trainer.resume={tmp_path}"],
                     extra_trackers=[CrashAt(200)])
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 180
    run_training(tmp_path, settings + [f"trainer.resume={tmp_path}"])
    assert_same_run(straight, tmp_path)


def test_a_best_checkpoint_saved_after_the_resumed_checkpoint_is_set_aside(straight, tmp_path):
    """Crash at 160: checkpoint of step 80, best.pt of 120 (a step trained again)."""
    errors = {r["step"]: r["val/error"] for r in RunRecord(straight).read_metrics()}
    assert errors[120] < min(errors[40], errors[80])  # so best.pt is written at step 120
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_training(tmp_path, RESUME, extra_trackers=[CrashAt(160)])
    assert torch.load(tmp_path / "best.pt", weights_only=True)["step"] == 120
    with pytest.raises(RuntimeError, match="simulated crash"):  # before step 120's best.pt
        run_training(tmp_path, RESUME + [f"trainer.resume={tmp_path}"],
                     extra_trackers=[CrashAt(120)])
    assert not (tmp_path / "best.pt").exists()  # set aside, and none saved since step 80
    assert len(list(tmp_path.glob("best.pt.discarded-*"))) == 1
    run_training(tmp_path, RESUME + [f"trainer.resume={tmp_path}"])
    assert_same_run(straight, tmp_path)
    a, b = (torch.load(d / "best.pt", weights_only=True) for d in (straight, tmp_path))
    assert a["step"] == b["step"] and all(torch.equal(a["model_state"][k], b["model_state"][k])
                                          for k in a["model_state"])


def test_a_run_never_overwrites_another(straight):
    before = (straight / "metrics.csv").read_bytes()
    with pytest.raises(RunDirTaken, match="refusing to overwrite"):
        run_training(straight, RESUME)
    assert (straight / "metrics.csv").read_bytes() == before


def test_resume_keeps_the_run_settings(straight, tmp_path):
    with pytest.raises(ConfigError, match=r"model.depth=\[8, 16\].*keeps its own settings"):
        run_training(straight, RESUME + ["trainer.resume=true", "model.depth=[8,16]"])


def test_resuming_a_completed_run_changes_nothing(straight):
    before = {p.name: p.read_bytes() for p in straight.iterdir() if p.is_file()}
    best = run_training(straight, ["trainer.resume=true", "trainer.progress=false"])
    assert best == RunRecord(straight).read_summary()["val/best_error"]
    assert {p.name: p.read_bytes() for p in straight.iterdir() if p.is_file()} == before


def test_best_checkpoint_is_kept_and_both_test_errors_are_recorded(short_run, data_root, capsys):
    summary = RunRecord(short_run).read_summary()
    best = torch.load(short_run / "best.pt", weights_only=True)
    assert best["step"] == summary["val/best_step"] and best["val/error"] == summary["val/best_error"]
    assert best["model"] == torch.load(short_run / "checkpoint.pt", weights_only=True)["model"]
    assert summary["test/weights"] == "final"
    assert summary["test/error"] == summary["test/final_error"]
    assert 0 < summary["test/best_checkpoint_error"] < 0.2
    assert evaluate_main([str(short_run), "--weights", "best"]) == 0
    out = capsys.readouterr().out
    error = summary["test/best_checkpoint_error"]
    assert f"test/error {100 * error:.2f}%" in out and "best weights" in out and "(equal)" in out


def test_test_on_best_reports_the_best_checkpoint(tmp_path):
    # The seed lr (0.001) for 300 steps: val/error keeps falling, so the last evaluation
    # is the best one and both weights are the same; at lr 0.5 it is not.
    run_training(tmp_path, SHORT + ["optimizer.lr=0.5", "trainer.eval_every=50",
                                    "trainer.test_on=best"])
    summary = RunRecord(tmp_path).read_summary()
    assert summary["test/weights"] == "best"
    assert summary["test/error"] == summary["test/best_checkpoint_error"]
    assert summary["val/best_step"] < 300, "the test needs a best step before the end"
    assert summary["test/best_checkpoint_error"] != summary["test/final_error"]


def test_a_damaged_weight_history_costs_no_checkpoint(tmp_path, caplog):
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_training(tmp_path, RESUME, extra_trackers=[CrashAt(120)])
    history = tmp_path / "weights_history.pt"
    history.write_bytes(history.read_bytes()[:3000])
    run_training(tmp_path, RESUME + ["trainer.resume=true"])
    assert RunRecord(tmp_path).read_summary()["status"] == "completed"
    assert any("weights_history.pt" in r.message and "restarts" in r.message
               for r in caplog.records)
    kept = list(tmp_path.glob("weights_history.pt.damaged-*"))
    assert len(kept) == 1 and kept[0].stat().st_size == 3000
    steps = torch.load(history, weights_only=True)["steps"].tolist()
    assert steps == [120, 160, 200, 240]  # snapshots from the resumed step on


class Deterministic(Tracker):
    """Records whether deterministic algorithms were on while the run trained."""

    seen = []

    def log_evaluation(self, row, images_per_s, model):
        self.seen.append(torch.are_deterministic_algorithms_enabled())


def test_deterministic_mode_is_on_during_the_run_only_and_changes_no_result(short_run, tmp_path):
    tracker = Deterministic()
    run_training(tmp_path, SHORT + ["trainer.deterministic=true"], extra_trackers=[tracker])
    assert tracker.seen == [True, True, True]
    assert not torch.are_deterministic_algorithms_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert metrics_without_time(tmp_path) == metrics_without_time(short_run)  # CPU: same kernels


def as_format_1(run_dir, dest):
    """A copy of a run as mnist_lab wrote it before models were built from ``_target_``."""
    shutil.copytree(run_dir, dest)
    ckpt = torch.load(dest / "checkpoint.pt", weights_only=True)
    spec, config = ckpt["model"], ckpt["config"]
    model = {k: v for k, v in config["model"].items() if k != "_target_"}
    optimizer = {k: v for k, v in config["optimizer"].items() if k != "_target_"}
    ckpt.update(format_version=1, classes=spec["classes"],
                model={"name": "convnet", "kwargs": spec["kwargs"], "in_shape": spec["in_shape"],
                       "num_classes": spec["num_classes"]},
                input={"scale": "pixel / 255", "mean": spec["mean"], "std": spec["std"]},
                config={**config, "model": {"name": "convnet", **model},
                        "optimizer": {"name": "sgd", **optimizer}})
    torch.save(ckpt, dest / "checkpoint.pt")
    (dest / "best.pt").unlink()


def test_runs_written_in_format_1_still_load_and_resume(short_run, data_root, tmp_path, capsys):
    old = tmp_path / "old"
    as_format_1(short_run, old)
    assert torch.load(old / "checkpoint.pt", weights_only=True)["format_version"] == 1
    loaded = load_model(old)
    assert type(loaded.model).__name__ == "ConvNet" and loaded.classes == tuple("0123456789")
    assert evaluate_main([str(old)]) == 0
    assert "(equal)" in capsys.readouterr().out
    run_training(old, ["trainer.resume=true", "trainer.max_steps=400", "trainer.progress=false"])
    assert [r["step"] for r in RunRecord(old).read_metrics()] == [100, 200, 300, 400]
    assert torch.load(old / "checkpoint.pt", weights_only=True)["format_version"] == 3


FLAT = SHORT + ["optimizer.lr=1e-7", "trainer.eval_every=20", "trainer.checkpoint_every=1000",
                "trainer.early_stop.patience=3", "trainer.early_stop.min_delta=0.001"]


def test_early_stopping_stops_a_flat_run_and_tests_its_best_weights(tmp_path):
    run_training(tmp_path, FLAT + ["trainer.test_on=best"])
    record = RunRecord(tmp_path)
    summary, rows = record.read_summary(), record.read_metrics()
    errors = [r["val/error"] for r in rows]
    assert summary["status"] == "completed" and summary["steps"] == rows[-1]["step"] < 300
    improving = [i for i, e in enumerate(errors) if e < min(errors[:i], default=9) - 0.001]
    assert len(rows) - 1 - improving[-1] == 3, "stopped 3 evaluations after the last improvement"
    assert summary["stopped"]["step"] == rows[-1]["step"]
    assert "early stop: val/error did not fall by more than 0.1 points for 3 evaluations" in \
        summary["stopped"]["reason"]
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert summary["test/weights"] == "best" and best["step"] == summary["val/best_step"]
    assert summary["test/error"] == summary["test/best_checkpoint_error"]
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == rows[-1]["step"]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    run_training(tmp_path, ["trainer.resume=true", "trainer.progress=false"])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_the_early_stop_count_survives_a_resume(tmp_path):
    """Crash after the second flat evaluation: the resumed run stops where an
    uninterrupted one stops, counting the evaluations before the crash."""
    straight = tmp_path / "straight"
    run_training(straight, FLAT)
    stopped_at = RunRecord(straight).read_summary()["stopped"]["step"]
    crashed = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_training(crashed, FLAT + ["trainer.checkpoint_every=20"],
                     extra_trackers=[CrashAt(stopped_at - 20)])
    run_training(crashed, FLAT + ["trainer.checkpoint_every=20", "trainer.resume=true"])
    assert RunRecord(crashed).read_summary()["stopped"]["step"] == stopped_at
