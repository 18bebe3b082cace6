"""Sweeps as users run them: `python run.py -m ...` in a subprocess, short real jobs."""

import csv
import json
import math
import os
import shutil
import statistics
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from conftest import REPO, summary_rows
from mnist_lab.compare import main as compare_main
from mnist_lab.record.folder import RunRecord
from mnist_lab.sweeps.summary import write_summary

pytestmark = pytest.mark.slow
TINY = ["trainer.max_steps=20", "trainer.eval_every=10", "optimizer.lr=0.05",
        "trainer.progress=false", "logger=none"]
TOO_DEEP = "[2,2,2,2,2]"


def sweep(sweep_dir, *overrides, expect_rc=0, timeout=600):
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    env.pop("MNIST_LAB_NUM_THREADS", None)
    args = [*overrides, *(t for t in TINY if t not in overrides)]
    result = subprocess.run([sys.executable, str(REPO / "run.py"), "-m", *args,
                             f"hydra.sweep.dir={sweep_dir}"],
                            capture_output=True, text=True, timeout=timeout, env=env,
                            cwd=sweep_dir.parent)
    assert result.returncode == expect_rc, result.stdout[-2000:] + result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A 2x2 grid (depth x seed) with the basic launcher."""
    sweep_dir = tmp_path_factory.mktemp("grid") / "sweep"
    sweep(sweep_dir, "model.depth=[4,8],[8,16]", "seed=0,1")
    return sweep_dir


def test_grid_runs_every_combination_in_its_own_directory(grid):
    expected = [("[4,8]", "0"), ("[4,8]", "1"), ("[8,16]", "0"), ("[8,16]", "1")]
    for job, (depth, seed) in enumerate(expected):
        summary = RunRecord(grid / str(job)).read_summary()
        assert summary["status"] == "completed"
        assert summary["overrides"][:2] == [f"model.depth={depth}", f"seed={seed}"]
        assert summary["config"]["model"]["depth"] == eval(depth)
    rows = summary_rows(grid)
    assert len(rows) == 4 and all(r["status"] == "completed" for r in rows)
    assert (grid / "sweep_val_error.png").stat().st_size > 5000
    errors = [float(r["val/best_error"]) for r in rows]
    assert errors == sorted(errors)


def test_compare_prints_sorted_rows_and_seed_aggregates(grid, capsys):
    assert compare_main([str(grid), "--format", "csv"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert compare_main([str(grid), "--format", "csv", "--aggregate"]) == 0
    aggregate = capsys.readouterr().out
    summaries = {str(grid / str(j)): RunRecord(grid / str(j)).read_summary() for j in range(4)}
    assert sorted(r["run"] for r in rows) == sorted(summaries)
    assert [float(r["val/best_error"]) for r in rows] == sorted(
        s["val/best_error"] for s in summaries.values())
    assert set(rows[0]) >= {"model.depth", "seed", "status", "test/error", "wall_s"}
    aggregates = {r["model.depth"]: r for r in csv.DictReader(aggregate.splitlines())}
    assert set(aggregates) == {"[4,8]", "[8,16]"}
    for depth, jobs in (("[4,8]", (0, 1)), ("[8,16]", (2, 3))):
        values = [summaries[str(grid / str(j))]["val/best_error"] for j in jobs]
        assert aggregates[depth]["n"] == "2"
        assert math.isclose(float(aggregates[depth]["val/best_error mean"]),
                            statistics.fmean(values), rel_tol=1e-5)
        assert math.isclose(float(aggregates[depth]["val/best_error std"]),
                            statistics.stdev(values), rel_tol=1e-5)  # n - 1


def test_compare_plot_and_bad_path(grid, tmp_path, capsys):
    assert compare_main([str(grid / "0"), str(grid / "3"), "--plot", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert out.count("completed") == 2 and (tmp_path / "c.png").stat().st_size > 5000
    assert compare_main([str(tmp_path / "nothing")]) == 2


def test_a_damaged_record_costs_only_its_own_row(grid, tmp_path, capsys):
    sweep_dir = tmp_path / "copy"
    shutil.copytree(grid, sweep_dir)
    (sweep_dir / "0" / "summary.json").write_text('{"status": "compl')  # cut short
    metrics = sweep_dir / "1" / "metrics.csv"
    lines = metrics.read_text().splitlines()
    metrics.write_text("\n".join(lines[:-1] + [lines[-1][:lines[-1].rfind(",")]]))  # killed mid-row
    assert len(RunRecord(sweep_dir / "1").read_metrics()) == len(lines) - 2
    assert compare_main([str(sweep_dir)]) == 0
    err = capsys.readouterr().err
    assert f"skipped '{sweep_dir / '0'}': its record cannot be read" in err
    write_summary(sweep_dir)
    assert (sweep_dir / "sweep_summary.md").read_text().count("| completed |") == 3


def test_a_sweep_stopped_early_counts_the_jobs_that_did_not_start(grid, tmp_path):
    assert json.loads((grid / "sweep.json").read_text())["jobs"] == 4  # noted by the sweeper
    sweep_dir = tmp_path / "stopped"
    sweep_dir.mkdir()
    shutil.copy(grid / "sweep.json", sweep_dir)
    shutil.copytree(grid / "0", sweep_dir / "0")  # as if stopped after the first job
    write_summary(sweep_dir)
    text = (sweep_dir / "sweep_summary.md").read_text()
    assert "4 jobs: 1 completed, 3 not started" in text
    (sweep_dir / "sweep.json").unlink()  # no plan noted (Optuna): what there is, in the singular
    write_summary(sweep_dir)
    assert "1 job: 1 completed" in (sweep_dir / "sweep_summary.md").read_text()


def test_joblib_jobs_run_in_parallel_on_their_share_of_the_cores(tmp_path):
    sweep_dir = tmp_path / "sweep"
    sweep(sweep_dir, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1")
    cores = len(os.sched_getaffinity(0))
    for job in (0, 1):
        summary = RunRecord(sweep_dir / str(job)).read_summary()
        assert summary["status"] == "completed"
        assert summary["num_threads"] == max(1, cores // 2)
    assert len(summary_rows(sweep_dir)) == 2


def test_submitit_local_runs_the_cluster_code_path(tmp_path):
    sweep_dir = tmp_path / "sweep"
    sweep(sweep_dir, "hydra/launcher=submitit_local", "seed=0,1")
    assert (sweep_dir / ".submitit").is_dir()
    cores = len(os.sched_getaffinity(0))
    for job in (0, 1):
        summary = RunRecord(sweep_dir / str(job)).read_summary()
        assert summary["status"] == "completed" and summary["num_threads"] == max(1, cores // 2)


@pytest.fixture(scope="module")
def failed_sweep(tmp_path_factory):
    sweep_dir = tmp_path_factory.mktemp("failing") / "sweep"
    result = sweep(sweep_dir, f"model.depth=[4,8],{TOO_DEEP},[8,16]", expect_rc=1)
    return sweep_dir, result


def test_a_failed_job_does_not_stop_the_others(failed_sweep):
    sweep_dir, result = failed_sweep
    assert f"1 of 3 jobs failed:\n  job 1 (model.depth={TOO_DEEP}" in result.stderr
    assert "Traceback" not in result.stderr.split("1 of 3 jobs failed")[1]
    rows = {r["run"]: r for r in summary_rows(sweep_dir)}
    assert [rows[j]["status"] for j in "012"] == ["completed", "failed", "completed"]
    assert "has 5 conv blocks" in rows["1"]["error"]
    failed = RunRecord(sweep_dir / "1").read_summary()
    assert failed["status"] == "failed" and "Invalid config value model.depth" in failed["error"]
    assert "failed" in (sweep_dir / "sweep_summary.md").read_text()


def record_files(job_dir):
    return {name: ((job_dir / name).stat().st_mtime_ns, (job_dir / name).read_bytes())
            for name in ("metrics.csv", "summary.json", "checkpoint.pt")}


def test_resumed_sweep_reruns_only_what_did_not_complete(failed_sweep):
    sweep_dir, _ = failed_sweep
    before = {j: record_files(sweep_dir / j) for j in "02"}
    # the same sweep, its overrides typed in another order
    result = sweep(sweep_dir, *reversed(TINY), f"model.depth=[4,8],{TOO_DEEP},[8,16]",
                   expect_rc=1)
    assert "2 of 3 jobs completed earlier and are skipped" in result.stdout + result.stderr
    assert {j: record_files(sweep_dir / j) for j in "02"} == before
    assert "#0 :" not in result.stdout + result.stderr and "#1 :" in result.stdout + result.stderr
    assert len(summary_rows(sweep_dir)) == 3


def test_optuna_study_continues_and_tolerates_failed_trials(tmp_path):
    optuna = pytest.importorskip("optuna")

    sweep_dir = tmp_path / "study"
    sweep(sweep_dir, "+sweep=optuna", "hydra.sweeper.n_trials=3")
    assert (sweep_dir / "optuna.db").is_file()
    first = {j: record_files(sweep_dir / j) for j in "012"}
    sweep(sweep_dir, "+sweep=optuna", "hydra.sweeper.n_trials=2", f"model.depth={TOO_DEEP}")
    study = optuna.load_study(study_name="mnist_lab", storage=f"sqlite:///{sweep_dir}/optuna.db")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3 + ["FAIL"] * 2
    assert sorted(p.name for p in sweep_dir.iterdir() if p.name.isdigit()) == list("01234")
    assert {j: record_files(sweep_dir / j) for j in "012"} == first
    rows = {r["run"]: r for r in summary_rows(sweep_dir)}
    assert [rows[j]["status"] for j in "01234"] == ["completed"] * 3 + ["failed"] * 2
    assert study.best_value == min(float(rows[j]["val/best_error"]) for j in "012")


def test_an_optuna_sweep_without_the_extra_says_what_to_install(tmp_path):
    hide = ("import runpy, sys; sys.modules['optuna'] = None; "
            "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", hide, str(REPO / "run.py"), "-m",
                             "+sweep=optuna", f"hydra.sweep.dir={tmp_path}/study"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("Error: the Optuna sweeper needs the optuna extra: "
                             "pip install -c constraints.txt -e '.[optuna]'\n")
    assert not (tmp_path / "study").exists()


def test_a_continued_optuna_study_proposes_new_points(tmp_path):
    optuna = pytest.importorskip("optuna")
    from hydra_plugins.mnist_lab_sweepers.optuna import continuation_seed

    sweep_dir = tmp_path / "study"
    for _ in range(2):
        sweep(sweep_dir, "+sweep=optuna", "hydra.sweeper.n_trials=2")
    study = optuna.load_study(study_name="mnist_lab", storage=f"sqlite:///{sweep_dir}/optuna.db")
    points = [t.params for t in study.trials]
    assert len(points) == 4 and len({tuple(sorted(p.items())) for p in points}) == 4, points
    sweeper = OmegaConf.load(REPO / "conf/sweep/optuna.yaml").hydra.sweeper
    searched = study.trials[0].distributions  # all but optimizer.lr, which TINY fixes
    space = {name: searched[name] for name in sweeper.params if name in searched}
    seed = sweeper.sampler.seed
    assert points[:2] == first_proposals(optuna, seed, space)
    assert points[2:] == first_proposals(optuna, continuation_seed(seed, 2), space)


def first_proposals(optuna, seed, space, n=2):
    """The first n points a fresh TPE sampler with this seed proposes.

    ``space``: name -> distribution, in the order the sweeper suggests them
    (the order of ``params`` in conf/sweep/optuna.yaml), as the draws follow it.
    """
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    return [study.ask(space).params for _ in range(n)]
