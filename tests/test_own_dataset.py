"""README's "Add your own dataset", run exactly as written, from a folder outside the repo."""

import os
import subprocess

import pytest

from conftest import REPO, readme_example
from mnist_lab.record.folder import RunRecord

pytestmark = pytest.mark.slow


def test_a_users_dataset_trains_evaluates_and_compares(tmp_path):
    commands = readme_example("Add your own dataset", tmp_path)
    assert (tmp_path / "my_data.py").is_file() and (tmp_path / "conf/data/squares.yaml").is_file()
    env = {**os.environ, "MNIST_LAB": str(REPO), "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    for key in ("PYTHONPATH", "MNIST_LAB_TRUST"):
        env.pop(key, None)
    result = subprocess.run(["bash", "-e", "-x", "-c", commands], cwd=tmp_path, env=env,
                            text=True, capture_output=True, timeout=600)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])
    summary = RunRecord(tmp_path / "runs/squares").read_summary()
    assert summary["status"] == "completed" and summary["steps"] == 100
    assert summary["config"]["data"]["_target_"] == "my_data.Squares"
    assert summary["test/error"] < 0.2, "the squares are easy: it learns"
    assert f"test/error {100 * summary['test/error']:.2f}% (500 images" in result.stdout
    table = result.stdout.split("test/loss", 1)[1]
    assert "runs/squares" in table and "completed" in table
