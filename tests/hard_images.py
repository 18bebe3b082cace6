"""Photos of MNIST test digits in the conditions that defeat a plain preparation (issue 11).

Each 28x28 MNIST digit (light ink on black) becomes an RGB photo of that digit written
on paper, in one of the conditions of :data:`CONDITIONS`:

- ``plain``: dark ink on plain paper under a lighting gradient (the control);
- ``blue_ink``: light blue ink on a small photo framed tightly around the digit;
- ``red_ink``: red ink;
- ``ruled``: ruled paper (light blue lines, sometimes a red margin), slightly tilted;
- ``squared``: squared paper, slightly tilted;
- ``vignette``: dark photo corners;
- ``small``: a small digit in a large photo;
- ``ruled_small_vignette``: a small digit on ruled paper with dark corners.

The parameters below were fixed (and committed) before the preparation was tuned on
them; do not change them to suit a preparation. Digits come from the MNIST *test* set
only: tune on the validation half (the first 5,000), report on the test half (the rest).

The photo model, per pixel and colour channel (reflectances in [0, 1]):
``paper * (1 - lines * (1 - line_colour)) * (1 - ink * (1 - pen_colour)) * light * cast``
(a colour cast of the camera), then a slight blur, sensor noise and JPEG compression. ``ink`` is the
digit's coverage scaled up with bicubic; ``lines`` the printed rules, anti-aliased.
Everything is deterministic: digit ``i`` in condition ``c`` gets the same photo for a
given ``seed``, whatever else is in the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from user_images import checked_inputs

# Ranges are (low, high), drawn uniformly per photo. Lengths are fractions of the
# photo's short side unless named otherwise.
BASE = {
    "short_side": (480, 960),  # px; the long side is 4/3 of it, either orientation
    "digit": (0.3, 0.5),  # side of the 28x28 field (the digit itself is ~20/28 of it)
    "pen": "dark",
    "lines": None,
    "vignette": (0.0, 0.0),  # light lost in the corners
    "gradient": (0.1, 0.3),  # light lost across the photo, in a random direction
    "noise": (0.01, 0.025),  # sensor noise, standard deviation per channel
    "blur": (0.3, 1.0),  # Gaussian blur radius, px
    "quality": (75, 92),  # JPEG quality
}
CONDITIONS: dict[str, dict] = {
    "plain": {},
    "blue_ink": {"pen": "light_blue", "short_side": (120, 200), "digit": (0.8, 1.0),
                 "noise": (0.015, 0.03)},
    "red_ink": {"pen": "red"},
    "ruled": {"lines": "ruled", "digit": (0.25, 0.45)},
    "squared": {"lines": "squared", "digit": (0.25, 0.45)},
    "vignette": {"vignette": (0.4, 0.65), "digit": (0.2, 0.35)},
    "small": {"short_side": (1200, 1500), "digit": (0.05, 0.1)},
    "ruled_small_vignette": {"lines": "ruled", "vignette": (0.4, 0.65),
                             "short_side": (900, 1200), "digit": (0.08, 0.15)},
}
CONDITION_IDS = {name: i for i, name in enumerate(CONDITIONS)}  # seeds; append new ones only
PENS = {  # RGB reflectance of the ink, before a per-photo jitter of +-0.05
    "dark": (0.12, 0.12, 0.16),
    "light_blue": (0.45, 0.6, 0.92),
    "red": (0.78, 0.16, 0.16),
}
LINES = {
    # spacing as a fraction of the digit field's side; thickness in px of the photo
    "ruled": {"spacing": (0.45, 0.75), "thickness": (1.5, 3.0), "tilt_deg": (-3.0, 3.0),
              "colour": (0.55, 0.7, 0.92), "margin_p": 0.5, "both_directions": False},
    "squared": {"spacing": (0.25, 0.4), "thickness": (1.0, 2.5), "tilt_deg": (-3.0, 3.0),
                "colour": (0.6, 0.72, 0.9), "margin_p": 0.0, "both_directions": True},
}
MARGIN_COLOUR = (0.9, 0.35, 0.35)


def params(condition: str) -> dict:
    """The full parameter set of ``condition`` (BASE updated by its entry)."""
    return {**BASE, **CONDITIONS[condition]}


def _draw(rng: np.random.Generator, span: tuple[float, float]) -> float:
    return float(rng.uniform(*span))


def _rules(shape: tuple[int, int], spec: dict, field_side: int,
           rng: np.random.Generator) -> np.ndarray:
    """Printed lines: the factor (H, W, 3) float32 in (0, 1] they multiply the paper by."""
    h, w = shape
    yy, xx = np.ogrid[0:h, 0:w]
    tilt = np.deg2rad(_draw(rng, spec["tilt_deg"]))
    across = np.float32(-np.sin(tilt)) * xx + np.float32(np.cos(tilt)) * yy  # page vertical
    along = np.float32(np.cos(tilt)) * xx + np.float32(np.sin(tilt)) * yy
    spacing = _draw(rng, spec["spacing"]) * field_side
    half = _draw(rng, spec["thickness"]) / 2
    offset = rng.uniform(0, spacing)

    def lines(d: np.ndarray) -> np.ndarray:  # anti-aliased: 1 on the line, ramp over 1 px
        dist = np.abs((d - offset + spacing / 2) % spacing - spacing / 2)
        return np.clip(half + 0.5 - dist, 0, 1).astype(np.float32)

    cover = lines(across)
    if spec["both_directions"]:
        cover = np.maximum(cover, lines(along))
    factor = 1 - cover[..., None] * (1 - np.array(spec["colour"], np.float32))
    if rng.uniform() < spec["margin_p"]:  # a red margin line, near the left edge
        x0 = rng.uniform(0.05, 0.15) * w
        margin = np.clip(half + 0.5 - np.abs(along - x0), 0, 1).astype(np.float32)
        factor = np.minimum(factor, 1 - margin[..., None] * (1 - np.array(MARGIN_COLOUR,
                                                                          np.float32)))
    return factor


def _light(shape: tuple[int, int], p: dict, rng: np.random.Generator) -> np.ndarray:
    """Illumination (H, W) float32: a gradient times a vignette (dark corners)."""
    h, w = shape
    yy, xx = np.ogrid[0:h, 0:w]
    yy, xx = yy.astype(np.float32), xx.astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.float32(np.cos(angle) / w) * xx + np.float32(np.sin(angle) / h) * yy
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    light = 1.0 - np.float32(_draw(rng, p["gradient"])) * ramp
    cy, cx = h * rng.uniform(0.4, 0.6), w * rng.uniform(0.4, 0.6)
    r2 = ((yy - cy) / (h / 2)) ** 2 + ((xx - cx) / (w / 2)) ** 2  # 2 in the corners
    loss = np.float32(_draw(rng, p["vignette"]))
    return light * (1.0 - loss * np.clip(r2 / 2, 0, 1) ** 1.5)


def render(condition: str, digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One photo of ``digit`` ((28, 28) uint8, light on black) in ``condition``: (H, W, 3) uint8."""
    p = params(condition)
    short = int(rng.integers(p["short_side"][0], p["short_side"][1] + 1))
    h, w = (short, short * 4 // 3) if rng.uniform() < 0.5 else (short * 4 // 3, short)
    side = max(28, int(_draw(rng, p["digit"]) * short))
    big = Image.fromarray(digit.astype(np.float32) / 255.0, mode="F")
    ink = np.clip(np.asarray(big.resize((side, side), Image.Resampling.BICUBIC)), 0, 1)
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    paper = _draw(rng, (0.8, 0.95)) * np.array([1.0, rng.uniform(0.95, 1.0),
                                                 rng.uniform(0.85, 1.0)], np.float32)
    pen = np.clip(np.array(PENS[p["pen"]], np.float32) + rng.uniform(-0.05, 0.05, 3), 0, 1)
    lines = _rules((h, w), LINES[p["lines"]], side, rng) if p["lines"] else None
    cast = rng.uniform(0.92, 1.04, 3).astype(np.float32)  # white balance of the camera
    rgb = _light((h, w), p, rng)[..., None] * (paper * cast * 255)
    if lines is not None:
        rgb *= lines
    rgb[top:top + side, left:left + side] *= 1 - ink[..., None] * (1 - pen)
    sigma = _draw(rng, p["noise"]) * 255
    rgb += rng.standard_normal(rgb.shape, dtype=np.float32) * np.float32(sigma) + 0.5
    im = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), mode="RGB")
    return np.asarray(im.filter(ImageFilter.GaussianBlur(_draw(rng, p["blur"]))))


def make_hard_files(digits: np.ndarray, out_dir: Path | str,
                    conditions: Sequence[str] = tuple(CONDITIONS), seed: int = 0,
                    first_index: int = 0) -> list[Path]:
    """Write every digit in every condition as a JPEG; return the paths, digit-major.

    ``digits``: (N, 28, 28) uint8 MNIST test images; ``first_index``: the test-set index
    of ``digits[0]`` (it seeds each photo, so a digit's photo does not depend on the
    batch). Files are ``{test index:05d}_{condition}.jpg`` in ``out_dir`` (created).
    """
    digits, out = checked_inputs(digits, conditions, list(CONDITIONS), out_dir)
    paths = []
    for i, digit in enumerate(digits, start=first_index):
        for condition in conditions:
            rng = np.random.default_rng([seed, i, CONDITION_IDS[condition]])
            rgb = render(condition, digit, rng)
            quality = int(rng.integers(params(condition)["quality"][0],
                                       params(condition)["quality"][1] + 1))
            path = out / f"{i:05d}_{condition}.jpg"
            Image.fromarray(rgb, mode="RGB").save(path, quality=quality)
            paths.append(path)
    return paths
