"""README's "Add your own dataset", run exactly as written, from a folder outside the repo."""

import os
import re
import subprocess

import pytest

from conftest import REPO
from mnist_lab.record.folder import RunRecord

pytestmark = pytest.mark.slow


def readme_section() -> str:
    text = (REPO / "README.md").read_text()
    return text.split("## Add your own dataset", 1)[1].split("\n## ", 1)[0]


def test_a_users_dataset_trains_evaluates_and_compares(tmp_path):
    blocks = re.findall(r"```(\w+)\n(.*?)```", readme_section(), re.S)
    for _, block in blocks:
        first = block.splitlines()[0]
        if first.startswith("# ") and "." in first:  # a file: its path on the first line
            path = tmp_path / first[2:].strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block)
    assert (tmp_path / "my_data.py").is_file() and (tmp_path / "conf/data/squares.yaml").is_file()
    commands = next(b for lang, b in blocks if lang == "bash")
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
