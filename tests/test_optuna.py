"""The Optuna sweeper as users run it: ``python run.py -m +sweep=optuna ...`` in a
subprocess, tiny real trials (40 steps, evaluated every 10).

The pruned studies search ``optimizer.lr: choice(1e-5, 0.05)``: at 1e-5 a trial's
validation error stays near chance (~90 %) while at 0.05 it falls, so the median pruner,
once 2 trials have completed, prunes the hopeless ones: "at least one pruned" does not
depend on luck.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, summary_rows
from mnist_lab.compare import main as compare_main
from mnist_lab.record.folder import RunRecord

pytestmark = pytest.mark.slow
optuna = pytest.importorskip("optuna")

TINY = ["trainer.max_steps=40", "trainer.eval_every=10", "trainer.progress=false",
        "logger=none", "optimizer.momentum=0.9", "data.batch_size=64", "model.depth=[4,8]"]
PRUNED = ["+sweep=optuna", "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=2",
          "optimizer.lr=choice(1e-5, 0.05)"]


def sweep(sweep_dir, *overrides, expect_rc=0, timeout=600, env=None):
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})}
    env.pop("MNIST_LAB_NUM_THREADS", None)
    result = subprocess.run([sys.executable, str(REPO / "run.py"), "-m", *overrides, *TINY,
                             f"hydra.sweep.dir={sweep_dir}"], capture_output=True, text=True,
                            timeout=timeout, env=env, cwd=sweep_dir.parent)
    assert result.returncode == expect_rc, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def load(sweep_dir, kind="sqlite"):
    from mnist_lab.sweeps.trial import open_storage, sweep_folder_storage

    return optuna.load_study(study_name="mnist_lab",
                             storage=open_storage(sweep_folder_storage(kind, sweep_dir)))


def check_pruned_study(sweep_dir, study, trials):
    """Every trial's record, reports and Optuna state agree; at least one was pruned."""
    states = [t.state.name for t in study.trials]
    assert len(states) == trials and "PRUNED" in states and "COMPLETE" in states, states
    rows = {r["run"]: r for r in summary_rows(sweep_dir)}
    assert [rows[str(n)]["status"] for n in range(trials)] == [
        {"PRUNED": "pruned", "COMPLETE": "completed"}[s] for s in states]
    for trial in study.trials:
        record = RunRecord(sweep_dir / str(trial.number))
        summary, metrics = record.read_summary(), record.read_metrics()
        # the trial reported every evaluation it made, at its training step
        assert trial.intermediate_values == {int(r["step"]): r["val/error"] for r in metrics}
        if trial.state.name == "PRUNED":
            assert trial.params["optimizer.lr"] == 1e-5
            last = max(trial.intermediate_values)
            assert trial.value == trial.intermediate_values[last]  # Optuna keeps the last
            assert summary["stopped"]["step"] == last < 40 and "median pruner" in \
                summary["stopped"]["reason"]
            assert record.load_checkpoint().step == last  # stopped as if Ctrl-C'd
            assert "test/error" not in summary
        else:
            assert trial.value == summary["val/best_error"]
    return states


@pytest.fixture(scope="module")
def pruned_study(tmp_path_factory):
    sweep_dir = tmp_path_factory.mktemp("pruned") / "study"
    result = sweep(sweep_dir, *PRUNED, "hydra.sweeper.n_trials=8")
    return sweep_dir, result


def test_a_median_pruned_study_stops_hopeless_trials_in_the_sweeps_own_process(pruned_study,
                                                                               capsys):
    sweep_dir, result = pruned_study
    states = check_pruned_study(sweep_dir, load(sweep_dir), 8)
    summary_md = (sweep_dir / "sweep_summary.md").read_text()
    assert f"8 jobs: {states.count('COMPLETE')} completed, {states.count('PRUNED')} pruned" \
        in summary_md
    assert compare_main([str(sweep_dir), "--format", "csv"]) == 0
    assert capsys.readouterr().out.count(",pruned,") == states.count("PRUNED")
    for name in ("optuna_history", "optuna_intermediate_values", "optuna_importances"):
        assert (sweep_dir / f"{name}.png").stat().st_size > 5000, name
    assert "best_value:" in (sweep_dir / "optimization_results.yaml").read_text()


