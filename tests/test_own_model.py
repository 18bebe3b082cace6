"""README's "Add your own model", run exactly as written, from a folder outside the repo."""

import os
import re
import subprocess

import pytest

from conftest import REPO, readme_example
from mnist_lab.record.folder import RunRecord

pytestmark = pytest.mark.slow


def test_a_users_model_trains_sweeps_evaluates_and_predicts(tmp_path):
    commands = readme_example("Add your own model", tmp_path)
    assert (tmp_path / "my_models.py").is_file() and (tmp_path / "conf/model/tiny.yaml").is_file()
    env = {**os.environ, "MNIST_LAB": str(REPO), "WANDB_MODE": "offline",
           "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    for key in ("PYTHONPATH", "MNIST_LAB_TRUST"):  # as a user has them: not set
        env.pop(key, None)
    result = subprocess.run(["bash", "-e", "-x", "-c", commands], cwd=tmp_path, env=env,
                            text=True, capture_output=True, timeout=900)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])
    evaluated, predicted = result.stderr.split("+ python -m mnist_lab.")[1:3]
    run = RunRecord(tmp_path / "runs/tiny")
    summary = run.read_summary()
    assert summary["status"] == "completed" and summary["steps"] == 50
    assert summary["config"]["model"] == {"_target_": "my_models.Tiny", "width": 16}
    assert run.plot_path("feature_maps").is_file() and run.plot_path("filters").is_file()
    assert list((tmp_path / "runs/tiny/wandb").glob("offline-run-*/run-*.wandb"))
    imported = f"Importing model class my_models.Tiny from {tmp_path / 'my_models.py'}"
    assert imported in evaluated and imported in predicted
    assert f"test/error {100 * summary['test/error']:.2f}%" in result.stdout  # evaluate
    assert re.search(r"four\.png\s+\d\s+[01]\.\d{4}", result.stdout)  # predict's table row
    widths = [RunRecord(tmp_path / f"runs/widths/{j}").read_summary() for j in (0, 1)]
    assert [w["config"]["model"]["width"] for w in widths] == [8, 16]
    assert all(w["status"] == "completed" for w in widths)
    assert (tmp_path / "runs/widths/sweep_summary.md").is_file()
