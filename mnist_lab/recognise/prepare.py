"""Turn a user's image of one handwritten digit into what an MNIST model expects.

MNIST convention (Y. LeCun, C. Cortes, C. J. C. Burges, "The MNIST database of
handwritten digits", http://yann.lecun.com/exdb/mnist/): "The original black and white
(bilevel) images from NIST were size normalized to fit in a 20x20 pixel box while
preserving their aspect ratio. The resulting images contain grey levels as a result of
the anti-aliasing technique used by the normalization algorithm. the images were
centered in a 28x28 image by computing the center of mass of the pixels, and translating
the image so as to position this point at the center of the 28x28 field."  So: light ink
on 0, longer side 20 px, centre of mass at pixel (14, 14) (within 0.5 px in MNIST's test set).

Steps (float32 in [0, 1] until the last): read_image (colour kept; made grey by
images.ink_contrast, so coloured ink stays dark) -> downscale -> to_light_ink ->
remove_background (with paper.lighting_surface for vignetting) -> paper.remove_rules (ruled
or squared paper) -> faint_strokes and at_full_strength (light ink whose flow varies) ->
crop_to_ink -> thicken_thin_strokes -> scale_to_box -> centre_by_mass
-> to_uint8 (the last five in :mod:`.digit`). A digit small in its image is prepared again
from the region around it (closer_look), read at the file's full resolution.
`prepare_image(path)` runs them all; `prepare_colour(image)` and `prepare_array(grey)`
start from a decoded array.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import images, ops
from .digit import (BOX, HALO, centre_by_mass, crop_to_ink, ink_box,  # noqa: F401
                    scale_to_box, thicken_thin_strokes, to_uint8)
from .images import ImageError, read_image
from .paper import RULE_TILT_DEG, faint_lines, lighting_surface, remove_rules

WORK_SIDE = 240  # analyse at a short side of 240..479 px: thin strokes survive, and it is fast
COARSE_SIDE = 48  # lighting is estimated on a grid with a short side of 48..95 cells
SMALL, CLOSER = 0.25, 3.0  # a digit under 1/4 of the short side: a closer look, 3x its size
# faint parts of strokes: >= 4 noise sigmas and >= 15 % of definite ink's level (a light
# ballpoint's flow: 25..50 % at its weakest; show-through lines: 5..9 %, issue 20)
FAINT_NOISE, FAINT = 4.0, 0.15
FAINT_RUN = 16  # px in a straight row or column: a line of the paper, not a faint stroke
# a thin pen: definite strokes under 0.8 px once the digit is 20 px tall. Validation half:
# every thin-pen photo measured 0.07..0.73; palette and PNG files of MNIST digits 0.65..3.4,
# 3 of 600 under 0.8 (MNIST's own strokes: 1st percentile 1.25 px, digit.thicken_thin_strokes)
FAINT_PEN = 0.8


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
    Lighting estimates on the coarse grid vote with the sign of the residual's third
    moment: a least-squares plane and box blurs over 1/3 and 1/6 of the short side (glare
    fools the plane, a sharp shadow one blur, thick strokes the small one), and for a
    photo (a coarse grid of 48 cells or more) a polynomial surface (:func:`.paper.
    lighting_surface`, one round), which follows vignetting (dark corners fooled the
    others in 15 of 300 photos of the `ruled_small_vignette` tuning set; 1 with it); it
    breaks a tie. A dark tail means dark ink on light paper: invert. No error on the
    10,000 MNIST test digits (too small for the surface).
    """
    c = ops.reduce(grey, min(grey.shape) // COARSE_SIDE).astype(np.float64)
    plane = c - c.mean()
    for axis, n in enumerate(c.shape):  # on a regular grid each slope can be fitted alone
        x = np.arange(n) - (n - 1) / 2
        plane -= np.expand_dims(x * ((x @ plane.mean(axis=1 - axis)) / (x @ x)), 1 - axis)
    c = c.astype(np.float32)
    blurs = [c - ops.upsample(ops.reduce(c, max(1, min(c.shape) // d)), c.shape) for d in (3, 6)]
    estimates = [plane, *blurs]
    if min(c.shape) >= COARSE_SIDE:  # a photo: vignetting fools the plane and the blurs
        estimates.append(c - lighting_surface(c, rounds=1))
    votes = [np.sign(np.mean((d - d.mean()) ** 3)) for d in estimates]
    dark_ink = sum(votes) < 0 or (sum(votes) == 0 and votes[-1] < 0)
    return (1.0 - grey if dark_ink else grey), bool(dark_ink)


def remove_background(light: np.ndarray,
                      inverted: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """Flatten the lighting, split ink from paper: (H, W) float32 light ink -> (ink, sure,
    weak).

    `ink`: (H, W) float32 in [0, 1], paper exactly 0, anti-aliased edges kept as grey;
    `sure`: (H, W) bool, definite ink (all False if nothing stands out from the noise);
    `weak`: the least ink of a faint stroke (:func:`faint_strokes`), FAINT_NOISE noise
    sigmas and FAINT of `level` at least, in units of `ink`.
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
    if min(c.shape) >= COARSE_SIDE:  # a photo: the lighting surface follows vignetting
        bg = np.maximum(bg, lighting_surface(c, start=bg))
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
    scale = 1 / max(level - paper, 1e-6)
    r *= scale
    np.clip(r, 0, 1, out=r)
    r *= above
    return r, sure, max(FAINT_NOISE * noise * scale, FAINT)


def faint_strokes(ink: np.ndarray, sure: np.ndarray, weak: float,
                  printed: np.ndarray) -> np.ndarray:
    """The faint parts of strokes: (H, W) bool, given light ``ink`` ((H, W) float32 in
    [0, 1]), its definite ink ``sure`` and where printed rules ran (``printed``; both
    (H, W) bool).

    Hysteresis (J. Canny, "A computational approach to edge detection", IEEE PAMI 8(6),
    1986): pixels of ``ink`` over ``weak`` that a path of such pixels joins to the
    digit's definite ink (:func:`.ops.connected_to`; within its :func:`~.digit.ink_box`,
    not specks or edge artefacts), off the rules and over 2 HALO px from definite ink
    (nearer is its blurred edge; the crop keeps HALO px around both). A light ballpoint's
    strokes fade where its flow is weak, under the Otsu split of the definite ink: without
    them a loop opens (issue 20). Left out: the lines of the paper where they meet the
    digit (rules, and lines seen through the paper: :func:`.paper.faint_lines`); on lined
    paper, also what may be left of them: pixels in straight rows or columns of FAINT_RUN
    px or more (a faint stroke's curve is flat over fewer), then the pieces that are thin
    straight lines along the image's axes (:func:`_paper_lines`); pieces that reach the
    image's border (shadows, paper edges); and specks under 2 HALO + 1 px. Only for a
    thin pen: the digit's definite strokes under FAINT_PEN px once it is scaled to the
    20 px box, well under MNIST's thinnest; a bold pen's faint pieces are mostly paper (a
    dark corner beside a small digit), and beside a normal pen's ragged ink (a palette
    image's) they are its blurred edge, which raised to full strength would embolden it.
    """
    near = ops.minmax(sure.astype(np.float32), 4 * HALO + 1, np.maximum) > 0
    above = ink > weak
    if np.count_nonzero(above & ~near & ~printed) < 2 * HALO + 1:  # specks at most
        return np.zeros(ink.shape, bool)
    top, bottom, left, right = ink_box(sure)
    digit = np.zeros(sure.shape, bool)
    digit[top:bottom, left:right] = sure[top:bottom, left:right]
    pen = ops.widths(np.where(digit, 0, -1))[0]  # px, of the definite strokes
    if pen * BOX / max(bottom - top, right - left) >= FAINT_PEN:
        return np.zeros(ink.shape, bool)
    lines = faint_lines(ink)
    lined = printed.any() or lines.any()
    far = ops.connected_to(above, digit) & ~near & ~printed & ~lines
    if lined:
        far &= ~ops.in_long_runs(far, FAINT_RUN)
    labels = ops.components(far)
    dropped = np.bincount(labels[far], minlength=labels.size + 1) < 2 * HALO + 1
    dropped[np.concatenate([labels[[0, -1]].ravel(), labels[:, [0, -1]].ravel()])] = True
    if lined:
        dropped[_paper_lines(labels)] = True
    dropped[-1] = True  # off the pieces
    return ~dropped[labels]


def _paper_lines(labels: np.ndarray) -> np.ndarray:
    """The labels (ints) of the pieces in ``labels`` ((H, W) intp, -1 off them) that are
    thin straight lines within RULE_TILT_DEG of the image's axes, as the lines of ruled or
    squared paper are: their pixels spread across their major axis (covariance) by under
    1 px (standard deviation), along it over 2 HALO + 1 px (a uniform line's length)."""
    ys, xs = np.nonzero(labels >= 0)
    which = labels[ys, xs]
    n = np.bincount(which)
    seen = np.flatnonzero(n)
    my, mx, yy, xx, xy = (np.bincount(which, weights=v)[seen] / n[seen]
                          for v in (ys, xs, ys * ys, xs * xs, ys * xs))
    syy, sxx, sxy = yy - my * my, xx - mx * mx, xy - my * mx
    middle, half = (syy + sxx) / 2, np.hypot((syy - sxx) / 2, sxy)
    major = np.rad2deg(0.5 * np.arctan2(2 * sxy, sxx - syy)) % 90  # from the x axis
    along = np.minimum(major, 90 - major) <= RULE_TILT_DEG
    return seen[along & (middle - half < 1.0) & (np.sqrt(12 * (middle + half)) > 2 * HALO + 1)]


def at_full_strength(ink: np.ndarray, faint: np.ndarray, weak: float) -> None:
    """Ink (H, W) float32 (1 = definite ink's level) near faint strokes (``faint``, (H, W)
    bool) raised to full strength, in place.

    Within HALO px of ``faint``, each pixel is divided by the brightest ink within HALO
    px (the stroke's core; at least ``weak``, at most 1): the core of a faint stroke
    becomes full ink and its edges stay anti-aliased, as MNIST's strokes, normalised from
    bilevel images, are; pixels beside full-strength ink are unchanged.
    """
    region = ops.minmax(faint.astype(np.float32), 2 * HALO + 1, np.maximum) > 0
    core = ops.minmax(ink, 2 * HALO + 1, np.maximum)
    ink[region] /= np.clip(core[region], weak, 1)


def _prepare(a: np.ndarray, source: object) -> tuple[Prepared, tuple | None]:
    """Prepare a (H, W) float32 grey image: (Prepared, the region of a closer look or None).

    The region, (top, bottom, left, right) as fractions of the image, is given when the
    digit is small in it (see :func:`closer_look`).
    """
    work = downscale(a)
    ink, sure, weak = remove_background(*to_light_ink(work))
    if not sure.any():
        raise ImageError(source, "no ink found: the image is blank, one colour, or too faint")
    printed, doubts = np.zeros(ink.shape, bool), []
    if min(work.shape) >= 2 * COARSE_SIDE:  # a photo, not a digit-sized array
        ink_left, sure_left, along, doubts = remove_rules(ink, sure)
        if sure_left.any():  # not when the "rules" were all the ink there was
            ink, sure, printed = ink_left, sure_left, along
    faint = faint_strokes(ink, sure, weak, printed)
    if faint.any():
        at_full_strength(ink, faint, weak)
        sure = sure | faint
    box = ink_box(sure)
    crop, notes = crop_to_ink(ink, sure, box)
    prepared = Prepared(to_uint8(centre_by_mass(scale_to_box(thicken_thin_strokes(crop)))),
                        doubts + notes)
    return prepared, closer_look(box, work.shape)


def closer_look(box: tuple[int, int, int, int], shape: tuple[int, int]) -> tuple | None:
    """The region to prepare again when the digit is small: fractions (top, bottom, left,
    right) of the image, or None.

    Small: the ink's box (top, bottom, left, right, px of an image of ``shape``) has a
    longer side under SMALL of the short side. The region is CLOSER times that side
    around the box's centre: there the lighting and the rules of the paper are estimated
    afresh, at the resolution the file has (a large photo is analysed at WORK_SIDE).
    """
    top, bottom, left, right = box
    side = max(bottom - top, right - left)
    if side >= SMALL * min(shape):
        return None
    half = max(CLOSER * side, 24) / 2
    cy, cx = (top + bottom) / 2, (left + right) / 2
    h, w = shape
    return (max(cy - half, 0) / h, min(cy + half, h) / h, max(cx - half, 0) / w,
            min(cx + half, w) / w)


def prepare_array(grey: np.ndarray, source: object = "<array>") -> Prepared:
    """Prepare a decoded (H, W) image of either polarity -> Prepared((28, 28) uint8, warnings).

    Accepts uint8 (/255), uint16 (/65535), bool or float in [0, 1]. Raises ImageError naming
    `source` if it is too small or holds no ink, ValueError if it is not 2-D (colour
    images: :func:`prepare_colour`).
    """
    if np.ndim(grey) != 2:
        raise ValueError(f"expected a 2-D greyscale array, got shape {np.shape(grey)}")
    return prepare_colour(grey, source)


def prepare_colour(image: np.ndarray, source: object = "<array>",
                   region_reader=None) -> Prepared:
    """Prepare a decoded image, grey (H, W) or colour (H, W, 3 or 4), uint8 or float.

    Colour becomes grey by :func:`~.images.ink_contrast` (coloured ink stays dark). A small
    digit is prepared again from the region around it (:func:`closer_look`), cut from
    ``image`` or read by ``region_reader(region)`` (a file, at its full resolution).
    Raises ImageError naming `source` if it is too small or holds no ink, ValueError for
    another shape.
    """
    a = images.as_grey(image, source)
    prepared, region = _prepare(a, source)
    if region is None:
        return prepared
    if region_reader is None:
        h, w = a.shape
        top, bottom, left, right = region
        sub = a[round(top * h):round(bottom * h), round(left * w):round(right * w)]
    else:
        sub = region_reader(region)
    try:
        return _prepare(images.as_grey(sub, source), source)[0]
    except ImageError:
        return prepared


def prepare_image(path: str | Path) -> Prepared:
    """Read and prepare one image file: Prepared((28, 28) uint8, warnings), or ImageError."""
    image = read_image(path, min_side=WORK_SIDE, colour=True)
    try:
        return prepare_colour(image, path, lambda region: read_image(
            path, min_side=WORK_SIDE, colour=True, region=region))
    except ImageError:
        raise
    except Exception as e:  # noqa: BLE001 - odd input must not end in a bare traceback
        raise ImageError(path, f"cannot prepare: {type(e).__name__}: {e}") from e
