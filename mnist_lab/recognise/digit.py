"""Cut the digit out of the ink and normalise it like MNIST: a 20x20 box, centred by mass
in 28x28 (LeCun, Cortes and Burges, "The MNIST database of handwritten digits"; see
:mod:`.prepare`). All arrays float32 in [0, 1], light ink on 0, until :func:`to_uint8`.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from . import ops

BOX, FIELD, CENTRE = 20, 28, 14.0  # MNIST: 20x20 box, 28x28 field, centre of mass at (14, 14)
SPECK = 0.02  # ink groups (projection runs) holding < 2 % of the ink are specks
HALO = 2  # anti-aliased ink is kept within 2 px of definite ink
# stroke widths, px in the 28x28 field (MNIST: median 2.1, 1st percentile 1.25)
STROKE_MIN, STROKE_TARGET = 1.15, 1.9


def _runs(profile: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ink's runs along one axis but specks (< SPECK of the ink): starts, stops, masses."""
    flips = np.flatnonzero(np.diff(np.concatenate(([0], profile > 0, [0])).astype(np.int8)))
    starts, stops = flips[::2], flips[1::2]
    total = np.concatenate(([0], np.cumsum(profile)))
    mass = total[stops] - total[starts]
    keep = (mass >= SPECK * mass.sum()) | (mass == mass.max())
    return starts[keep], stops[keep], mass[keep]


def _span(profile: np.ndarray) -> tuple[int, int]:
    """Kept extent [lo, hi) of the ink along one axis (its :func:`_runs`).

    Runs touching the image edge go too when the others hold at least a tenth of the
    ink: shadow or paper edges, not the digit.
    """
    starts, stops, mass = _runs(profile)
    inner = (starts > 0) & (stops < len(profile))
    if mass[inner].sum() >= 0.1 * mass.sum():
        starts, stops = starts[inner], stops[inner]
    return int(starts[0]), int(stops[-1])


def ink_box(sure: np.ndarray) -> tuple[int, int, int, int]:
    """The digit's box in a (H, W) bool definite-ink mask: (top, bottom, left, right), px.

    Extent of definite ink along rows, then columns within those rows, twice (see `_span`
    for specks and edge artefacts).
    """
    top, bottom, left, right = 0, sure.shape[0], 0, sure.shape[1]
    for _ in range(2):  # the second pass drops what only an artefact in the other axis held
        top, bottom = _span(sure[:, left:right].sum(1))
        left, right = _span(sure[top:bottom].sum(0))
    return top, bottom, left, right


def crop_to_ink(ink: np.ndarray, sure: np.ndarray,
                box: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, list[str]]:
    """Cut the digit out: (H, W) float32 ink + bool definite ink -> (h, w) float32, notes.

    Box = :func:`ink_box` (unless given); widened by HALO px for the anti-aliased fringe,
    which is kept only within HALO px of definite ink; then fitted to what remains. Notes:
    an empty column gap >= 1/4 of the ink's height with >= 15 % of the ink on each side
    (several digits?), ink touching the image border, a digit under 16 px.
    """
    top, bottom, left, right = box or ink_box(sure)
    starts, stops, mass = _runs(sure[top:bottom, left:right].sum(0))  # all groups in the box
    starts, stops = starts + left, stops + left
    notes, before = [], np.cumsum(mass)[:-1] / mass.sum()
    wide_gap = starts[1:] - stops[:-1] >= 0.25 * (bottom - top)
    if np.any(wide_gap & (before >= 0.15) & (before <= 0.85)):
        notes.append("ink falls into separate groups side by side: several digits? Only one "
                     "digit per image is supported; the result is likely wrong")
    if top == 0 or left == 0 or bottom == sure.shape[0] or right == sure.shape[1]:
        notes.append("ink touches the image border: the digit may be cut off, or an edge or "
                     "shadow was taken for ink")
    rows = slice(max(top - HALO, 0), bottom + HALO)
    cols = slice(max(left - HALO, 0), right + HALO)
    crop = np.where(ops.minmax(sure[rows, cols], 2 * HALO + 1, np.maximum), ink[rows, cols], 0)
    ys, xs = np.flatnonzero(crop.any(1)), np.flatnonzero(crop.any(0))
    crop = crop[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1].astype(np.float32)
    if max(crop.shape) < 16:
        notes.append(f"the digit is only {max(crop.shape)} px in the image: a larger, closer "
                     "picture of it would be recognised more reliably")
    return crop, notes


def thicken_thin_strokes(crop: np.ndarray) -> np.ndarray:
    """(h, w) float32 ink -> (h', w') float32: strokes at least MNIST-thin after scaling.

    MNIST strokes are about 2 px wide in the 28x28 field (this estimate on 2,000 test
    digits: median 2.1 px, 1st percentile 1.25). A pen line in a photo or drawing
    often ends up near 0.8 px once the digit is shrunk to 20 px: faint, and misread
    (two models fell from 99-100 % to 87 % on MNIST digits thinned to about 1.1 px;
    with this step, 94 %). Under STROKE_MIN px, the strokes are widened by a grey
    dilation at this resolution to about STROKE_TARGET px; otherwise (over 99 % of
    MNIST-like digits) the crop is unchanged.
    """
    width = ops.stroke_width(crop) * BOX / max(crop.shape)
    if width >= STROKE_MIN:
        return crop
    grow = (STROKE_TARGET - width) * max(crop.shape) / BOX  # in crop pixels
    k = 2 * max(1, round(grow / 2)) + 1
    padded = np.pad(crop, k // 2)
    return ops.minmax(padded, k, np.maximum)


def scale_to_box(crop: np.ndarray) -> np.ndarray:
    """(h, w) float32 -> float32 in [0, 1], longer side exactly 20 px, aspect ratio kept.

    Shrinking uses Pillow's BOX filter (area average: the anti-aliasing of MNIST's own
    normalisation); enlarging a digit under 20 px uses LANCZOS, clipped to [0, 1].
    """
    h, w = crop.shape
    s = BOX / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    resample = Image.Resampling.BOX if s <= 1 else Image.Resampling.LANCZOS
    return np.clip(np.asarray(Image.fromarray(crop, mode="F").resize(size, resample)), 0, 1)


def centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Paste (h, w) float32 into a (28, 28) float32 zero field, centre of mass at (14, 14).

    Whole-pixel shift (rounded; clamped so nothing is cut off) as in MNIST, whose centres
    of mass all lie within 0.5 px of (14, 14): a sub-pixel shift would interpolate, i.e.
    blur the anti-aliased strokes a second time.
    """
    (h, w), mass = digit.shape, float(digit.sum())
    top = math.floor(CENTRE - float(digit.sum(1) @ np.arange(h)) / mass + 0.5)
    left = math.floor(CENTRE - float(digit.sum(0) @ np.arange(w)) / mass + 0.5)
    top, left = min(max(top, 0), FIELD - h), min(max(left, 0), FIELD - w)
    out = np.zeros((FIELD, FIELD), np.float32)
    out[top:top + h, left:left + w] = digit
    return out


def to_uint8(field_: np.ndarray) -> np.ndarray:
    """(28, 28) float32 -> (28, 28) uint8, the brightest ink 255 (as in MNIST), background 0."""
    return np.round(field_ * (255 / max(float(field_.max()), 1e-6))).astype(np.uint8)
