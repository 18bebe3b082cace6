"""Tests for mnist_lab/tracking/wandb_files.py against runs really written by wandb (offline mode)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import wandb

from mnist_lab.training.tracking import wandb_files as wf


@pytest.fixture
def wb(tmp_path, monkeypatch):
    """Offline, silent wandb whose every file lands under ``tmp_path``; yields the ``dir=``."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",  # also makes login prompts impossible
        "WANDB_CONSOLE": "off",  # no stdout/stderr wrapping under pytest's capture
        "WANDB_DISABLE_GIT": "true",
        "WANDB_DISABLE_CODE": "true",
        "WANDB__DISABLE_STATS": "true",  # -> settings.x_disable_stats
        "WANDB_DIR": str(tmp_path / "runs"),
        "WANDB_CONFIG_DIR": str(tmp_path / "config"),
        "WANDB_CACHE_DIR": str(tmp_path / "cache"),
        "WANDB_DATA_DIR": str(tmp_path / "data"),
        "WANDB_ARTIFACT_DIR": str(tmp_path / "artifacts"),
    }
    for key in ("WANDB_API_KEY", "WANDB_RUN_ID", "WANDB_RESUME", "WANDB_PROJECT", "WANDB_ENTITY"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # wandb reads the environment once per process (wandb.setup); start afresh.
    wandb.teardown()
    yield tmp_path / "runs"
    if wandb.run is not None:
        wandb.run.finish()
    wandb.teardown()  # stops wandb-core so the next test re-reads its environment
    assert not any(p.is_file() for p in home.rglob("*")), "wandb wrote under HOME"


def run_folder(run) -> Path:
    return Path(run.dir).parent  # run.dir is <wandb dir>/offline-run-...-<id>/files


def finish(run, exit_code: int | None = None) -> None:
    """``run.finish()`` returns before wandb-core has written the file's tail (in
    3 of 180 runs here the exit record was still missing); ``wandb.teardown()``
    waits for wandb-core to exit, so the file is complete afterwards."""
    run.finish(exit_code=exit_code)
    wandb.teardown()


def test_offline_run_roundtrip(wb):
    pixels = np.random.default_rng(0).integers(0, 256, size=(8, 6, 3), dtype=np.uint8)
    run = wandb.init(mode="offline", dir=wb, project="p", group="g", name="n", job_type="train",
                     config={"a": 1, "model": {"depth": [4, 8]}}, tags=["t1"], notes="hello")
    logged = [{"val/error": 0.5 - 0.1 * s, "train/loss": 1.0 / (s + 1), "epoch": s} for s in range(3)]
    for step, metrics in zip([0, 2, 5], logged):
        run.log(metrics, step=step)
    run.log({"examples": wandb.Image(pixels, caption="digits"), "lr": {"g0": 0.1}}, step=6)
    run.tags = ("t1", "t2")
    run.summary["best/val_error"] = 0.3
    run.summary.update({"final": {"acc": 0.99}})
    finish(run, exit_code=0)

    folder = run_folder(run)
    assert folder.parent == wb / "wandb" and folder.name.startswith("offline-run-")
    assert wf.find_run_files(wb, run.id) == [folder / f"run-{run.id}.wandb"]
    rec = wf.read_run(folder)
    assert wf.read_run(folder / f"run-{run.id}.wandb") == rec
    assert (rec.run_id, rec.name, rec.group, rec.job_type, rec.project, rec.notes) == (
        run.id, "n", "g", "train", "p", "hello")
    assert rec.tags == ["t1", "t2"]
    assert rec.config == {"a": 1, "model": {"depth": [4, 8]}}
    assert rec.exit_code == 0 and rec.resumed is False

    assert [row["_step"] for row in rec.history] == [0, 2, 5, 6]
    for row, metrics in zip(rec.history, logged):
        assert set(row) == {"_step", "_runtime", "_timestamp", *metrics}
        assert {k: row[k] for k in metrics} == metrics
    assert wf.history_values(rec, "val/error") == [(0, 0.5), (2, 0.4), (5, pytest.approx(0.3))]

    last = rec.history[-1]
    assert last["lr"] == {"g0": 0.1}  # a logged dict becomes nested keys
    image = last["examples"]
    assert image["_type"] == "image-file" and image["format"] == "png"
    assert (image["width"], image["height"], image["caption"]) == (6, 8, "digits")
    assert image["path"] in rec.files
    png = rec.file_path(image["path"])
    assert png == folder / "files" / image["path"] and png.is_file()
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(png)), pixels)  # uint8 stored as is

    assert rec.summary["best/val_error"] == 0.3
    assert rec.summary["final"] == {"acc": 0.99}
    assert rec.summary["val/error"] == pytest.approx(0.3) and rec.summary["_step"] == 6
    assert rec.summary["examples"]["path"] == image["path"]
    assert "_wandb" not in rec.config and "_wandb" not in rec.summary


def test_failed_runs_record_exit_code(wb):
    run = wandb.init(mode="offline", dir=wb, project="p")
    run.log({"x": 1}, step=0)
    finish(run, exit_code=1)
    assert wf.read_run(run_folder(run)).exit_code == 1

    with pytest.raises(RuntimeError):
        with wandb.init(mode="offline", dir=wb, project="p") as run2:
            raise RuntimeError("boom")  # Run.__exit__ finishes with exit_code=1
    wandb.teardown()
    failed = wf.read_run(run_folder(run2))
    assert failed.exit_code == 1 and failed.history == []


