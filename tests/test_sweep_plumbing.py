"""Sweep plumbing that needs no run: threads per job, launching only what is pending."""

import os

import pytest
from omegaconf import OmegaConf

from mnist_lab.training.runtime import default_num_threads
from mnist_lab.sweeps.plumbing import contiguous, thread_shares
from mnist_lab.sweeps.runs import effective_overrides



@pytest.mark.parametrize("target,n_jobs,batch,expected", [
    ("hydra._internal.core_plugins.basic_launcher.BasicLauncher", None, 3, [None] * 3),
    ("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", 2, 5,
     ["half"] * 4 + ["all"]),
    ("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", 2, 1, ["all"]),
    ("hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher", None, 2, ["half"] * 2),
    ("hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher", None, 2, [None] * 2),
])
def test_thread_shares_divide_the_cores_among_jobs_running_at_once(
        monkeypatch, target, n_jobs, batch, expected):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})  # a 2-core machine
    launcher = OmegaConf.create({"_target_": target, **({"n_jobs": n_jobs} if n_jobs else {})})
    sizes = {"all": 2, "half": 1, None: None}
    assert thread_shares(launcher, batch) == [sizes[e] for e in expected]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's own cap wins
    assert set(thread_shares(launcher, batch)) <= {1, None}


def test_a_job_takes_the_share_its_sweeper_gave_it(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.delenv("MNIST_LAB_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_num_threads() == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # e.g. set by joblib for its workers
    assert default_num_threads() == 3
    monkeypatch.setenv("MNIST_LAB_NUM_THREADS", "2")
    assert default_num_threads() == 2
    monkeypatch.setenv("MNIST_LAB_NUM_THREADS", "16")  # never more than the usable cores
    assert default_num_threads() == 4


def test_pending_jobs_launch_in_runs_that_keep_their_numbers():
    assert contiguous([0, 1, 2, 5, 6, 9], None) == [(0, [0, 1, 2]), (5, [5, 6]), (9, [9])]
    assert contiguous([0, 1, 2, 3], 2) == [(0, [0, 1]), (2, [2, 3])]
    assert contiguous([], None) == []


def test_a_run_shows_the_trainer_values_it_last_ran_with():
    """``trainer.max_steps=300``, resumed with 600: compare shows 600 (and what the resume added)."""
    summary = {"overrides": ["trainer.max_steps=300", "model.depth=[4,8]", "logger=none"],
               "resumed_with": ["trainer.resume=outputs/r", "trainer.max_steps=600",
                                "trainer.deterministic=true"],
               "config": {"trainer": {"max_steps": 600, "deterministic": True, "resume": "x"}}}
    assert effective_overrides(summary, []) == {
        "trainer.max_steps": "600", "model.depth": "[4,8]", "logger": "none",
        "trainer.deterministic": "true"}
    assert effective_overrides({}, ["seed=1"]) == {"seed": "1"}
