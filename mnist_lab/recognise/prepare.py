"""Turn a user's image of one handwritten digit into what an MNIST model expects.

MNIST convention (Y. LeCun, C. Cortes, C. J. C. Burges, "The MNIST database of
handwritten digits", http://yann.lecun.com/exdb/mnist/): "The original black and white
(bilevel) images from NIST were size normalized to fit in a 20x20 pixel box while
preserving their aspect ratio. The resulting images contain grey levels as a result of
the anti-aliasing technique used by the normalization algorithm. the images were
centered in a 28x28 image by computing the center of mass of the pixels, and translating
the image so as to position this point at the center of the 28x28 field."  So: light ink
on 0, longer side 20 px, centre of mass at pixel (14, 14) (within 0.5 px in MNIST's test set).

Steps (float32 in [0, 1] until the last): read_image -> downscale -> to_light_ink ->
remove_background -> crop_to_ink -> scale_to_box -> centre_by_mass -> to_uint8.
`prepare_image(path)` runs them all, `prepare_array(grey)` starts from a decoded array.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from . import ops
from .images import ImageError, read_image

WORK_SIDE = 240  # analyse at a short side of 240..479 px: thin strokes survive, and it is fast
COARSE_SIDE = 48  # lighting is estimated on a grid with a short side of 48..95 cells
BOX, FIELD, CENTRE = 20, 28, 14.0  # MNIST: 20x20 box, 28x28 field, centre of mass at (14, 14)
SPECK = 0.02  # ink groups (projection runs) holding < 2 % of the ink are specks
HALO = 2  # anti-aliased ink is kept within 2 px of definite ink
# stroke widths, px in the 28x28 field (MNIST: median 2.1, 1st percentile 1.25)
STROKE_MIN, STROKE_TARGET = 1.15, 1.9


@dataclass
class Prepared:
    """`image`: (28, 28) uint8, ink up to 255 on 0 as in MNIST; `warnings`: doubts about it."""

    image: np.ndarray
    warnings: list[str] = field(default_factory=list)


def downscale(grey: np.ndarray, min_side: int = WORK_SIDE) -> np.ndarray:
    """(H, W) -> (H/f, W/f) float32, box average by the largest whole f leaving >= min_side."""
    return ops.reduce(grey, min(grey.shape) // min_side)


def to_light_ink(grey: np.ndarray) -> tuple[np.ndarray, bool]:
    """Polarity: (H, W) float32 in [0, 1] -> (same with the ink light, whether it was inverted).

    Ink is the minority, so it is the long tail of the image once the lighting is out.
    Three lighting estimates on the coarse grid vote with the sign of the residual's third
    moment: a least-squares plane and box blurs over 1/3 and 1/6 of the short side (glare
    fools the plane, a sharp shadow one blur, thick strokes the small one). A dark tail
    means dark ink on light paper: invert. No error on the 10,000 MNIST test digits.
    """
    c = ops.reduce(grey, min(grey.shape) // COARSE_SIDE).astype(np.float64)
    plane = c - c.mean()
    for axis, n in enumerate(c.shape):  # on a regular grid each slope can be fitted alone
        x = np.arange(n) - (n - 1) / 2
        plane -= np.expand_dims(x * ((x @ plane.mean(axis=1 - axis)) / (x @ x)), 1 - axis)
    c = c.astype(np.float32)
    blurs = [c - ops.upsample(ops.reduce(c, max(1, min(c.shape) // d)), c.shape) for d in (3, 6)]
    centred = [d - d.mean() for d in (plane, *blurs)]
    dark_ink = sum(np.sign(np.mean(d * d * d)) for d in centred) < 0
    return (1.0 - grey if dark_ink else grey), bool(dark_ink)


def remove_background(light: np.ndarray, inverted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Flatten the lighting, split ink from paper: (H, W) float32 light ink -> (ink, sure).

    `ink`: (H, W) float32 in [0, 1], paper exactly 0, anti-aliased edges kept as grey;
    `sure`: (H, W) bool, definite ink (all False if nothing stands out from the noise).
    Background: grey opening of the coarse grid, window 4x the stroke width (1/8..1/3 of
    the short side), upsampled and subtracted; divided by the paper's brightness if it was
    light (a shadow dims the ink too). Residual r: paper level m and noise s from its 5th
    and 25th percentiles; definite ink = Otsu split of r above m + 3 s, whose 90th
    percentile `level` must exceed m + max(8 s, 0.02). ink = (r - m) / (level - m) in [0, 1].
    """
    c = ops.reduce(light, min(light.shape) // COARSE_SIDE)
    k = max(3, min(c.shape) // 3 | 1)
    bg = ops.minmax(ops.minmax(c, k, np.minimum), k, np.maximum)
    k_thin = min(k, max(3, min(c.shape) // 8 | 1, int(4 * ops.stroke_width(c - bg)) | 1))
    if k_thin < k:  # thin strokes: a smaller window follows shadows and corners better
        bg = ops.minmax(ops.minmax(c, k_thin, np.minimum), k_thin, np.maximum)
    bg = ops.upsample(bg, light.shape)
    r = light - bg
    if inverted:
        r /= np.maximum(1.0 - bg, 0.05)
    hist, lo, step = ops.hist(r[::2, ::2], 1024)  # every 4th pixel is plenty for statistics
    cum = np.cumsum(hist)
    q05, q25 = (lo + float(i) * step for i in np.searchsorted(cum, [0.05 * cum[-1], cum[-1] / 4]))
    noise = (q25 - q05) / 0.97  # Gaussian sigma from the 5th..25th percentiles
    paper = q25 + 0.674 * noise
    floor = paper + 3 * noise + 1e-3
    first = min(int((floor - lo) / step) + 1, len(hist) - 1)
    cut = first + ops.otsu(hist[first:])  # last bin that is not definite ink
    level = lo + float(np.searchsorted(cum, cum[cut] + 0.9 * (cum[-1] - cum[cut]))) * step
    sure = r > lo + (cut + 1) * step
    if step * len(hist) < 1e-3 or cut >= len(hist) - 1 or level < paper + max(8 * noise, 0.02):
        sure[:] = False
    above = r > floor
    r -= paper
    r *= 1 / max(level - paper, 1e-6)
    np.clip(r, 0, 1, out=r)
    r *= above
    return r, sure


def _span(profile: np.ndarray) -> tuple[int, int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Kept extent [lo, hi) of the ink along one axis, and its runs (starts, stops, masses).

    Runs holding < SPECK of the ink are specks. Runs touching the image edge go too when
    the others hold at least a quarter of the ink: shadow or paper edges, not the digit.
    """
    flips = np.flatnonzero(np.diff(np.concatenate(([0], profile > 0, [0])).astype(np.int8)))
    starts, stops = flips[::2], flips[1::2]
    total = np.concatenate(([0], np.cumsum(profile)))
    mass = total[stops] - total[starts]
    keep = (mass >= SPECK * mass.sum()) | (mass == mass.max())
    inner = keep & (starts > 0) & (stops < len(profile))
    if mass[inner].sum() >= 0.25 * mass[keep].sum():
        keep = inner
    return int(starts[keep][0]), int(stops[keep][-1]), (starts[keep], stops[keep], mass[keep])


def crop_to_ink(ink: np.ndarray, sure: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Cut the digit out: (H, W) float32 ink + bool definite ink -> (h, w) float32, notes.

    Box = extent of definite ink along rows, then columns within those rows, twice (see
    `_span` for specks and edge artefacts); widened by HALO px for the anti-aliased fringe,
    which is kept only within HALO px of definite ink; then fitted to what remains. Notes:
    an empty column gap >= 1/4 of the ink's height with >= 15 % of the ink on each side
    (several digits?), ink touching the image border, a digit under 16 px.
    """
    top, bottom, left, right = 0, sure.shape[0], 0, sure.shape[1]
    for _ in range(2):  # the second pass drops what only an artefact in the other axis held
        top, bottom, _ = _span(sure[:, left:right].sum(1))
        left, right, (starts, stops, mass) = _span(sure[top:bottom].sum(0))
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


def prepare_array(grey: np.ndarray, source: object = "<array>") -> Prepared:
    """Prepare a decoded (H, W) image of either polarity -> Prepared((28, 28) uint8, warnings).

    Accepts uint8 (/255), uint16 (/65535), bool or float in [0, 1]. Raises ImageError naming
    `source` if it is too small or holds no ink, ValueError if it is not 2-D.
    """
    a = np.asarray(grey)
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D greyscale array, got shape {a.shape}")
    if min(a.shape) < 8:
        raise ImageError(source, f"{a.shape[1]}x{a.shape[0]} px is too small for a digit")
    if a.dtype != np.float32 or not (0 <= a.min() and a.max() <= 1):  # (NaN fails too)
        scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(a.dtype, 1.0)
        a = np.clip(np.nan_to_num(a.astype(np.float32) / scale), 0, 1)
    ink, sure = remove_background(*to_light_ink(downscale(a)))
    if not sure.any():
        raise ImageError(source, "no ink found: the image is blank, one colour, or too faint")
    crop, notes = crop_to_ink(ink, sure)
    return Prepared(to_uint8(centre_by_mass(scale_to_box(thicken_thin_strokes(crop)))), notes)


def prepare_image(path: str | Path) -> Prepared:
    """Read and prepare one image file: Prepared((28, 28) uint8, warnings), or ImageError."""
    grey = read_image(path, min_side=WORK_SIDE)
    try:
        return prepare_array(grey, source=path)
    except ImageError:
        raise
    except Exception as e:  # noqa: BLE001 - odd input must not end in a bare traceback
        raise ImageError(path, f"cannot prepare: {type(e).__name__}: {e}") from e
