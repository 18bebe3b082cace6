"""Config composition, schemas and value checks (Hydra's own style: compose every file)."""

import re
import subprocess
import sys

import pytest
from hydra.errors import ConfigCompositionException

from conftest import CONF, REPO, compose_config
from mnist_lab.training.optimizers import SGDConfig
from mnist_lab.models.convnet import ConvNetConfig
from mnist_lab.config.settings import to_settings
from mnist_lab.errors import ConfigError

GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name != "hydra")


def group_options():
    for group in GROUPS:
        for option in sorted((CONF / group).glob("*.yaml")):
            prefix = "+" if group == "sweep" else ""
            yield f"{prefix}{group}={option.stem}"


@pytest.mark.parametrize("override", list(group_options()))
def test_every_config_file_composes_and_validates(override):
    with_hydra = compose_config([override], return_hydra_config=True)
    assert with_hydra.hydra.run.dir.startswith("outputs/")  # the interpolation resolves
    settings = to_settings(compose_config([override]))
    assert settings.data.batch_size >= 1


def test_defaults_are_the_seed_protocol():
    s = to_settings(compose_config())
    seed = to_settings(compose_config(["experiment=seed"]))
    assert s == seed
    assert isinstance(s.model, ConvNetConfig) and isinstance(s.optimizer, SGDConfig)
    assert (s.model.depth, s.model.kernel_size, s.model.fc_width, s.model.dropout) == (
        [4, 8], 5, 512, 0.5)
    assert (s.optimizer.lr, s.optimizer.momentum) == (0.001, 0.9)
    assert s.scheduler._target_ == "mnist_lab.training.schedules.Constant"
    assert (s.data.batch_size, s.data.val_size, s.data.normalize) == (64, 5000, False)
    assert (s.trainer.epochs, s.trainer.eval_every, s.seed) == (20, 100, 0)
    assert not s.data.augment.enabled


@pytest.mark.parametrize("override", ["model.depth=abc", "model.depth=[4,x]",
                                      "trainer.epochs=1.5", "data.batch_size=big"])
def test_wrong_types_fail_at_composition(override):
    with pytest.raises(ConfigCompositionException) as info:
        compose_config([override])
    assert override.split("=")[0] in str(info.value.__cause__ or info.value)


BAD_VALUES = [
    ("model.depth=[]", "model.depth", "non-empty"),
    ("model.depth=[4,0]", "model.depth", "positive"),
    ("model.depth=[2,2,2,2,2]", "model.depth", "at most 4"),
    ("data.batch_size=0", "data.batch_size", ">= 1"),
    ("trainer.epochs=0", "trainer.epochs", ">= 1"),
    ("optimizer.lr=0", "optimizer.lr", "> 0"),
    ("optimizer.lr=-0.1", "optimizer.lr", "> 0"),
    ("model.dropout=1.0", "model.dropout", "[0, 1)"),
    ("model.dropout=-0.1", "model.dropout", "[0, 1)"),
    ("data.val_size=0", "data.val_size", "1..9999"),
    ("data.val_size=10000", "data.val_size", "1..9999"),
    ("trainer.device=tpu", "trainer.device", "auto, cpu, cuda"),
    ("model.kernel_size=4", "model.kernel_size", "odd"),
    ("trainer.eval_every=0", "trainer.eval_every", ">= 1"),
    ("seed=-1", "seed", ">= 0"),
]


@pytest.mark.parametrize("override,key,allowed", BAD_VALUES)
def test_bad_values_name_key_value_and_range(override, key, allowed):
    with pytest.raises(ConfigError) as info:
        to_settings(compose_config([override]))
    message = str(info.value)
    value = override.split("=", 1)[1]
    assert message.startswith(f"Invalid config value {key}=")
    assert value.replace(",", ", ").strip("[]") in message.replace("'", "")
    assert allowed in message


@pytest.mark.parametrize("override,message", [
    ("+trainer.epoch=1", "trainer.epoch=1: no such key (did you mean trainer.epochs?)"),
    ("+model.widht=8", "model.widht=8: no such key (did you mean model.fc_width?)"),
    ("+data.augment.rotate=3", "data.augment.rotate=3: no such key (did you mean "
                               "data.augment.rotation_deg?)"),
])
def test_a_key_added_with_plus_must_exist(override, message):
    """Hydra lets ``+`` add a key a schema lacks; it would change nothing, so it is refused."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        to_settings(compose_config([override]))


def test_cuda_where_none_exists():
    import torch

    from mnist_lab.training.runtime import resolve_device

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match=r"trainer.device='cuda'.*no such CUDA device"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_run_directories_are_unique_and_resume_reuses_one(tmp_path):
    first = compose_config(return_hydra_config=True).hydra.run.dir
    second = compose_config(return_hydra_config=True).hydra.run.dir
    assert first != second and first.startswith("outputs/")
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    resumed = compose_config([f"trainer.resume={tmp_path}"], return_hydra_config=True)
    assert resumed.hydra.run.dir == str(tmp_path)
    # a path that holds no run is not used (and so never created or written into)
    typo = compose_config([f"trainer.resume={tmp_path}/typo"], return_hydra_config=True)
    assert typo.hydra.run.dir.startswith("outputs/")


@pytest.mark.slow
@pytest.mark.parametrize("override,expect", [
    ("model.depth=[]", "Invalid config value model.depth=[]"),
    ("data.val_size=10000", "Invalid config value data.val_size=10000"),
])
def test_single_run_prints_the_message_alone_and_exits_2(tmp_path, override, expect):
    result = subprocess.run(
        [sys.executable, str(REPO / "run.py"), override, f"hydra.run.dir={tmp_path}/run"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert expect in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "run" / "summary.json").exists(), "a refused command writes no record"


def files_of(run_dir):
    """Every file below ``run_dir`` with its bytes (Hydra's log, empty if absent)."""
    files = {str(p.relative_to(run_dir)): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    return {**files, "run.log": files.get("run.log", b"")}


@pytest.mark.slow
def test_a_refused_or_idle_resume_leaves_the_run_and_the_path_alone(short_run, tmp_path):
    before = files_of(short_run)
    for overrides, rc, expect in (
        ([f"trainer.resume={short_run}", "trainer.epochs=0"], 2, "trainer.epochs=0"),
        ([f"trainer.resume={short_run}", "model.depth=[8,16]"], 2, "keeps its own settings"),
        ([f"trainer.resume={short_run}", "experiment=mlp"], 2, "started with no preset"),
        ([f"trainer.resume={tmp_path}/typo"], 2, "holds no checkpoint.pt"),
        ([f"trainer.resume={short_run}"], 0, "is complete (300 steps): nothing to do"),
    ):
        result = subprocess.run([sys.executable, str(REPO / "run.py"), *overrides, "logger=none"],
                                capture_output=True, text=True, timeout=120, cwd=tmp_path)
        out = result.stdout + result.stderr
        assert result.returncode == rc and expect in (result.stderr if rc else out), out
        assert "Traceback" not in out and ("Run record" in out) == (rc == 0)
    after = files_of(short_run)
    assert after.pop("run.log").count(b"Run record") == 1  # the idle resume's own line
    before.pop("run.log")
    assert after == before
    assert not (tmp_path / "typo").exists()
