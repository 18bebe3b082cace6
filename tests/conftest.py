"""Shared fixtures: the real MNIST files, config composition, short real runs."""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import mnist_lab.config.schema  # noqa: F401  (registers the schemas and resolvers)
from mnist_lab.config.job import JobInfo
from mnist_lab.training.tracking.base import Tracker

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"
# Relative to where pytest was launched (README: MNIST_LAB_DATA=../shared/mnist), made
# absolute below so that subprocesses started in other folders find it too.
DATA_ROOT = Path(os.environ.get("MNIST_LAB_DATA", REPO.parent / "shared" / "mnist")).resolve()
TESTS_CONF = REPO / "tests" / "conf"  # data=tiny (tests/tiny_data.py)
# Short, real runs: 300 steps at lr 0.01 (the seed lr 0.001 needs more steps), on the tiny
# MNIST (the first 2,000 training and 1,000 test images of the real files).
FAST = ["trainer.max_steps=300", "optimizer.lr=0.01", "trainer.progress=false", "data=tiny"]
SHORT = FAST + ["logger=none"]


def pytest_configure(config: pytest.Config) -> None:
    os.environ["MNIST_LAB_DATA"] = str(DATA_ROOT)
    os.environ.setdefault("MNIST_LAB_CACHE", tempfile.mkdtemp(prefix="mnist_lab_cache_"))
    os.environ.setdefault("WANDB_SILENT", "true")
    if (DATA_ROOT / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        from tiny_data import write_tiny

        tiny = write_tiny(DATA_ROOT, Path(tempfile.mkdtemp(prefix="mnist_lab_tiny_")))
        os.environ["MNIST_LAB_TINY_DATA"] = str(tiny)
        os.environ["MNIST_LAB_TRUST"] = "tiny_data"  # evaluate, predict, the app: the tests' own
        os.environ["PYTHONPATH"] = os.pathsep.join(  # and run.py, for runs of the tiny MNIST
            filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")]))


def run_py(*args: str, cwd: Path, timeout: float = 300, env: dict | None = None,
           popen: bool = False):
    """``python run.py ARGS`` in ``cwd``, as a user runs it (output captured as text).

    Returns the CompletedProcess, or with ``popen`` the running Popen.
    """
    command = [sys.executable, str(REPO / "run.py"), *args]
    options = dict(cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if popen:
        return subprocess.Popen(command, **options)
    return subprocess.run(command, timeout=timeout, **options)


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not (DATA_ROOT / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.fail(f"The real MNIST files are needed: set MNIST_LAB_DATA (tried {DATA_ROOT})")
    return DATA_ROOT


def readme_example(heading: str, folder: Path) -> str:
    """Write the files of the README section ``heading`` into ``folder`` (a code block whose
    first line is ``# <path>``) and return its bash block: a section run as written."""
    section = (REPO / "README.md").read_text().split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, re.S)
    for _, block in blocks:
        first = block.splitlines()[0]
        if first.startswith("# ") and "." in first:  # a file: its path on the first line
            path = folder / first[2:].strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block)
    return next(b for lang, b in blocks if lang == "bash")


def compose_config(overrides: list[str] = (), return_hydra_config: bool = False):
    """Compose conf/config.yaml with overrides, as Hydra does for run.py (the tests'
    own config folder, ``tests/conf``, on the search path for ``data=tiny``)."""
    searched = any(o.startswith("hydra.searchpath=") for o in overrides)
    extra = [] if searched else [f"hydra.searchpath=[file://{TESTS_CONF}]"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=[*overrides, *extra],
                       return_hydra_config=return_hydra_config)


def run_training(run_dir: Path, overrides: list[str], extra_trackers=(), multirun=False):
    """Run one real experiment in this process (as run.py would) and return its objective."""
    from mnist_lab.config.settings import to_settings
    from mnist_lab.training.run import run_experiment

    cfg = compose_config(overrides)
    job = JobInfo(run_dir=run_dir, overrides=list(overrides), multirun=multirun,
                  config=OmegaConf.to_container(cfg, resolve=True))
    return run_experiment(to_settings(cfg), job, list(extra_trackers))


def metrics_without_time(run_dir: Path) -> list[dict[str, float]]:
    """A run's ``metrics.csv`` rows without ``elapsed_s``, the one column equal runs differ in."""
    from mnist_lab.record.folder import RunRecord

    return [{k: v for k, v in row.items() if k != "elapsed_s"}
            for row in RunRecord(run_dir).read_metrics()]


def final_weights(run_dir: Path) -> dict:
    """The model ``state_dict`` in a run's ``checkpoint.pt``."""
    import torch

    return torch.load(Path(run_dir) / "checkpoint.pt", weights_only=True)["model_state"]


def wait_for(condition, timeout: float = 120, what: str = "the condition",
             poll_s: float = 0.05) -> None:
    """Poll ``condition()`` until true; fail after ``timeout`` seconds, naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll_s)


def summary_rows(sweep_dir: Path) -> list[dict[str, str]]:
    """The rows of a sweep's ``sweep_summary.csv``."""
    with open(Path(sweep_dir) / "sweep_summary.csv") as f:
        return list(csv.DictReader(f))


def wandb_run(run_dir: Path):
    """The W&B run a run's ``tracker.json`` names, read back from its offline files."""
    from mnist_lab.record.folder import RunRecord
    from mnist_lab.training.tracking import wandb_files as wf

    run_id = RunRecord(run_dir).read_tracker_state()["wandb_run_id"]
    return wf.read_runs(wf.find_run_files(Path(run_dir) / "wandb", run_id))


def linked_root(folder: Path, data_root: Path, damaged: str | None = None) -> Path:
    """Another data root holding links to the real MNIST files (as on another mount),
    or with a damaged copy of the file ``damaged`` (one byte changed)."""
    from mnist_lab.data.integrity import RAW_FILES

    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES:
        if name == damaged:
            shutil.copyfile(data_root / "MNIST" / "raw" / name, raw / name)
            with open(raw / name, "r+b") as f:
                f.seek(100)
                f.write(b"\x07")
        else:
            (raw / name).symlink_to(data_root / "MNIST" / "raw" / name)
    return folder


class StopAt(Tracker):
    """Sends the process a real SIGINT shortly after the evaluation at ``step`` (mid-window)."""

    def __init__(self, step: int):
        self.step = step

    def log_evaluation(self, row, images_per_s, model):
        if row["step"] == self.step:
            threading.Timer(0.02, os.kill, (os.getpid(), signal.SIGINT)).start()


def data_root_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and mtime (to prove nothing was written)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))} | {".": (0, root.stat().st_mtime_ns)}


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    """A copy of a run folder written by mnist_lab 90f9aef (``tests/fixtures/run_90f9aef``:
    ConvNet [2,4] with FC 16, 40 steps at lr 0.05, logger=none), free to change."""
    return Path(shutil.copytree(REPO / "tests" / "fixtures" / "run_90f9aef", tmp_path / "run"))


