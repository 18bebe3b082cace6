"""Run folders written before the package was regrouped (mnist_lab 90f9aef: checkpoint
format 2, a config without data, scheduler or per-tracker nodes) still evaluate, predict,
compare and resume (issue 16). ``tests/fixtures/run_90f9aef``: a ConvNet [2,4] run of 40
steps, logger=none."""

from __future__ import annotations

import glob
import json
import shutil

import torch

from conftest import REPO, run_training
from mnist_lab.compare import main as compare_main
from mnist_lab.evaluate import main as evaluate_main
from mnist_lab.predict import main as predict_main
from mnist_lab.record.folder import RunRecord


def test_an_old_run_evaluates_on_its_recorded_test_split(old_run, data_root, capsys):
    recorded = json.loads((old_run / "summary.json").read_text())["test/error"]
    assert evaluate_main([str(old_run), "--data-root", str(data_root)]) == 0
    out = capsys.readouterr().out
    assert f"test/error {100 * recorded:.2f}% (5000 images, final weights)" in out
    assert "(equal)" in out


def test_an_old_run_predicts_and_compares(old_run, tmp_path, capsys):
    assert predict_main([str(old_run), str(REPO / "docs/examples/four.png"),
                         "--format", "csv"]) == 0
    assert "docs/examples/four.png" in capsys.readouterr().out
    assert compare_main([str(old_run), "--format", "csv"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("run,") and str(old_run) in rows[1] and "completed" in rows[1]


def test_an_old_run_resumes_as_it_was_configured(old_run, data_root):
    run_training(old_run, [f"trainer.resume={old_run}", "trainer.max_steps=60",
                           f"data.root={data_root}", "trainer.progress=false"])
    record = RunRecord(old_run)
    assert [r["step"] for r in record.read_metrics()] == [20, 40, 60]
    summary = record.read_summary()
    assert summary["status"] == "completed" and summary["steps"] == 60
    config = summary["config"]
    assert config["model"] == {"_target_": "mnist_lab.models.convnet.ConvNet", "depth": [2, 4],
                               "kernel_size": 5, "fc_width": 16, "dropout": 0.5,
                               "batch_norm": False}
    assert config["scheduler"]["_target_"] == "mnist_lab.training.schedules.Constant"
    assert config["logger"] == {} and config["optimizer"]["lr"] == 0.05
    ckpt = torch.load(old_run / "checkpoint.pt", weights_only=True)
    assert ckpt["format_version"] == 3 and ckpt["model"]["mean"] == [0.0]


def test_compare_takes_a_glob_of_runs_and_says_what_a_blank_cell_is(old_run, tmp_path, capsys):
    """``compare outputs/*/*`` used to drop a run one level up (``outputs/recogniser``)."""
    outputs = tmp_path / "outputs"
    dated, named = outputs / "2026-11-29" / "10-15-02_123456", outputs / "recogniser"
    shutil.copytree(old_run, dated)
    shutil.copytree(old_run, named)
    summary = json.loads((named / "summary.json").read_text())
    summary["overrides"] = summary["overrides"] + ["seed=1"]
    (named / "summary.json").write_text(json.dumps(summary))
    paths = sorted(glob.glob(str(outputs / "*" / "*")))
    assert str(named / "checkpoint.pt") in paths and str(named) not in paths
    assert compare_main(paths) == 0
    out, err = capsys.readouterr()
    assert str(dated) in out and str(named) in out and err == ""
    assert "(A blank cell: that run left the key at its default.)" in out
