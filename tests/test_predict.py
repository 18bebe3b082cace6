"""Recognising people's own images end to end: a real trained run, real image files."""

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_training
from mnist_lab.models.build import load_model
from mnist_lab.predict import main
from mnist_lab.recognise.predict import classify, predict
from user_images import load_mnist_test, make_user_style_files

FORMATS = ("png", "jpg", "rgba", "p", "i16")
DIGITS = slice(5000, 5300)  # test-split digits: the model never trained on them


@pytest.fixture(scope="module")
def model_run(tmp_path_factory, data_root):
    """A model worth testing recognition with: one epoch at lr 0.05 (about 98 %)."""
    run_dir = tmp_path_factory.mktemp("model")
    run_training(run_dir, ["trainer.max_steps=900", "optimizer.lr=0.05", "trainer.eval_every=300",
                           "trainer.progress=false", "logger=none"])
    return run_dir


@pytest.fixture(scope="module")
def user_files(tmp_path_factory, data_root):
    images, labels = load_mnist_test(data_root)
    digits, labels = images[DIGITS], labels[DIGITS]
    paths = make_user_style_files(digits, tmp_path_factory.mktemp("user"), FORMATS)
    return digits, labels, paths


@pytest.mark.slow
def test_accuracy_on_user_files_is_within_a_point_of_the_arrays(model_run, user_files):
    digits, labels, paths = user_files
    loaded = load_model(model_run)
    right_on_arrays = int((classify(loaded, digits).argmax(1).numpy() == labels).sum())
    assert right_on_arrays / len(labels) > 0.97
    results = predict(loaded, [str(p) for p in paths], workers=2)
    assert not [r.error for r in results if r.error]
    predicted = np.array([int(r.digit) for r in results]).reshape(len(digits), len(FORMATS))
    one_point = len(labels) // 100  # counts, not fractions: 3 of 300 images is a point exactly
    for j, fmt in enumerate(FORMATS):
        right_on_files = int((predicted[:, j] == labels).sum())
        assert abs(right_on_files - right_on_arrays) <= one_point, (fmt, right_on_files,
                                                                    right_on_arrays)


def write_inputs(folder, digit):
    """Good files (one inside a sub-folder) and one file of each kind of bad input."""
    good = make_user_style_files(digit[None], folder / "good", ("png", "jpg", "rgba"))
    (folder / "good" / "notes.txt").write_text("not an image, and skipped: not an image suffix")
    (folder / "text.png").write_text("this is not an image")
    data = good[0].read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    Image.new("L", (300, 200), 200).save(folder / "blank.png")
    Image.new("L", (1200, 1200), 255).save(folder / "huge.png")
    pair = np.zeros((28, 70), np.uint8)
    pair[:, :28], pair[:, 42:] = digit, digit
    Image.fromarray(255 - pair).resize((350, 140)).save(folder / "pair.png")
    return good


def test_cli_reports_each_bad_file_and_recognises_the_rest(model_run, data_root, tmp_path,
                                                            capsys, monkeypatch):
    images, labels = load_mnist_test(data_root)
    good = write_inputs(tmp_path, images[5000])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500_000)  # huge.png: 1.44 Mpx > 2x limit
    rc = main([str(model_run), str(tmp_path / "good"), str(tmp_path / "*.png"),
               str(tmp_path / "missing.jpg"), "--format", "json",
               "--save-preprocessed", str(tmp_path / "seen")])
    out, err = capsys.readouterr()
    assert rc == 1
    results = {r["path"]: r for r in json.loads(out)}
    for path in good:
        assert results[str(path)]["digit"] == str(labels[5000]), results[str(path)]
        assert len(results[str(path)]["top"]) == 3
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    expected = {"text.png": "not an image", "truncated.png": "truncated",
                "blank.png": "no ink found", "huge.png": "too large", "missing.jpg": "no such file"}
    assert len(errors) == len(expected)
    for name, problem in expected.items():
        line = next(e for e in errors if name in e)
        assert problem in line and "\n" not in line
    assert any(line.startswith(f"warning: {tmp_path / 'pair.png'}: ") and "several digits" in line
               for line in err.splitlines())
    saved = sorted((tmp_path / "seen").glob("*.png"))
    assert len(saved) == 4 and all(Image.open(p).size == (28, 28) for p in saved)


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_cli_formats(model_run, data_root, tmp_path, capsys, fmt):
    images, labels = load_mnist_test(data_root)
    paths = make_user_style_files(images[5001:5003], tmp_path, ("png",))
    assert main([str(model_run), *map(str, paths), "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [r["digit"] for r in rows] == [str(y) for y in labels[5001:5003]]
        assert all(0 < float(r["probability"]) <= 1 for r in rows)
    else:
        assert out.splitlines()[0].split() == ["file", "digit", "probability", "top3", "warning"]
        assert len(out.splitlines()) == 3


@pytest.mark.parametrize("folder", ["file.txt", "file.txt/sub", "/proc/mnist_lab_seen"])
def test_a_folder_that_cannot_be_written_costs_no_prediction(model_run, data_root, tmp_path,
                                                              capsys, folder):
    """A file, a path below a file and /proc/...: they fail for root too."""
    images, labels = load_mnist_test(data_root)
    paths = make_user_style_files(images[5001:5003], tmp_path / "in", ("png",))
    (tmp_path / "file.txt").write_text("keep me")
    folder = tmp_path / folder  # an absolute folder stays as it is
    assert main([str(model_run), *map(str, paths), "--save-preprocessed", str(folder)]) == 1
    out, err = capsys.readouterr()
    rows = [line.split() for line in out.splitlines()[1:]]
    expected = [(str(p), str(y)) for p, y in zip(paths, labels[5001:5003])]
    assert [(r[0], r[1]) for r in rows] == expected
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"error: --save-preprocessed {folder}: ") and "Traceback" not in err
    assert "the predictions were printed, but 0 of 2 preprocessed images were saved" in err
    if folder.is_relative_to(tmp_path):
        assert f"{tmp_path / 'file.txt'} is a file, not a folder" in err
    assert (tmp_path / "file.txt").read_text() == "keep me"


def test_run_without_a_checkpoint_is_refused(tmp_path, capsys):
    assert main([str(tmp_path), "x.png"]) == 2
    assert "No checkpoint.pt" in capsys.readouterr().err