def test_offline_resume_makes_a_new_folder(wb):
    first = wandb.init(mode="offline", dir=wb, project="p", id="resume01", name="n",
                       config={"lr": 0.1, "seed": 1})
    for step in range(2):
        first.log({"loss": 1.0 - step / 10}, step=step)
    finish(first, exit_code=1)

    second = wandb.init(mode="offline", dir=wb, project="p", id="resume01", resume="allow",
                        config={"lr": 0.05})
    assert second.id == "resume01" and run_folder(second) != run_folder(first)
    for step in range(2, 4):
        second.log({"loss": 1.0 - step / 10}, step=step)
    finish(second)

    files = wf.find_run_files(wb, "resume01")  # "<id>-1" folder if in the same second
    assert files == [run_folder(r) / "run-resume01.wandb" for r in (first, second)]
    session2 = wf.read_run(files[1])
    assert session2.resumed is True and session2.config == {"lr": 0.05}
    assert session2.name == ""  # nothing is carried over offline
    merged = wf.read_runs(files)
    assert merged.run_id == "resume01" and merged.name == "n" and merged.resumed
    assert merged.config == {"lr": 0.05, "seed": 1}
    assert wf.history_values(merged, "loss") == [(0, 1.0), (1, 0.9), (2, 0.8), (3, 0.7)]
    assert merged.summary["loss"] == 0.7 and merged.exit_code == 0


def test_define_metric_records(wb):
    run = wandb.init(mode="offline", dir=wb, project="p")
    run.define_metric("epoch")
    run.define_metric("val/error", summary="min", step_metric="epoch")
    for epoch, err in enumerate([0.3, 0.1, 0.2]):
        run.log({"val/error": err, "epoch": epoch})
    finish(run)
    rec = wf.read_run(run_folder(run))
    by_name = {m.get("name") or m.get("glob_name"): m for m in rec.metrics}
    assert by_name["val/error"]["step_metric"] == "epoch"
    assert by_name["val/error"]["summary"] == {"min": True}
    assert rec.summary["val/error"] == {"min": 0.1}  # only the min, no last value
    assert wf.history_values(rec, "val/error") == [(0, 0.3), (1, 0.1), (2, 0.2)]


def test_large_records_corruption_and_truncation(wb):
    big = "x" * 100_000  # one record over three 32 KiB blocks: first/middle/last chunks
    run = wandb.init(mode="offline", dir=wb, project="p")
    run.log({"text": big, "i": 0}, step=0)
    run.log({"i": 1}, step=1)
    finish(run)
    path = run_folder(run) / f"run-{run.id}.wandb"
    data = path.read_bytes()
    assert data[:7] == wf.HEADER == b":W&B\xe1\xbe\x00" and len(data) > 3 * wf.BLOCK_SIZE
    kinds, off = [], 7
    while off + 7 <= len(data):
        if wf.BLOCK_SIZE - off % wf.BLOCK_SIZE < 7:
            off += wf.BLOCK_SIZE - off % wf.BLOCK_SIZE
            continue
        _, length, kind = struct.unpack_from("<IHB", data, off)
        kinds.append(kind)
        off += 7 + length
    assert {1, 2, 3, 4} <= set(kinds)
    rec = wf.read_run(path)
    assert wf.history_values(rec, "text") == [(0, big)]
    assert wf.history_values(rec, "i") == [(0, 0), (1, 1)]

    n_records = len(wf.read_records(path))
    cut = path.with_name("cut.wandb")
    cut.write_bytes(data[: 2 * wf.BLOCK_SIZE])  # ends inside the big record
    assert 0 < len(wf.read_records(cut)) < n_records
    bad = bytearray(data)
    bad[wf.BLOCK_SIZE + 100] ^= 0xFF
    cut.write_bytes(bytes(bad))
    with pytest.raises(wf.WandbFileError):
        wf.read_records(cut)
    cut.write_bytes(b"not a wandb file")
    with pytest.raises(wf.WandbFileError):
        wf.read_records(cut)


def test_lenient_reading_ends_at_a_damaged_tail(wb):
    run = wandb.init(mode="offline", dir=wb, project="p")
    for step in range(5):
        run.log({"val/error": 0.1 * step, "text": "x" * 20_000}, step=step)
    finish(run)
    path = run_folder(run) / f"run-{run.id}.wandb"
    data = path.read_bytes()
    assert wf.logged_steps(wb, run.id, "val/error") == {0, 1, 2, 3, 4}
    half = len(data) // 2
    path.write_bytes(data[:half] + (bytes(range(1, 256)) * len(data))[: len(data) - half])
    with pytest.raises(wf.WandbFileError):
        wf.read_records(path)
    held = wf.logged_steps(wb, run.id, "val/error")  # what precedes the damage
    assert held == set(range(len(held))) and 0 < len(held) < 5
    path.write_bytes(data[:5])  # killed before the header was whole
    assert wf.read_records(path, strict=False) == []
    assert wf.logged_steps(wb, run.id, "val/error") == set()