@pytest.fixture(scope="session")
def short_run(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """One real 300-step run shared by the tests that read a finished run's record."""
    run_dir = tmp_path_factory.mktemp("short_run")
    before = data_root_state(data_root)
    run_training(run_dir, SHORT)
    assert data_root_state(data_root) == before, "the run wrote into the data root"
    return run_dir


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """Offline, silent wandb whose every file lands under ``tmp_path`` (HOME included).

    wandb reads the environment once per process, so it is torn down before and
    after; teardown also waits until wandb-core has written the run files.
    """
    import wandb

    home = tmp_path / "home"
    home.mkdir()
    for key in ("WANDB_API_KEY", "WANDB_RUN_ID", "WANDB_RESUME", "WANDB_PROJECT",
                "WANDB_ENTITY", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    env = {"HOME": home, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "WANDB_DISABLE_GIT": "true", "WANDB__DISABLE_STATS": "true",
           "WANDB_CONFIG_DIR": tmp_path / "wandb_config", "WANDB_CACHE_DIR": tmp_path / "cache",
           "WANDB_DATA_DIR": tmp_path / "wandb_data"}
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    wandb.teardown()
    yield home
    if wandb.run is not None:
        wandb.run.finish()
    wandb.teardown()


# -- the app (issue 11): a second, batch-normalised run, and the page served -------------

@pytest.fixture(scope="session")
def bn_run(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """A tiny real run of the recogniser's batch-normalised model (40 steps)."""
    run_dir = tmp_path_factory.mktemp("bn_run")
    run_training(run_dir, ["model=convnet_bn", "model.depth=[8,16]", "trainer.max_steps=40",
                           "trainer.eval_every=20", "optimizer.lr=0.05", *SHORT[2:]])
    return run_dir


@pytest.fixture(scope="session")
def mlp_run(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """A tiny real run of a model without convolutions (the MLP, 20 steps)."""
    run_dir = tmp_path_factory.mktemp("mlp_run")
    run_training(run_dir, ["model=mlp", "trainer.max_steps=20", "trainer.eval_every=10",
                           "optimizer.lr=0.05", *SHORT[2:]])
    return run_dir


@pytest.fixture(scope="session")
def app_url(short_run: Path, bn_run: Path, mlp_run: Path,
            tmp_path_factory: pytest.TempPathFactory):
    """``python -m mnist_lab.app SHORT_RUN BN_RUN MLP_RUN`` serving on a free port: its URL.

    Skips (with the reason) where Gradio is not installed.
    """
    pytest.importorskip("gradio", reason="the app needs Gradio: pip install -e '.[app]'")
    import select
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("app") / "app.log"
    app = subprocess.Popen([sys.executable, "-m", "mnist_lab.app", str(short_run), str(bn_run),
                            str(mlp_run), "--port", str(port)], cwd=REPO, text=True,
                           stdout=subprocess.PIPE, stderr=open(log, "w"))
    line, deadline = "", time.monotonic() + 240  # wall-clock seconds, however much it prints
    while "mnist_lab app:" not in line and app.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([app.stdout], [], [], 1.0)
        line = app.stdout.readline() if ready else line
    if "mnist_lab app:" not in line:
        app.kill()
        pytest.fail(f"the app did not start: {line!r}\n{log.read_text()[-3000:]}")
    yield line.split()[2]
    app.terminate()
    app.wait(timeout=30)
