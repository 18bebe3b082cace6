"""Build "user-style" image files from MNIST digits, for tests of `mnist_lab.recognise.prepare`.

Each 28x28 MNIST digit (light ink on black) is turned into what a user would hand
to a trained model: dark ink on light paper, scaled up to a few hundred pixels,
placed off-centre on a larger canvas, lit by a brightness gradient, with mild
sensor noise (the paint-style ``rgba`` and ``pt`` formats are clean ink on a
transparent background), and saved in one of several file formats / Pillow modes.
Everything is deterministic: digit ``i`` in format ``j`` always gets the same size,
position, lighting and noise for a given ``seed``, whatever else is in the batch.

Reusable by other tests (e.g. "a model's accuracy on these files is within one
point of its accuracy on the 28x28 digits"): ``make_user_style_files`` returns the
paths digit-major, and ``digit_index`` recovers the digit's row from a path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

# format name -> file suffix. All are written dark-on-light unless noted.
FORMATS: dict[str, str] = {
    "png": "png",  # greyscale (L) PNG
    "jpg": "jpg",  # RGB JPEG, quality 85, blue pen on warm paper
    "rgb": "png",  # RGB PNG, blue pen on warm paper
    "rgba": "png",  # RGBA paint-style (no lighting/noise): transparent bg (black RGB), opaque ink
    "p": "png",  # palette PNG (adaptive, 64 colours), no transparency
    "pt": "png",  # palette PNG paint-style: 16 grey levels, background index transparent (black)
    "i16": "png",  # 16-bit greyscale PNG (Pillow opens it as I;16 or I)
    "exif": "jpg",  # greyscale JPEG stored rotated 90 deg, EXIF Orientation=6
    "bmp": "bmp",  # greyscale BMP
    "gif": "gif",  # GIF (palette)
    "tiff": "tif",  # greyscale TIFF
    "webp": "webp",  # RGB WebP, lossy
}
DEFAULT_FORMATS: tuple[str, ...] = ("png", "jpg")


def digit_index(path: Path | str) -> int:
    """Row of ``digits`` that the file was made from (names are ``{index:05d}_{fmt}.ext``)."""
    return int(Path(path).name.split("_", 1)[0])


def _scene(digit: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The digit's ink coverage placed off-centre on a canvas, and the lighting.

    Returns ``(ink, light)``, both (H, W) float32: ``ink`` in [0, 1] (1 = full ink;
    the 28x28 field scaled to 168..280 px with bicubic), ``light`` in [0.55, 1], an
    illumination that falls off by 25..45 % in a random direction.
    """
    side = int(rng.integers(6, 11)) * 28
    big = Image.fromarray(digit.astype(np.float32) / 255.0, mode="F")
    ink = np.clip(np.asarray(big.resize((side, side), Image.Resampling.BICUBIC)), 0, 1)
    height = int(side * rng.uniform(1.25, 1.8))
    width = int(side * rng.uniform(1.25, 2.0))
    canvas = np.zeros((height, width), np.float32)
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    canvas[top:top + side, left:left + side] = ink
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = np.cos(angle) * xx / width + np.sin(angle) * yy / height
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    return canvas, (1.0 - rng.uniform(0.25, 0.45) * ramp).astype(np.float32)


def _u8(a: np.ndarray) -> np.ndarray:
    return np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)


