"""Data, trackers, optimizers and schedules are parts, as models are (issue 17): one class
and one YAML each, built and checked one way; the runs use the tiny MNIST."""

from __future__ import annotations

import gzip
import hashlib
import math
import struct
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import REPO, SHORT, compose_config, run_training
from mnist_lab.compare import main as compare_main
from mnist_lab.config.settings import to_settings, upgrade
from mnist_lab.data import datasets
from mnist_lab.data.integrity import DataError, Expected
from mnist_lab.errors import ConfigError, UserError
from mnist_lab.evaluate import main as evaluate_main
from mnist_lab.predict import main as predict_main
from mnist_lab.record.folder import RunRecord
from mnist_lab.training import schedules

ADAN = '''import torch


class Adan(torch.optim.Optimizer):
    """A three-beta optimizer (after Xie et al. 2022, simplified): sign-free Nesterov-style
    mix of the gradient, its difference and its square."""

    def __init__(self, params, lr=0.01, betas=(0.02, 0.08, 0.01), eps=1e-8):
        if len(betas) != 3:
            raise ValueError(f"Adan takes 3 betas, got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2, b3 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["m"], state["v"], state["n"] = (torch.zeros_like(p) for _ in range(3))
                    state["prev"] = p.grad.clone()
                diff = p.grad - state["prev"]
                state["m"].mul_(1 - b1).add_(p.grad, alpha=b1)
                state["v"].mul_(1 - b2).add_(diff, alpha=b2)
                state["n"].mul_(1 - b3).add_((p.grad + (1 - b2) * diff) ** 2, alpha=b3)
                step = (state["m"] + (1 - b2) * state["v"]) / (state["n"].sqrt() + group["eps"])
                p.add_(step, alpha=-group["lr"])
                state["prev"] = p.grad.clone()
'''


