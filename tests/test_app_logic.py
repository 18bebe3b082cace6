"""The app's functions without a server (``mnist_lab.app``): the command line, what the
page shows for an input, the history slider; against real short runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnist_lab.app import logic
from mnist_lab.app.runs import BN_NOTE, load_runs
from mnist_lab.record.folder import RunRecord


def test_the_command_serves_on_this_machine_only_unless_told():
    from mnist_lab.app.command import parse

    args = parse(["run"])
    assert (args.host, args.port, args.share) == ("127.0.0.1", 7860, False)
    args = parse(["run", "--host", "0.0.0.0", "--port", "8000", "--share"])
    assert (args.host, args.port, args.share) == ("0.0.0.0", 8000, True)
    with pytest.raises(SystemExit) as refused:  # argparse's one line
        parse(["run", "--port", "99999"])
    assert refused.value.code == 2

def test_functions_empty_canvas_bad_and_large_files(tmp_path, monkeypatch):
    blank = np.zeros((400, 400, 4), np.uint8)
    assert logic.from_canvas({"composite": blank}) == logic.DRAW
    assert logic.from_canvas({"composite": None}) == logic.DRAW
    white = np.full((400, 400, 4), 255, np.uint8)
    assert logic.from_canvas({"composite": white}) == logic.DRAW
    assert logic.answer([], 0, logic.DRAW).verdict == logic.DRAW  # never a prediction of "1"
    (tmp_path / "notes.png").write_text("not an image")
    assert logic.from_file(tmp_path / "notes.png", "notes.png") == \
        "notes.png: not an image (Pillow cannot identify the format)"
    monkeypatch.setattr(logic, "MAX_UPLOAD_MB", 1)
    (tmp_path / "big.png").write_bytes(bytes(3 * 2**20))
    message = logic.from_file(tmp_path / "big.png", "big.png")
    assert message.startswith("big.png: 3 MB is too large") and "\n" not in message

def test_unsure_verdict_names_the_runner_up():
    classes = tuple("0123456789")
    sure = np.array([0.0, 0.9, 0.1] + [0.0] * 7, np.float32)
    assert logic.verdict(classes, sure) == "Prediction: **1** (probability 90.0 %)"
    unsure = np.array([0.0, 0.0, 0.0, 0.0, 0.55, 0.0, 0.0, 0.0, 0.0, 0.45], np.float32)
    assert logic.verdict(classes, unsure).endswith(
        "The model is unsure between 4 (55 %) and 9 (45 %).")

def test_history_slider_positions_carry_each_snapshot(short_run, bn_run):
    runs = load_runs([short_run, bn_run])
    seed, bn = runs
    rows = {r["step"]: r["val/error"] for r in RunRecord(short_run).read_metrics()}
    assert [s.step for s in seed.history] == [100, 200, 300]  # snapshots, then the final weights
    assert [s.val_error for s in seed.history] == [rows[100], rows[200], rows[300]]
    assert seed.history[-1].convs is None and seed.history_note == ""
    first = seed.first_filters(0)
    assert not torch.equal(first, seed.first_filters(2))
    assert torch.equal(first, seed.history[0].convs[0][0])
    assert bn.history_note == BN_NOTE and "Step 20 of 40" in logic.history_text(bn, 0)

def test_a_model_without_convolutions_shows_no_maps_and_says_why(mlp_run):
    (run,) = load_runs([mlp_run])
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 13:15] = 255
    shown = logic.inside(run, logic.Prepared(digit), 0)
    assert shown.maps is None and shown.filters is None and run.history == []
    assert shown.maps_note == "MLP has no convolutional layers, so it has no feature maps " \
                              "or filters to show."
    assert logic.answer([run], 0, logic.Prepared(digit)).probabilities is not None
