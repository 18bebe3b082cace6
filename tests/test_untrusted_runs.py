"""A run folder from anyone is safe to open (issue 15): nothing it names is imported or
called unless trusted, and crafted files cost one line.

The crafted checkpoints start from a real run folder written by mnist_lab 90f9aef
(``tests/fixtures/run_90f9aef``). Each planted module writes a marker file when it
is imported, so "nothing ran" is checked, not assumed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, run_training
from mnist_lab.config.trust import Trust
from mnist_lab.errors import UserError
from mnist_lab.models.build import load_model

PLANTED = "from pathlib import Path\nPath({marker!r}).write_text('imported')\n" \
          "import torch\nclass Net(torch.nn.Module):\n    def __init__(self, **kw):\n" \
          "        super().__init__()\n"


def craft(run_dir: Path, model_target: str | None = None, optimizer: dict | None = None,
          config_model_target: str | None = None) -> None:
    """Rewrite ``checkpoint.pt`` of ``run_dir`` as an attacker would."""
    path = run_dir / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=True)
    if model_target:
        ckpt["model"]["target"] = model_target
    if config_model_target:
        ckpt["config"]["model"]["_target_"] = config_model_target
    if optimizer:
        ckpt["config"]["optimizer"] = optimizer
    torch.save(ckpt, path)


def plant(folder: Path, name: str, marker: Path) -> None:
    (folder / f"{name}.py").write_text(PLANTED.format(marker=str(marker)))


def test_a_checkpoint_naming_an_untrusted_model_imports_nothing(old_run, tmp_path, monkeypatch):
    plant(tmp_path, "planted_models", tmp_path / "ran")
    monkeypatch.syspath_prepend(str(tmp_path))
    craft(old_run, model_target="planted_models.Net")
    with pytest.raises(UserError) as info:
        load_model(old_run)
    message = str(info.value)
    assert "'planted_models.Net', which is not trusted" in message
    assert "--trust planted_models" in message and "MNIST_LAB_TRUST=planted_models" in message
    assert not (tmp_path / "ran").exists() and "planted_models" not in sys.modules
    with pytest.raises(UserError, match="holds weights that do not fit its model"):
        load_model(old_run, trust=Trust(("planted_models",)))  # trusted: imported, then checked
    assert (tmp_path / "ran").exists()  # trust is what the user gave, and only that


def test_a_prefix_trusts_whole_module_names_only():
    trust = Trust(("my_models",))
    assert trust.allows("my_models.Tiny", "model") and trust.allows("my_models.zoo.Big", "model")
    assert not trust.allows("my_models_evil.X", "model")
    assert not trust.allows("this.X", "model") and not trust.allows("antigravity.X", "model")
    assert Trust().allows("mnist_lab.models.convnet.ConvNet", "model")
    assert not Trust().allows("mnist_lab.models.convnet.ConvNet", "optimizer")
    assert Trust(own=frozenset({"my_models.Tiny"})).allows("my_models.Tiny", "model")
    assert not Trust().allows("os.system; rm", "model") and not Trust().allows(None, "model")


@pytest.mark.slow
@pytest.mark.parametrize("target", ["this.X", "antigravity.X"])
def test_evaluate_refuses_a_standard_library_target_before_importing_it(old_run, target):
    """``this`` prints the Zen of Python when imported, ``antigravity`` opens a browser."""
    craft(old_run, model_target=target)
    env = {**os.environ, "BROWSER": "false"}
    result = subprocess.run([sys.executable, "-c", f"import sys, runpy; "
                             f"sys.argv = ['evaluate', {str(old_run)!r}]; "
                             "runpy.run_module('mnist_lab.evaluate', run_name='__main__'); "
                             "print('imported:', [m for m in ('this', 'antigravity') "
                             "if m in sys.modules])"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Beautiful is better than ugly" not in result.stdout + result.stderr
    assert f"'{target}', which is not trusted" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1  # one line, no traceback


@pytest.mark.slow
def test_a_module_shipped_inside_the_run_folder_never_runs(old_run, tmp_path):
    """``cd RUN && python -m mnist_lab.evaluate .``: python -m puts RUN first on sys.path."""
    plant(old_run, "helpers", tmp_path / "ran")
    craft(old_run, model_target="helpers.Net")
    for trust in ([], ["--trust", "helpers"]):
        result = subprocess.run([sys.executable, "-m", "mnist_lab.evaluate", ".", *trust],
                                cwd=old_run, capture_output=True, text=True, timeout=120,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        assert result.returncode == 2, result.stderr
        assert not (tmp_path / "ran").exists(), trust
    assert "no module 'helpers' on the Python path" in result.stderr  # trusted, not found


def test_a_resumed_run_refuses_an_untrusted_saved_model(old_run, tmp_path, monkeypatch,
                                                        data_root):
    plant(tmp_path, "planted_models", tmp_path / "ran")
    monkeypatch.syspath_prepend(str(tmp_path))
    craft(old_run, config_model_target="planted_models.Net")
    with pytest.raises(UserError, match=r"\(model._target_\) names the model class "
                                        r"'planted_models.Net', which is not trusted"):
        run_training(old_run, [f"trainer.resume={old_run}", "trainer.max_steps=60",
                               f"data.root={data_root}"])
    assert not (tmp_path / "ran").exists()


def test_a_resumed_run_calls_nothing_a_saved_optimizer_nests(old_run, tmp_path, data_root):
    victim, copied = tmp_path / "victim.txt", tmp_path / "copied.txt"
    victim.write_text("precious")
    nested = {"_target_": "torch.optim.Adagrad", "lr": 0.05,
              "opened": {"_target_": "builtins.open", "file": str(victim), "mode": "w"},
              "copied": {"_target_": "shutil.copyfile", "src": str(victim), "dst": str(copied)}}
    craft(old_run, optimizer=nested)
    resume = [f"trainer.resume={old_run}", "trainer.max_steps=60", f"data.root={data_root}"]
    with pytest.raises(UserError, match=r"optimizer torch.optim.Adagrad .*unexpected keyword"):
        run_training(old_run, resume)
    assert victim.read_text() == "precious" and not copied.exists()
    for target, message in (("builtins.open", "'builtins.open', which is not trusted"),
                            ("torch.optim.lr_scheduler.StepLR",
                             "is not a torch.optim.Optimizer subclass")):
        craft(old_run, optimizer={"_target_": target, "file": str(victim), "mode": "w",
                                  "lr": 0.1})
        with pytest.raises(UserError, match=message):
            run_training(old_run, resume)
        assert victim.read_text() == "precious"


def test_predict_and_the_app_take_trust_only_from_the_user(old_run, tmp_path, monkeypatch):
    from mnist_lab.app.runs import load_runs
    from mnist_lab.predict import main as predict_main

    plant(tmp_path, "planted_models", tmp_path / "ran")
    monkeypatch.syspath_prepend(str(tmp_path))
    craft(old_run, model_target="planted_models.Net")
    (old_run / "trust.txt").write_text("planted_models")  # nothing reads trust from a folder
    with pytest.raises(UserError, match="not trusted"):
        load_runs([old_run])
    assert predict_main([str(old_run), str(REPO / "docs/examples/four.png")]) == 2
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("kind, node", [
    ("data", {"_target_": "planted_parts.Net", "root": "x"}),
    ("scheduler", {"_target_": "planted_parts.Net"}),
    ("logger", {"evil": {"_target_": "planted_parts.Net"}}),
])
def test_a_saved_data_schedule_or_tracker_target_is_refused_unimported(
        old_run, tmp_path, monkeypatch, data_root, kind, node):
    plant(tmp_path, "planted_parts", tmp_path / "ran")
    monkeypatch.syspath_prepend(str(tmp_path))
    ckpt = torch.load(old_run / "checkpoint.pt", weights_only=True)
    ckpt["config"][kind] = node
    if kind == "scheduler":  # a config written after schedules became parts
        ckpt["config"]["optimizer"].pop("schedule")
        ckpt["config"]["optimizer"].pop("warmup_steps")
    torch.save(ckpt, old_run / "checkpoint.pt")
    with pytest.raises(UserError, match=rf"\({kind}._target_\) names the {kind} class "
                                        r"'planted_parts.Net', which is not trusted"):
        run_training(old_run, [f"trainer.resume={old_run}", "trainer.max_steps=60",
                               f"data.root={data_root}"])
    assert not (tmp_path / "ran").exists() and "planted_parts" not in sys.modules