def user_folder(tmp_path: Path, monkeypatch, files: dict[str, str]) -> list[str]:
    """A user's folder (modules and conf/) on the Python and Hydra search paths."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    return [f"hydra.searchpath=[file://{tmp_path / 'conf'},file://{REPO / 'tests' / 'conf'}]"]


def test_a_users_optimizer_with_three_betas_trains(tmp_path, monkeypatch):
    search = user_folder(tmp_path, monkeypatch, {
        "my_optim.py": ADAN,
        "conf/optimizer/adan.yaml": "_target_: my_optim.Adan\nlr: 0.01\n"
                                    "betas: [0.02, 0.08, 0.01]\n"})
    run_dir = tmp_path / "run"
    run_training(run_dir, [*SHORT, "optimizer=adan", "trainer.max_steps=100",
                           "trainer.eval_every=50", *search])
    summary = RunRecord(run_dir).read_summary()
    assert summary["status"] == "completed"
    assert summary["config"]["optimizer"] == {"_target_": "my_optim.Adan", "lr": 0.01,
                                              "betas": [0.02, 0.08, 0.01]}
    rows = RunRecord(run_dir).read_metrics()
    assert rows[-1]["val/error"] < rows[0]["val/error"] < 0.9  # it learns
    with pytest.raises(UserError, match=r"optimizer my_optim.Adan .*Adan takes 3 betas"):
        run_training(tmp_path / "two", [*SHORT, "optimizer=adan", "optimizer.betas=[0.9,0.99]",
                                        *search])


def old_factor(step: int, total: int, schedule: str, warmup: int) -> float:
    """The schedule as mnist_lab computed it before schedules were parts (90f9aef)."""
    if schedule == "onecycle" and warmup == 0:
        warmup = int(0.3 * total)
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@pytest.mark.parametrize("name", ["constant", "cosine", "onecycle"])
@pytest.mark.parametrize("warmup", [0, 37])
def test_schedules_are_the_old_ones_bit_for_bit(name, warmup):
    schedule = {"constant": schedules.Constant, "cosine": schedules.Cosine,
                "onecycle": schedules.OneCycle}[name](warmup_steps=warmup)
    assert all(schedule.factor(step, 500) == old_factor(step, 500, name, warmup)
               for step in range(520))


def test_the_step_schedule_and_bad_values():
    step = schedules.Step(step_size=100, gamma=0.5, warmup_steps=10)
    assert [step.factor(s, 1000) for s in (0, 9, 10, 109, 110, 310)] == \
           [0.1, 1.0, 1.0, 1.0, 0.5, 0.125]
    with pytest.raises(ConfigError, match=r"scheduler.gamma=0.0: must be in \(0, 1\]"):
        to_settings(compose_config(["scheduler=step", "scheduler.gamma=0"]))
    assert compose_config(["scheduler=onecycle"]).scheduler.warmup_fraction == 0.3


def test_old_configs_are_upgraded_when_read(old_run):
    saved = torch.load(old_run / "checkpoint.pt", weights_only=True)["config"]
    assert saved["logger"] == {"name": "none"} and saved["optimizer"]["schedule"] == "constant"
    new = upgrade(saved)
    assert new["logger"] == {} and "schedule" not in new["optimizer"]
    assert new["scheduler"] == {"_target_": "mnist_lab.training.schedules.Constant",
                                "warmup_steps": 0}
    assert new["data"]["_target_"] == "mnist_lab.data.datasets.MNIST"
    wandb = upgrade({**saved, "logger": {"name": "wandb", "project": "p"}})["logger"]
    assert wandb == {"wandb": {"_target_": "mnist_lab.training.tracking.wandb_tracker."
                                            "WandbTracker", "project": "p"}}


# -- datasets -------------------------------------------------------------------------

def idx_bytes(data: torch.Tensor, magic_type: int = 0x08) -> bytes:
    header = struct.pack(">I", (magic_type << 8) + data.dim())
    return header + struct.pack(f">{data.dim()}I", *data.shape) + data.numpy().tobytes()


def write_published(raw: Path, files: dict[str, bytes]) -> dict[str, Expected]:
    """Write each file and its .gz archive (as torchvision's download leaves them); the
    expected sizes and archive MD5s, to inject."""
    raw.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, data in files.items():
        (raw / name).write_bytes(data)
        archive = gzip.compress(data, compresslevel=1, mtime=0)
        (raw / f"{name}.gz").write_bytes(archive)
        expected[name] = Expected(len(data), archive_md5=hashlib.md5(archive).hexdigest())
    return expected


@pytest.mark.parametrize("cls", [datasets.FashionMNIST, datasets.KMNIST])
def test_fashion_and_kmnist_are_read_and_checked_in_their_published_format(
        cls, tmp_path, monkeypatch, caplog):
    generator = torch.Generator().manual_seed(0)
    images = {n: torch.randint(0, 256, (n, 28, 28), generator=generator, dtype=torch.uint8)
              for n in (12, 8)}
    labels = {n: torch.arange(n, dtype=torch.uint8) % 10 for n in (12, 8)}
    raw = tmp_path / cls.torchvision_name / "raw"
    expected = write_published(raw, {
        "train-images-idx3-ubyte": idx_bytes(images[12]),
        "train-labels-idx1-ubyte": idx_bytes(labels[12]),
        "t10k-images-idx3-ubyte": idx_bytes(images[8]),
        "t10k-labels-idx1-ubyte": idx_bytes(labels[8])})
    monkeypatch.setattr(cls, "files", expected)
    monkeypatch.setattr(cls, "num_test", 8)
    dataset = cls(str(tmp_path), download=False, val_size=3)
    assert dataset.info.classes == tuple(c.split(" - ")[0] for c in dataset._torchvision().classes)
    train, val, test = dataset.splits()
    assert torch.equal(train.images[:, 0], images[12])
    assert torch.equal(val.labels, labels[8][:3].long())
    assert torch.equal(test.images[:, 0], images[8][3:])
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"other", mtime=0))
    with pytest.raises(DataError, match=rf"The {cls.torchvision_name} file .* is damaged: its "
                                        rf"MD5 is [0-9a-f]+, expected the published"):
        dataset.read()
    (raw / "train-labels-idx1-ubyte.gz").unlink()
    train, _ = dataset.read()  # no archive: used, with one warning
    assert len(train) == 12 and "cannot be checked against a published MD5" in caplog.text


def test_evaluate_on_qmnist_reads_its_50000_extra_digits(old_run, tmp_path, monkeypatch,
                                                        capsys):
    from mnist_lab.data.splits import Split
    from mnist_lab.models.build import load_model
    from mnist_lab.training.evaluation import evaluate

    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (60_000, 28, 28), generator=generator, dtype=torch.uint8)
    labels = torch.zeros(60_000, 8, dtype=torch.int32)
    labels[:, 0] = torch.randint(0, 10, (60_000,), generator=generator)
    labels_idx = struct.pack(">I", 0x0C02) + struct.pack(">2I", 60_000, 8) + \
        labels.numpy().astype(">i4").tobytes()
    expected = write_published(tmp_path / "QMNIST" / "raw", {
        "qmnist-test-images-idx3-ubyte": idx_bytes(images),
        "qmnist-test-labels-idx2-int": labels_idx})
    monkeypatch.setattr(datasets.QMNIST50k, "files", expected)
    assert evaluate_main([str(old_run), "--on", "qmnist", "--data-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    loaded = load_model(old_run)
    mine = evaluate(loaded.model, Split(images[10_000:, None], labels[10_000:, 0].long()),
                    loaded.norm)
    assert out.startswith(f"qmnist/error {100 * mine.error:.2f}% (50000 images, final weights)")


def test_qmnist_is_for_mnist_runs_and_predict_reads_only_digits(old_run):
    run = old_run
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    ckpt["config"]["data"]["_target_"] = "mnist_lab.data.datasets.FashionMNIST"
    ckpt["model"]["classes"] = ["T-shirt/top", "Trouser"] + list("23456789")
    torch.save(ckpt, run / "checkpoint.pt")
    assert evaluate_main([str(run), "--on", "qmnist"]) == 2
    assert predict_main([str(run), str(REPO / "docs/examples/four.png")]) == 2


# -- a user's dataset ------------------------------------------------------------------------

SQUARES = '''import torch

from mnist_lab.data.datasets import Dataset
from mnist_lab.data.splits import DatasetInfo, Split


class Squares(Dataset):
    def __init__(self, n_train=600, n_test=200, seed=0, normalize=False):
        self.n_train, self.n_test, self.seed, self.normalize = n_train, n_test, seed, normalize
        self.info = DatasetInfo((3, 16, 16), ("red", "green", "blue"), n_train)

    def make(self, n, generator):
        labels = torch.randint(0, 3, (n,), generator=generator)
        images = torch.randint(0, 64, (n, 3, 16, 16), generator=generator, dtype=torch.uint8)
        for image, label, (y, x) in zip(images, labels.tolist(),
                                        torch.randint(0, 12, (n, 2), generator=generator).tolist()):
            image[label, y:y + 4, x:x + 4] = 255
        return Split(images, labels)

    def splits(self):
        generator = torch.Generator().manual_seed(self.seed)
        train, test = self.make(self.n_train, generator), self.make(self.n_test, generator)
        half = self.n_test // 2
        return train, Split(test.images[:half], test.labels[:half]), Split(
            test.images[half:], test.labels[half:])
'''


def test_a_users_16x16_dataset_trains_evaluates_and_compares(tmp_path, monkeypatch, capsys):
    search = user_folder(tmp_path, monkeypatch, {
        "my_data.py": SQUARES, "conf/data/squares.yaml": "_target_: my_data.Squares\n"
                                                         "batch_size: 32\nnormalize: true\n"})
    run_dir = tmp_path / "run"
    run_training(run_dir, ["data=squares", "model.depth=[8,16]", "optimizer.lr=0.05",
                           "trainer.max_steps=60", "trainer.eval_every=30", "logger=none",
                           "trainer.progress=false", *search])
    summary = RunRecord(run_dir).read_summary()
    assert summary["status"] == "completed" and summary["test/images"] == 100
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert ckpt["model"]["in_shape"] == [3, 16, 16] and len(ckpt["model"]["mean"]) == 3
    assert ckpt["model"]["classes"] == ["red", "green", "blue"]
    assert evaluate_main([str(run_dir)]) == 2  # my_data is not trusted by evaluate
    assert "'my_data.Squares', which is not trusted" in capsys.readouterr().err
    assert evaluate_main([str(run_dir), "--trust", "my_data"]) == 0
    out = capsys.readouterr().out
    assert f"test/error {100 * summary['test/error']:.2f}% (100 images" in out and "(equal)" in out
    assert compare_main([str(run_dir), "--format", "csv"]) == 0
    assert str(run_dir) in capsys.readouterr().out
    with pytest.raises(ConfigError, match=r"LeNet-5 takes 28x28 images by design; the data's are "
                                          r"16x16"):
        run_training(tmp_path / "lenet", ["data=squares", "model=lenet5", "logger=none", *search])


# -- trackers ------------------------------------------------------------------------------

def tensorboard_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of a run's event files, read with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def test_logger_composes_several_trackers_each_under_its_own_key(tmp_path):
    cfg = compose_config(["logger=[wandb,tensorboard]", "logger.wandb.project=p"])
    assert set(cfg.logger) == {"wandb", "tensorboard"} and cfg.logger.wandb.project == "p"
    assert OmegaConf.to_container(compose_config(["logger=none"]).logger) == {}
    with pytest.raises(ConfigError, match="logger.tensorboard.log_images_every=-1"):
        run_training(tmp_path, [*SHORT[:-1], "logger=tensorboard",
                                "logger.tensorboard.log_images_every=-1"])


def test_tensorboard_holds_every_metrics_row(tmp_path):
    run_training(tmp_path, [*SHORT[:-1], "logger=tensorboard",
                            "logger.tensorboard.log_images_every=1"])
    scalars = tensorboard_scalars(tmp_path)
    rows = RunRecord(tmp_path).read_metrics()
    for key in ("train/error", "val/error", "val/loss", "lr", "epoch"):
        assert [s for s, _ in scalars[key]] == [r["step"] for r in rows]
        assert [v for _, v in scalars[key]] == pytest.approx(
            [r[key] for r in rows], rel=1e-6), key  # float32
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"features/conv1", "features/conv2", "filters/conv1"} <= set(events.Tags()["images"])
    assert "config/text_summary" in events.Tags()["tensors"]
