"""Shared fixtures: the real MNIST files, config composition, short real runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import mnist_lab.config  # noqa: F401  (registers the schemas and resolvers)
from mnist_lab.job import JobInfo
from mnist_lab.tracking.base import Tracker

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"
# Relative to where pytest was launched (README: MNIST_LAB_DATA=../shared/mnist), made
# absolute below so that subprocesses started in other folders find it too.
DATA_ROOT = Path(os.environ.get("MNIST_LAB_DATA", REPO.parent / "shared" / "mnist")).resolve()
# Short, real runs: 300 steps at lr 0.01 (the seed lr 0.001 needs more steps).
FAST = ["trainer.max_steps=300", "optimizer.lr=0.01", "trainer.progress=false"]
SHORT = FAST + ["logger=none"]


def pytest_configure(config: pytest.Config) -> None:
    os.environ["MNIST_LAB_DATA"] = str(DATA_ROOT)
    os.environ.setdefault("MNIST_LAB_CACHE", tempfile.mkdtemp(prefix="mnist_lab_cache_"))
    os.environ.setdefault("WANDB_SILENT", "true")


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


def compose_config(overrides: list[str] = (), return_hydra_config: bool = False):
    """Compose conf/config.yaml with overrides, as Hydra does for run.py."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides),
                       return_hydra_config=return_hydra_config)


def run_training(run_dir: Path, overrides: list[str], extra_trackers=(), multirun=False):
    """Run one real experiment in this process (as run.py would) and return its objective."""
    from mnist_lab.settings import to_settings
    from mnist_lab.experiment import run_experiment

    cfg = compose_config(overrides)
    job = JobInfo(run_dir=run_dir, overrides=list(overrides), multirun=multirun,
                  config=OmegaConf.to_container(cfg, resolve=True))
    return run_experiment(to_settings(cfg), job, list(extra_trackers))


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
    line, deadline = "", 240
    while "mnist_lab app:" not in line and app.poll() is None and deadline > 0:
        ready, _, _ = select.select([app.stdout], [], [], 1.0)
        line = app.stdout.readline() if ready else line
        deadline -= 0 if ready else 1
    if "mnist_lab app:" not in line:
        app.kill()
        pytest.fail(f"the app did not start: {line!r}\n{log.read_text()[-3000:]}")
    yield line.split()[2]
    app.terminate()
    app.wait(timeout=30)