def _render(fmt: str, digit: np.ndarray, rng: np.random.Generator) -> tuple[Image.Image, dict]:
    """Pillow image (and save options) for one digit in one format."""
    ink, light = _scene(digit, rng)
    paper, pen = rng.uniform(0.75, 0.95), rng.uniform(0.05, 0.25)
    noise = rng.normal(0.0, 0.015, ink.shape).astype(np.float32)  # mild sensor noise
    if fmt in ("jpg", "rgb", "webp"):
        tint = paper * np.array([1.0, 0.96, 0.88], np.float32)  # warm paper
        blue = np.array([0.15, 0.2, 0.55], np.float32)  # blue pen
        rgb = light[..., None] * (tint + (blue - tint) * ink[..., None]) + noise[..., None]
        im = Image.fromarray(_u8(rgb), mode="RGB")
        return im, ({"quality": 85} if fmt != "rgb" else {"compress_level": 1})
    if fmt == "rgba":
        rgba = np.zeros(ink.shape + (4,), np.uint8)
        rgba[..., 2] = np.where(ink > 0, 110, 0)  # dark blue ink, black where transparent
        rgba[..., 3] = _u8(ink)
        return Image.fromarray(rgba, mode="RGBA"), {"compress_level": 1}
    if fmt == "pt":
        levels = np.round(ink * 15).astype(np.uint8)  # index 0 = background
        im = Image.fromarray(levels, mode="P")
        palette = [0, 0, 0] + [v for i in range(1, 16) for v in (255 - 17 * i,) * 3]
        im.putpalette(palette)
        return im, {"compress_level": 1, "transparency": 0}
    grey = light * (paper + (pen - paper) * ink) + noise
    if fmt == "i16":
        return Image.fromarray(np.round(grey * 65535).astype(np.uint16)), {"compress_level": 1}
    im = Image.fromarray(_u8(grey), mode="L")
    if fmt in ("p", "gif"):
        return im.convert("RGB").quantize(64), ({"compress_level": 1} if fmt == "p" else {})
    if fmt == "exif":
        exif = Image.Exif()
        exif[0x0112] = 6  # "rotate 90 deg clockwise to display"
        return im.transpose(Image.Transpose.ROTATE_90), {"exif": exif, "quality": 90}
    if fmt == "png":
        return im, {"compress_level": 1}
    return im, {}


def checked_inputs(digits, names: Sequence[str], known: Sequence[str],
                   out_dir: Path | str) -> tuple[np.ndarray, Path]:
    """``digits`` as an (N, 28, 28) uint8 array and ``out_dir`` created, for the makers.

    Raises:
        ValueError: ``digits`` has another shape or dtype, or a name is not in ``known``.
    """
    digits = np.asarray(digits)
    if digits.ndim != 3 or digits.shape[1:] != (28, 28) or digits.dtype != np.uint8:
        raise ValueError(f"digits must be (N, 28, 28) uint8, got {digits.shape} {digits.dtype}")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown {unknown}; choose from {list(known)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return digits, out


def make_user_style_files(digits: np.ndarray, out_dir: Path | str,
                          formats: Sequence[str] = DEFAULT_FORMATS, seed: int = 0) -> list[Path]:
    """Write every digit in every format; return the paths, digit-major.

    ``digits``: (N, 28, 28) uint8 MNIST images (light ink on black). Path number
    ``i * len(formats) + j`` is digit ``i`` in ``formats[j]``, named
    ``{i:05d}_{format}.{suffix}`` inside ``out_dir`` (created if missing).
    """
    digits, out = checked_inputs(digits, formats, sorted(FORMATS), out_dir)
    paths = []
    for i, digit in enumerate(digits):
        for j, fmt in enumerate(formats):
            rng = np.random.default_rng([seed, i, j])
            im, options = _render(fmt, digit, rng)
            path = out / f"{i:05d}_{fmt}.{FORMATS[fmt]}"
            im.save(path, **options)
            paths.append(path)
    return paths


def load_mnist_test(root: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST test set from ``root/MNIST/raw`` (torchvision's layout): images, labels.

    Images (10000, 28, 28) uint8, light ink on black; labels (10000,) int64.
    """
    raw = Path(root) / "MNIST" / "raw"
    images = np.fromfile(raw / "t10k-images-idx3-ubyte", np.uint8, offset=16).reshape(-1, 28, 28)
    labels = np.fromfile(raw / "t10k-labels-idx1-ubyte", np.uint8, offset=8)
    return images, labels.astype(np.int64)
