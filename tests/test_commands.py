"""Commands as a user types them: where records go, what a refused command leaves."""

import os
import re

import pytest

from conftest import DATA_ROOT, run_py

pytestmark = pytest.mark.slow
TINY = ["trainer.max_steps=20", "trainer.eval_every=10", "optimizer.lr=0.05",
        "trainer.progress=false", "logger=none"]


def test_a_refused_command_leaves_no_folder_behind(tmp_path):
    result = run_py("model.depth=[]", *TINY, cwd=tmp_path)
    assert result.returncode == 2 and "Invalid config value model.depth=[]" in result.stderr
    assert list(tmp_path.iterdir()) == [], "Hydra's folder of a refused command was left"


def test_a_run_ends_by_printing_its_record_folder_with_paths_from_the_launch_directory(tmp_path):
    """``hydra.job.chdir=true`` runs the job in its folder; a relative data.root still
    means the folder relative to where the command was launched."""
    root = os.path.relpath(DATA_ROOT, tmp_path)
    result = run_py("hydra.job.chdir=true", f"data.root={root}", "data.download=false", *TINY,
                    "hydra.run.dir=run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = (tmp_path / "run").resolve()
    assert f"Run record: {run_dir}" in result.stdout + result.stderr
    stamped = [line for line in (result.stdout + result.stderr).splitlines()
               if line.startswith("[")]  # one timestamp style: Hydra's lines and ours
    assert stamped and all(re.match(r"\[\d\d:\d\d:\d\d\]\[", line) for line in stamped), stamped
    made = {p.name for p in run_dir.iterdir()}
    assert made <= {".hydra", "run.log", "metrics.csv", "summary.json", "checkpoint.pt",
                    "best.pt", "weights_history.pt", "plots"}, made