def test_a_continued_study_launches_no_ended_trial_again_and_prunes_in_joblib_workers(
        pruned_study):
    sweep_dir, _ = pruned_study
    before = {n: (sweep_dir / str(n) / "summary.json").stat().st_mtime_ns for n in range(8)}
    result = sweep(sweep_dir, *PRUNED, "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2",
                   "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert "Continuing study mnist_lab: 8 trials so far" in result.stderr + result.stdout
    assert {n: (sweep_dir / str(n) / "summary.json").stat().st_mtime_ns for n in range(8)} \
        == before
    study = load(sweep_dir)
    check_pruned_study(sweep_dir, study, 12)  # reports from the workers reached the study
    assert [t.state.name for t in study.trials[8:]] != ["RUNNING"] * 4


def test_a_two_objective_study_lists_its_pareto_front(tmp_path):
    sweep_dir = tmp_path / "study"
    sweep(sweep_dir, "+sweep=optuna", "hydra.sweeper.objectives=[val_error,params]",
          "hydra/sweeper/pruner=none", "hydra.sweeper.n_trials=4", "optimizer.lr=0.05",
          "model.depth=choice([2,4],[4,8],[8,16])")
    study = load(sweep_dir)
    front = sorted(t.number for t in study.best_trials)
    for trial in study.trials:  # both objectives, read from each job's summary.json
        summary = RunRecord(sweep_dir / str(trial.number)).read_summary()
        assert trial.values == [summary["val/best_error"], summary["model/params"]]
    text = (sweep_dir / "sweep_summary.md").read_text()
    section = text.split("## Pareto front (val_error, params; all minimised)\n", 1)[1]
    table = [line for line in section.splitlines() if line.startswith("|")]
    assert table[0] == "| run | val/best_error | model/params |"
    listed = [int(line.split("|")[1]) for line in table[2:]]
    assert sorted(listed) == front and front
    rows = summary_rows(sweep_dir)
    assert sorted(int(r["run"]) for r in rows if r["pareto_front"] == "yes") == front
    assert (sweep_dir / "optuna_pareto_front.png").stat().st_size > 5000


def test_a_pruner_with_two_objectives_is_refused_in_one_line(tmp_path):
    sweep_dir = tmp_path / "study"
    result = sweep(sweep_dir, "+sweep=optuna", "hydra/sweeper/pruner=median",
                   "hydra.sweeper.objectives=[val_error,step_ms]", expect_rc=1)
    assert ("Optuna cannot prune a study of 2 objectives (val_error, step_ms): use "
            "hydra/sweeper/pruner=none, or one objective.\n") in result.stderr
    assert "Traceback" not in result.stderr and not (sweep_dir / "0").exists()


def test_a_study_of_the_old_sweeper_names_its_one_way_upgrade(tmp_path):
    sweep_dir = tmp_path / "study"
    sweep_dir.mkdir()
    db = sweep_dir / "optuna.db"
    shutil.copy(REPO / "tests" / "fixtures" / "optuna_2_10_1.db", db)
    result = sweep(sweep_dir, "+sweep=optuna", "hydra.sweeper.n_trials=1", expect_rc=1)
    line = (f"The study in {db} was written by optuna 2.10.1, whose schema Optuna "
            f"{optuna.__version__} reads only after a one-way upgrade: copy the file first "
            f"(cp {db} {db}.bak), then run: optuna storage upgrade --storage sqlite:///{db}")
    assert line + "\n" in result.stderr and "Traceback" not in result.stderr
    assert not (sweep_dir / "0").exists()
    copy, upgrade = line.split("(", 1)[1].split(")")[0], line.split("then run: ")[1]
    bin_dir = os.path.dirname(sys.executable)  # the optuna command of this environment
    for command in (copy, upgrade):
        subprocess.run(shlex.split(command), check=True, timeout=120,
                       env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert (sweep_dir / "optuna.db.bak").read_bytes() == \
        (REPO / "tests" / "fixtures" / "optuna_2_10_1.db").read_bytes()
    old = [t.state.name for t in load(sweep_dir).trials]
    sweep(sweep_dir, "+sweep=optuna", "hydra.sweeper.n_trials=1", "optimizer.lr=0.05")
    study = load(sweep_dir)
    assert [t.state.name for t in study.trials] == old + ["COMPLETE"]
    assert RunRecord(sweep_dir / str(len(old))).read_summary()["status"] == "completed"
