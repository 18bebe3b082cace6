"""Tests of mnist_lab.recognise.prepare on real MNIST test digits and on user-style files made from them.

Thresholds come from measurements over the first 100 MNIST test digits (see the comments
at each one); controls in the same tests show that a broken polarity or centring, or a
wrong digit, would land far below them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_lab.recognise.images import ImageError, read_image
from mnist_lab.recognise.prepare import Prepared, prepare_array, prepare_image
from user_images import FORMATS, load_mnist_test, make_user_style_files

N = 100  # digits for the closeness statistics
N_FORMATS = 20  # digits per extra format
EXTRA_FORMATS = tuple(f for f in FORMATS if f not in ("png", "jpg"))


@pytest.fixture(scope="module")
def digits(data_root) -> np.ndarray:
    """The first N MNIST test digits, (N, 28, 28) uint8."""
    return load_mnist_test(data_root)[0][:N]


@pytest.fixture(scope="module")
def user_outputs(digits, tmp_path_factory) -> dict[str, list[Prepared]]:
    """Prepared user-style files: png and jpg for all N digits, other formats for N_FORMATS."""
    out = {}
    for formats, n in ((("png", "jpg"), N), (EXTRA_FORMATS, N_FORMATS)):
        paths = make_user_style_files(digits[:n], tmp_path_factory.mktemp("user"), formats)
        for j, fmt in enumerate(formats):
            out[fmt] = [prepare_image(p) for p in paths[j::len(formats)]]
    return out


def corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two images' pixels."""
    a = a.astype(np.float64).ravel() - a.mean()
    b = b.astype(np.float64).ravel() - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def mad(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two uint8 images in [0, 1] units."""
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean() / 255)


def check_mnist_like(image: np.ndarray) -> None:
    """(d): shape, dtype, full-range ink, centre of mass at (14, 14) +- 1, longer side 20 +- 1."""
    assert image.shape == (28, 28) and image.dtype == np.uint8
    assert image.max() == 255
    w = image.astype(np.float64)
    com = np.array([w.sum(1) @ np.arange(28), w.sum(0) @ np.arange(28)]) / w.sum()
    assert np.all(np.abs(com - 14.0) <= 1.0), com
    rows, cols = np.flatnonzero(image.any(1)), np.flatnonzero(image.any(0))
    assert 19 <= max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) <= 21


# (a) closeness --------------------------------------------------------------------------


def test_mnist_digits_are_fixed_points(digits):
    # measured: mean |diff| 0.0007 (max 0.0021), correlation >= 0.9999 for all 100 digits
    for digit in digits:
        for grey in (digit, 255 - digit, (255 - digit).astype(np.float32) / 255):  # any polarity
            out = prepare_array(grey)
            assert out.warnings == [] or "border" in out.warnings[0]
            assert mad(out.image, digit) <= 0.005 and corr(out.image, digit) >= 0.995
            check_mnist_like(out.image)


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_user_style_files_come_back_as_themselves(digits, user_outputs, fmt):
    images = [p.image for p in user_outputs[fmt]]
    c = np.array([corr(a, b) for a, b in zip(images, digits)])
    d = np.array([mad(a, b) for a, b in zip(images, digits)])
    # measured (png / jpg): correlation mean 0.938 / 0.935, median 0.970 / 0.966,
    # 5th percentile 0.81 / 0.80; mean |diff| 0.030 / 0.031 (max 0.086 / 0.094).
    # The rest is resampling: the oracle (exact ink, no noise) reaches only ~0.95.
    assert c.mean() >= 0.90 and np.median(c) >= 0.94 and np.percentile(c, 5) >= 0.70
    assert d.mean() <= 0.045 and d.max() <= 0.15
    # controls, measured: wrong digit 0.26, output shifted by 2 px 0.46, inverted -0.94
    assert np.mean([corr(a, b) for a, b in zip(images, np.roll(digits, 1, 0))]) < 0.5
    assert np.mean([corr(np.roll(a, 2, 1), b) for a, b in zip(images, digits)]) < 0.6
    assert np.mean([corr(255 - a, b) for a, b in zip(images, digits)]) < 0
    for p in user_outputs[fmt]:
        assert p.warnings == []
        check_mnist_like(p.image)


@pytest.mark.parametrize("fmt", EXTRA_FORMATS)
def test_every_format_and_mode_comes_back(digits, user_outputs, fmt):
    # measured over 20 digits: correlation mean 0.927 (gif) .. 0.948 (rgba), min >= 0.70
    images = [p.image for p in user_outputs[fmt]]
    c = np.array([corr(a, b) for a, b in zip(images, digits)])
    assert c.mean() >= 0.88 and c.min() >= 0.5, c
    for image in images:
        check_mnist_like(image)


def test_exif_orientation_is_applied(digits, user_outputs):
    upright = [corr(p.image, d) for p, d in zip(user_outputs["exif"], digits)]
    turned = [corr(p.image, np.rot90(d)) for p, d in zip(user_outputs["exif"], digits)]
    assert np.mean(upright) > np.mean(turned) + 0.4


# read_image: modes ------------------------------------------------------------------------


def _saved(tmp_path: Path, im: Image.Image, name: str, **options) -> Path:
    path = tmp_path / name
    im.save(path, **options)
    return path


@pytest.mark.parametrize("mode, fill, expected", [
    ("1", 1, 1.0), ("L", 51, 0.2), ("RGB", (255, 0, 0), 0.299), ("I;16", 32768, 32768 / 65535),
    ("I", 65535, 1.0), ("F", 0.25, 0.25), ("LA", (0, 0), 1.0), ("RGBA", (0, 0, 0, 128), 0.498),
])
def test_read_image_scales_each_mode(tmp_path, mode, fill, expected):
    im = Image.new(mode, (9, 7), fill)
    suffix = "tif" if mode in ("I", "F") else "png"
    grey = read_image(_saved(tmp_path, im, f"m.{suffix}"))
    assert grey.shape == (7, 9) and grey.dtype == np.float32
    assert np.allclose(grey, expected, atol=0.01)


def test_read_image_palette_transparency_and_first_frame(tmp_path):
    p = Image.new("P", (8, 8), 1)
    p.putpalette([0, 0, 0, 40, 40, 40] + [0] * 762)
    p.putpixel((0, 0), 0)
    plain = read_image(_saved(tmp_path, p, "p.png"))
    assert np.isclose(plain[0, 0], 0) and np.isclose(plain[1, 1], 40 / 255, atol=0.01)
    clear = read_image(_saved(tmp_path, p, "pt.png", transparency=0))  # index 0 transparent
    assert np.isclose(clear[0, 0], 1.0) and np.isclose(clear[1, 1], 40 / 255, atol=0.01)
    pa = read_image(_saved(tmp_path, p.convert("PA"), "pa.tif"))
    assert np.isclose(pa[1, 1], 40 / 255, atol=0.01)
    frames = [Image.new("L", (8, 8), 0), Image.new("L", (8, 8), 255)]
    gif = _saved(tmp_path, frames[0], "a.gif", save_all=True, append_images=frames[1:])
    assert read_image(gif).max() < 0.1


def test_light_ink_on_a_clear_layer_stays_visible(digits, tmp_path):
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = 255, digits[0]  # white ink, alpha = ink
    path = _saved(tmp_path, Image.fromarray(rgba, "RGBA").resize((140, 140)), "w.png")
    assert corr(prepare_image(path).image, digits[0]) > 0.9


# (b) bad input ----------------------------------------------------------------------------


def _error(path: Path) -> str:
    with pytest.raises(ImageError) as info:
        prepare_image(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_missing_directory_and_not_an_image(tmp_path):
    assert "no such file" in _error(tmp_path / "nope.png")
    assert "directory" in _error(tmp_path)
    (tmp_path / "text.png").write_text("hello")
    assert "not an image" in _error(tmp_path / "text.png")
    (tmp_path / "noise.jpg").write_bytes(np.random.default_rng(0).bytes(5000))
    assert "not an image" in _error(tmp_path / "noise.jpg")


def test_unreadable(tmp_path, monkeypatch):
    path = _saved(tmp_path, Image.new("L", (30, 30)), "locked.png")
    if os.geteuid() != 0:  # root reads anything
        path.chmod(0)
        assert "permission denied" in _error(path)
        path.chmod(0o644)

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(Image, "open", deny)
    assert "permission denied" in _error(path)


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_truncated(digits, tmp_path, suffix):
    path = make_user_style_files(digits[:1], tmp_path, ("png" if suffix == "png" else "jpg",))[0]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert "truncated" in _error(path)


def test_empty_images(tmp_path):
    one_colour = Image.new("RGB", (90, 60), "beige")
    assert "no ink found" in _error(_saved(tmp_path, one_colour, "one.png"))
    rng = np.random.default_rng(1)
    paper = np.linspace(0.6, 0.9, 400)[None, :] + rng.normal(0, 0.02, (300, 400))
    blank = Image.fromarray(np.uint8(np.clip(paper, 0, 1) * 255))
    assert "no ink found" in _error(_saved(tmp_path, blank, "blank.jpg", quality=85))
    assert "too small" in _error(_saved(tmp_path, Image.new("L", (5, 5)), "tiny.png"))


@pytest.mark.parametrize("side, pixels, limit", [(40, 1600, 1000), (50, 2500, 2000)])
def test_decompression_bomb(tmp_path, monkeypatch, side, pixels, limit):
    path = _saved(tmp_path, Image.new("L", (side, side)), f"bomb{side}.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # warning above it, error above twice
    message = _error(path)
    assert "too large" in message and str(pixels) in message and str(limit) in message


def test_arrays_of_the_wrong_shape():
    with pytest.raises(ValueError):
        prepare_array(np.zeros((28, 28, 3), np.uint8))
    with pytest.raises(ImageError, match="no ink found"):
        prepare_array(np.full((28, 28), np.nan, np.float32))


# (c) several digits -------------------------------------------------------------------------


def _several(out: Prepared) -> bool:
    return any("several digits" in w for w in out.warnings)


def _photo(ink: np.ndarray, scale: int = 8) -> np.ndarray:
    """Ink in [0, 1] -> a dark-on-light float32 photo with a gradient and noise."""
    big = np.asarray(Image.fromarray(ink.astype(np.float32)).resize(
        (ink.shape[1] * scale, ink.shape[0] * scale), Image.Resampling.BICUBIC))
    light = np.linspace(1.0, 0.7, big.shape[1])[None, :]
    noise = np.random.default_rng(2).normal(0, 0.015, big.shape)
    return np.clip(light * (0.85 - 0.7 * np.clip(big, 0, 1)) + noise, 0, 1).astype(np.float32)


def test_two_digits_side_by_side_are_flagged(digits):
    for i in range(0, 20, 2):
        pair = np.concatenate([digits[i], digits[i + 1]], axis=1)
        assert _several(prepare_array(pair))
        assert _several(prepare_array(_photo(pair / 255.0)))


def test_three_digits_side_by_side_are_flagged(digits):
    """The outer groups touch the digit's box: they must still count as groups."""
    for i in range(0, 12, 3):
        triple = np.concatenate([digits[i], digits[i + 1], digits[i + 2]], axis=1)
        assert _several(prepare_array(triple))
        assert _several(prepare_array(_photo(triple / 255.0)))


def test_single_digits_are_not_flagged(digits, user_outputs):
    assert not any(_several(prepare_array(d)) for d in digits)
    assert not any(_several(p) for p in user_outputs["png"] + user_outputs["jpg"])


def _drawn(strokes: list[tuple], arcs: list[tuple] = ()) -> np.ndarray:
    im = Image.new("L", (280, 280))
    draw = ImageDraw.Draw(im)
    for line in strokes:
        draw.line(line, fill=255, width=22)
    for box, start, end in arcs:
        draw.arc(box, start, end, fill=255, width=22)
    return np.asarray(im, np.float32) / 255


def test_broken_digits_are_not_flagged():
    # a 4 whose bar stops 29 px (1/8 of its height) short of the upright: an empty column
    # gap with ink on both sides, but narrow; and a 5 whose top bar is detached (a row gap)
    four = _drawn([(150, 30, 60, 180), (60, 180, 160, 180), (200, 30, 200, 260)])
    five = _drawn([(95, 30, 210, 30), (95, 60, 95, 130)], [((60, 110, 210, 255), 200, 150)])
    for ink in (four, five):
        for grey in (ink, _photo(ink, 1)):
            out = prepare_array(grey)
            assert not _several(out), out.warnings
            check_mnist_like(out.image)


def test_cut_off_digit_is_noted(digits):
    out = prepare_array(np.pad(digits[0], ((0, 0), (0, 20)))[:, 12:])
    assert any("border" in w for w in out.warnings)


def test_thin_pen_strokes_come_out_as_wide_as_mnist(tmp_path, digits):
    from mnist_lab.recognise.ops import stroke_width as _stroke_width
    from mnist_lab.recognise.prepare import thicken_thin_strokes

    def width(image):  # the estimate the step uses, in px of the 28x28 field
        return _stroke_width(image.astype(np.float32) / 255)

    mnist = np.median([width(d) for d in digits])
    for pen in (3, 8):  # a fine pen on a 600 px drawing comes out about 0.8 px wide
        im = Image.new("L", (600, 600), 255)
        draw = ImageDraw.Draw(im)
        draw.arc((180, 100, 420, 330), 200, 10, fill=0, width=pen)
        draw.line([(410, 250), (200, 480), (430, 480)], fill=0, width=pen)
        im.save(tmp_path / f"pen{pen}.png")
        out = prepare_image(tmp_path / f"pen{pen}.png").image
        assert abs(width(out) - mnist) < 0.5, (pen, width(out), mnist)
    crop = digits[0].astype(np.float32) / 255  # MNIST-wide strokes are left alone
    assert thicken_thin_strokes(crop) is crop
