"""The Optuna sweeper's parts that need no run: real Optuna studies in a temporary
folder, records written as runs write them, the GPU assignment without GPUs."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from mnist_lab.record.folder import RunRecord, Status
from mnist_lab.sweeps.plumbing import (SweepFailed, device_slots, is_done, pending_jobs,
                                       skipped_note, waves, with_devices)
from mnist_lab.sweeps.summary import pareto_front
from mnist_lab.sweeps.runs import find_runs

optuna = pytest.importorskip("optuna")
from mnist_lab.sweeps import optuna_study as os_  # noqa: E402  (needs the extra)
from mnist_lab.sweeps.trial import (STORAGE_ENV, STUDY_ENV, TRIAL_ENV, PruneOnReport,  # noqa: E402
                                    open_storage, trial_stop_rules)

JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
BASIC = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


def write_record(job_dir: Path, status: str, overrides: list[str], **fields) -> None:
    RunRecord(job_dir).write_summary({"status": status, "overrides": overrides, **fields})


# -- resume: what a resumed sweep launches again -----------------------------------------

def test_a_resumed_sweep_skips_completed_pruned_and_diverged_jobs_only(tmp_path):
    jobs = [[f"seed={i}"] for i in range(6)]
    for i, status in enumerate(["completed", "pruned", "diverged", "failed", "interrupted"]):
        write_record(tmp_path / str(i), status, jobs[i])
    write_record(tmp_path / "5", "completed", ["seed=99"])  # another sweep's record: not ours
    assert pending_jobs(tmp_path, jobs) == [3, 4, 5]
    assert [is_done(tmp_path / str(i), jobs[i]) for i in range(6)] == [True] * 3 + [False] * 3
    assert skipped_note(tmp_path, jobs, [3, 4, 5]) == (
        "3 of 6 jobs are skipped: 3 ended earlier (1 completed, 1 pruned, 1 diverged).")
    assert skipped_note(tmp_path, jobs, [1, 2, 3, 4, 5]) == (
        "1 of 6 jobs completed earlier and are skipped.")


def test_a_device_the_sweeper_gave_a_job_does_not_make_it_another_job(tmp_path):
    write_record(tmp_path / "0", "completed", ["seed=0", "trainer.device=cuda:1"])
    assert is_done(tmp_path / "0", ["seed=0"])  # the sweeper's device, not the job's own
    assert not is_done(tmp_path / "0", ["seed=0", "trainer.device=cuda:0"])


# -- one GPU per running job -------------------------------------------------------------

def launcher(target: str, **keys) -> OmegaConf:
    return OmegaConf.create({"_target_": target, **keys})


@pytest.mark.parametrize("n_jobs,gpus,batch,slots,wave_sizes", [
    (2, 4, 5, [0, 1, 0, 1, 0], [2, 2, 1]),  # 2 workers: each wave of 2 on 2 distinct GPUs
    (4, 2, 5, [0, 1, 0, 1, 0], [2, 2, 1]),  # more workers than GPUs: waves of 2
    (3, 3, 3, [0, 1, 2], [3]),
    (2, 1, 3, [None] * 3, [3]),              # one GPU: every job on it (trainer.device=auto)
    (2, 0, 3, [None] * 3, [3]),              # no GPU: the CPU
])
def test_joblib_jobs_running_at_once_get_distinct_gpus(n_jobs, gpus, batch, slots, wave_sizes):
    cfg = launcher(JOBLIB, n_jobs=n_jobs)
    assert device_slots(cfg, batch, gpus) == slots
    split = waves(list(range(10, 10 + batch)), cfg, gpus)
    assert [len(w) for w in split] == wave_sizes and sum(split, []) == list(range(10, 10 + batch))
    for wave in split:  # the jobs of a wave run at once: never two on one GPU
        given = device_slots(cfg, len(wave), gpus)
        assert None in given or len(set(given)) == len(given)


def test_other_launchers_get_no_device_and_a_job_keeps_its_own():
    assert device_slots(launcher(BASIC), 3, 4) == [None] * 3
    cfg = launcher(JOBLIB, n_jobs=2)
    jobs = [["seed=0"], ["seed=1", "trainer.device=cpu"], ["seed=2"]]
    assert with_devices(jobs, cfg, 2) == [["seed=0", "trainer.device=cuda:0"],
                                         ["seed=1", "trainer.device=cpu"],
                                         ["seed=2", "trainer.device=cuda:0"]]
    # a resumed job keeps the device it began with (its overrides must stay the same)
    assert with_devices([["seed=0"]], cfg, 2, [["seed=0", "trainer.device=cuda:1"]]) == [
        ["seed=0", "trainer.device=cuda:1"]]


# -- search space, objectives, refusals ----------------------------------------------------

def parse(*overrides: str):
    return OverridesParser.create().parse_overrides(list(overrides))


def test_hydra_sweep_syntax_becomes_optuna_distributions():
    d = optuna.distributions
    space, fixed = os_.search_space(parse(
        "optimizer.lr=tag(log, interval(0.001, 0.3))", "model.depth=choice([4,8],[8,16])",
        "seed=range(1,10,3)", "data.batch_size=choice(32,64)", "optimizer.momentum=0.9",
        "data.batch_size=128"))  # the command's plain value fixes what params searched
    assert space == {"optimizer.lr": d.FloatDistribution(0.001, 0.3, log=True),
                     "model.depth": d.CategoricalDistribution(["[4,8]", "[8,16]"]),
                     "seed": d.IntDistribution(1, 7, step=3)}  # range excludes its stop
    assert fixed == {"optimizer.momentum": "0.9", "data.batch_size": "128"}
    assert os_.trial_overrides({"model.depth": "[4,8]"}, {"seed": "1"}) == [
        "seed=1", "model.depth=[4,8]"]
    with pytest.raises(SweepFailed, match=r"seed: tags \['log'\] are not understood"):
        os_.search_space(parse("seed=tag(log, range(1,10))"))


def test_objectives_and_refusals_say_what_to_type():
    assert os_.objective_keys(["val_error", "params"]) == ["val/best_error", "model/params"]
    with pytest.raises(SweepFailed, match=r"objectives=\['val_eror'\]: give one or more"):
        os_.objective_keys(["val_eror"])
    assert os_.check_directions("minimize", 2) == ["minimize"] * 2
    with pytest.raises(SweepFailed, match="every objective is minimised"):
        os_.check_directions("maximize", 1)
    median = {"_target_": "optuna.pruners.MedianPruner"}
    with pytest.raises(SweepFailed) as refused:
        os_.check_pruner(median, ["val_error", "params"], "sqlite:////x.db")
    assert str(refused.value) == ("Optuna cannot prune a study of 2 objectives (val_error, "
                                  "params): use hydra/sweeper/pruner=none, or one objective.")
    with pytest.raises(SweepFailed, match="needs a storage its jobs can open"):
        os_.check_pruner(median, ["val_error"], None)
    assert os_.check_pruner({"_target_": "optuna.pruners.NopPruner"}, ["val_error", "params"],
                            None) is False


def test_the_optuna_preset_prunes_with_the_median_pruner_and_tpe_by_default():
    from conftest import compose_config

    sweeper = compose_config(["+sweep=optuna"], return_hydra_config=True).hydra.sweeper
    assert sweeper.pruner._target_ == "optuna.pruners.MedianPruner"  # experiments/pruning
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler" and sweeper.sampler.seed == 0
    assert sweeper.storage == "auto" and list(sweeper.objectives) == ["val_error"]
    none = compose_config(["+sweep=optuna", "hydra/sweeper/pruner=none"], return_hydra_config=True)
    assert none.hydra.sweeper.pruner._target_ == "optuna.pruners.NopPruner"


def test_auto_storage_is_the_folders_study_else_journal_on_slurm(tmp_path):
    slurm = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert os_.resolve_storage("auto", tmp_path, BASIC) == f"sqlite:///{tmp_path}/optuna.db"
    assert os_.resolve_storage("auto", tmp_path, slurm) == f"journal:{tmp_path}/optuna.journal"
    (tmp_path / "optuna.db").touch()  # a study begun with sqlite stays there
    assert os_.resolve_storage("auto", tmp_path, slurm) == f"sqlite:///{tmp_path}/optuna.db"
    assert os_.resolve_storage("journal", tmp_path, BASIC) == f"journal:{tmp_path}/optuna.journal"
    assert os_.resolve_storage("sqlite:///rel/s.db", tmp_path, BASIC) == \
        f"sqlite:///{Path.cwd() / 'rel/s.db'}"
    assert os_.resolve_storage(None, tmp_path, BASIC) is None


# -- the trial channel: a second storage handle reports and prunes -------------------------

def median_study(storage: str):
    study = optuna.create_study(study_name="s", storage=storage,
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    for curve in ([0.5, 0.3], [0.6, 0.4]):  # two finished trials set the median
        trial = study.ask()
        for step, value in zip((10, 20), curve):
            trial.report(value, step)
        study.tell(trial, curve[-1])
    return study


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_job_opens_its_trial_by_id_reports_and_is_pruned(tmp_path, monkeypatch, kind):
    storage = os_.resolve_storage(kind, tmp_path, BASIC)
    study = median_study(open_storage(storage))  # the sweep's handle
    asked = study.ask()
    monkeypatch.setenv(TRIAL_ENV, str(asked._trial_id))
    monkeypatch.setenv(STORAGE_ENV, storage)
    monkeypatch.setenv(STUDY_ENV, "s")
    sweeper = OmegaConf.create({"pruner": {"_target_": "optuna.pruners.MedianPruner",
                                           "n_startup_trials": 2}})
    [rule] = trial_stop_rules(sweeper)  # its own storage handle, as in a job's process
    assert isinstance(rule, PruneOnReport)
    assert rule.check([{"step": 10, "val/error": 0.45}]) is None  # better than the median
    stop = rule.check([{"step": 10, "val/error": 0.45}, {"step": 20, "val/error": 0.9}])
    assert stop.status is Status.PRUNED and "median pruner" in stop.reason
    assert "val/error 0.9000 at step 20" in stop.reason
    again = trial_stop_rules(sweeper)[0]  # a requeued job: the same trial, steps not twice
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert again.check([{"step": 10, "val/error": 0.1}, {"step": 20, "val/error": 0.9}])
    seen = optuna.load_study(study_name="s", storage=study._storage).trials[2]
    assert seen.intermediate_values == {10: 0.45, 20: 0.9}
    monkeypatch.delenv(TRIAL_ENV)
    assert trial_stop_rules(sweeper) == []  # a job without a trial: no rule


# -- settling trials a stopped invocation left running --------------------------------------

def test_trials_left_running_are_told_from_their_records_or_launched_again(tmp_path):
    storage = os_.resolve_storage("sqlite", tmp_path, BASIC)
    study = optuna.create_study(study_name="s", storage=storage)
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    trials = [study.ask(space) for _ in range(5)]
    trials[1].report(0.7, 10)
    records = {0: ("completed", {"val/best_error": 0.25}), 1: ("pruned", {}),
               2: ("diverged", {}), 3: ("interrupted", {})}  # 4: never started
    for n, (status, fields) in records.items():
        write_record(tmp_path / str(n), status, [f"x={trials[n].params['x']}", "seed=3"],
                     **fields)
    again = os_.leftover_trials(study, tmp_path, ["val/best_error"], {"seed": "3"})
    assert [(t.number, t.overrides) for t in again] == [
        (3, [f"x={trials[3].params['x']}", "seed=3"]),  # as recorded: it resumes
        (4, ["seed=3", f"x={trials[4].params['x']}"])]
    states = [(t.state.name, t.values) for t in study.trials]
    assert states == [("COMPLETE", [0.25]), ("PRUNED", [0.7]), ("FAIL", None),
                      ("RUNNING", None), ("RUNNING", None)]


def test_the_pareto_front_is_what_optuna_calls_best_trials(tmp_path):
    points = [(0.10, 900), (0.12, 500), (0.11, 950), (0.30, 100), (0.12, 500), (0.20, 600)]
    study = optuna.create_study(directions=["minimize"] * 2)
    for i, (error, params) in enumerate(points):
        write_record(tmp_path / str(i), "completed", [f"seed={i}"],
                     **{"val/best_error": error, "model/params": params})
        study.add_trial(optuna.trial.create_trial(values=[error, params]))
    write_record(tmp_path / "6", "pruned", ["seed=6"])
    front = pareto_front(find_runs([tmp_path]), ["val/best_error", "model/params"])
    assert sorted(int(p.name) for p, _ in front) == sorted(t.number for t in study.best_trials)
    assert [v for _, v in front] == [[0.10, 900], [0.12, 500], [0.12, 500], [0.30, 100]]
