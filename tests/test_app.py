"""The app (``python -m mnist_lab.app``): the command, its functions, and the page's API
through ``gradio_client``, against real short runs and real MNIST test digits."""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from mnist_lab.models.build import load_model
from mnist_lab.app import logic
from mnist_lab.app.runs import BN_NOTE
from mnist_lab.recognise.predict import classify
from user_images import load_mnist_test

pytestmark = pytest.mark.slow


def app_command(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mnist_lab.app", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=timeout)


def test_a_folder_without_checkpoint_is_refused_before_anything_starts(tmp_path, short_run):
    (tmp_path / "refused" / ".hydra").mkdir(parents=True)
    result = app_command(str(short_run), str(tmp_path / "refused"))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"Error: No checkpoint.pt in '{tmp_path / 'refused'}'")
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1


def test_a_busy_port_gets_one_line_and_exit_2(short_run):
    pytest.importorskip("gradio")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = app_command(str(short_run), "--port", str(port))
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith(f"Error: cannot serve on 127.0.0.1:{port}")
    assert "--port" in result.stderr and "Traceback" not in result.stderr


def clear_digit(run_dir, data_root):
    """(test-set index, label) of a test-half digit the run reads right with p > 0.99."""
    images, labels = load_mnist_test(data_root)
    probs = classify(load_model(run_dir), images[5000:5100]).numpy()
    i = next(i for i in range(100) if probs[i].argmax() == labels[5000 + i] and probs[i].max() > .99)
    return 5000 + i, int(labels[5000 + i])


def photo_of(digit: np.ndarray, path):
    """Dark ink on light paper, 5x larger: the kind of file people upload."""
    Image.fromarray(255 - digit).resize((140, 140), Image.Resampling.BICUBIC).save(path)
    return path


# -- through gradio_client: the API the page's events expose -----------------------------

@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def test_client_upload_of_a_known_digit(client, short_run, bn_run, data_root, tmp_path):
    from gradio_client import handle_file

    index, label = clear_digit(short_run, data_root)
    path = photo_of(load_mnist_test(data_root)[0][index], tmp_path / f"mnist_{index}.png")
    out = client.predict(handle_file(str(path)), str(short_run), 2, api_name="/upload")
    verdict, bars, seen, notes, comparison, maps, maps_note, filters, history = out
    assert verdict.startswith(f"Prediction: **{label}** (probability ")
    assert bars["label"] == str(label) and len(bars["confidences"]) == 10
    assert abs(sum(c["confidence"] for c in bars["confidences"]) - 1) < 1e-4
    assert np.asarray(Image.open(seen)).shape[:2] == (224, 224) and notes == "No warnings."
    assert str(short_run) in comparison and str(bn_run) in comparison  # both models answer
    assert Image.open(maps).size[0] > 400 and maps_note.count("shared scale") == 2
    assert Image.open(filters).size[0] > 200 and history.startswith("Step 300 of 300")


def test_client_bad_inputs_get_one_line_in_the_page(client, short_run, tmp_path):
    from gradio_client import handle_file

    (tmp_path / "scan.png").write_text("this is not an image")
    out = client.predict(handle_file(str(tmp_path / "scan.png")), str(short_run), 2,
                         api_name="/upload")
    assert out[0] == "scan.png: not an image (Pillow cannot identify the format)"
    assert not out[1] and out[5] is None  # no prediction, no maps
    Image.new("RGBA", (400, 400)).save(tmp_path / "blank.png")
    blank = handle_file(str(tmp_path / "blank.png"))
    out = client.predict({"background": None, "layers": [], "composite": blank},
                         str(short_run), 2, api_name="/draw")
    assert out[0] == logic.DRAW and not out[1]


def test_client_history_and_model_choice(client, short_run, bn_run, data_root, tmp_path):
    from gradio_client import handle_file

    path = photo_of(load_mnist_test(data_root)[0][5000], tmp_path / "digit.png")
    client.predict(handle_file(str(path)), str(short_run), 2, api_name="/upload")
    early = client.predict(0, str(short_run), api_name="/history")
    final = client.predict(2, str(short_run), api_name="/history")
    assert early[3].startswith("Step 100 of 300 (snapshot)") and "Feature maps at step 100" in \
        early[1]
    assert Image.open(early[2]).tobytes() != Image.open(final[2]).tobytes()  # filters changed
    picked = client.predict(str(bn_run), api_name="/pick")
    assert picked[0]["maximum"] == 1 and picked[0]["value"] == 1  # bn run: 20, then final 40
    assert BN_NOTE in picked[-1] and "Prediction: **" in picked[1]


def test_client_model_without_convolutions(client, mlp_run, data_root, tmp_path):
    from gradio_client import handle_file

    path = photo_of(load_mnist_test(data_root)[0][5000], tmp_path / "digit.png")
    out = client.predict(handle_file(str(path)), str(mlp_run), 0, api_name="/upload")
    assert out[0].startswith("Prediction: **") and out[5] is None and out[7] is None
    assert out[6].startswith("MLP has no convolutional layers")


def test_client_webcam_photo(client, short_run, data_root, tmp_path):
    from gradio_client import handle_file

    index, label = clear_digit(short_run, data_root)
    rgb = Image.open(photo_of(load_mnist_test(data_root)[0][index], tmp_path / "d.png"))
    rgb.convert("RGB").save(tmp_path / "frame.png")  # a camera frame is RGB
    out = client.predict(handle_file(str(tmp_path / "frame.png")), str(short_run), 0,
                         api_name="/camera")
    assert out[0].startswith(f"Prediction: **{label}** (probability ")
