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

Issue 20 appended five, all drawn with a thin pen (the digit's skeleton redrawn 1-2 px
wide at photo scale, see :func:`thin_pen_ink`; the true digit is then that drawing, see
:func:`truth`):

- ``thin_pen``: a thin pen on grey paper with faint show-through lines;
- ``tall_crop``: a tall, narrow photo framed tightly around the digit;
- ``long_stems``: only 1, 4 and 7, whose long straight stems span most of a tall, tight
  photo, thin pen on grey paper with faint show-through lines (the photos whose stems
  were erased as ruled lines);
- ``light_small``: light blue ballpoint or pencil on a small photo;
- ``light_uneven``: the same with the ink's flow uneven along the strokes, as a ballpoint
  that skips (added after ``light_small`` alone had not reproduced a lost loop, before
  the preparation was changed).

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
from PIL import Image, ImageDraw, ImageFilter

from user_images import checked_inputs

# Ranges are (low, high), drawn uniformly per photo. Lengths are fractions of the
# photo's short side unless named otherwise.
BASE = {
    "short_side": (480, 960),  # px; the long side is 4/3 of it, either orientation
    "digit": (0.3, 0.5),  # side of the 28x28 field (the digit itself is ~20/28 of it)
    "frame": None,  # or a tight frame around the digit's ink (see _tight_frame)
    "paper": (0.8, 0.95),  # reflectance of the paper (its red channel)
    "pen": "dark",  # or a tuple of pens, one drawn per photo
    "pen_width": None,  # px of the photo: a thin pen draws the digit's skeleton (thin_pen_ink)
    "pressure": None,  # or the weakest ink density along a thin pen's strokes (_pressure)
    "lines": None,
    "vignette": (0.0, 0.0),  # light lost in the corners
    "gradient": (0.1, 0.3),  # light lost across the photo, in a random direction
    "noise": (0.01, 0.025),  # sensor noise, standard deviation per channel
    "blur": (0.3, 1.0),  # Gaussian blur radius, px
    "quality": (75, 92),  # JPEG quality
    "labels": None,  # or the only digits (classes) drawn in this condition
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
    # issue 20
    "thin_pen": {"pen_width": (1.0, 2.0), "paper": (0.55, 0.75), "lines": "show_through"},
    "tall_crop": {"pen_width": (1.0, 2.0), "frame": {"field_px": (240, 480), "aspect": (1.5, 2.5),
                                                     "margin": (0.04, 0.2)}},
    "long_stems": {"labels": (1, 4, 7), "pen_width": (1.0, 2.0), "paper": (0.55, 0.75),
                   "lines": "show_through", "frame": {"field_px": (240, 480),
                                                      "aspect": (2.0, 3.0),
                                                      "margin": (0.02, 0.08)}},
    "light_small": {"pen": ("light_blue", "pencil"), "pen_width": (1.0, 2.0),
                    "short_side": (120, 200), "digit": (0.8, 1.0), "noise": (0.015, 0.03),
                    "blur": (0.3, 0.7)},
    "light_uneven": {"pen": ("light_blue", "pencil"), "pen_width": (1.0, 2.0),
                     "pressure": (0.25, 0.5), "short_side": (120, 200), "digit": (0.8, 1.0),
                     "noise": (0.015, 0.03), "blur": (0.3, 0.7)},
}
CONDITION_IDS = {name: i for i, name in enumerate(CONDITIONS)}  # seeds; append new ones only
PENS = {  # RGB reflectance of the ink, before a per-photo jitter of +-0.05
    "dark": (0.12, 0.12, 0.16),
    "light_blue": (0.45, 0.6, 0.92),
    "red": (0.78, 0.16, 0.16),
    "pencil": (0.55, 0.55, 0.58),  # graphite, lightly pressed
}
LINES = {
    # spacing as a fraction of the digit field's side; thickness in px of the photo
    "ruled": {"spacing": (0.45, 0.75), "thickness": (1.5, 3.0), "tilt_deg": (-3.0, 3.0),
              "colour": (0.55, 0.7, 0.92), "margin_p": 0.5, "both_directions": False},
    "squared": {"spacing": (0.25, 0.4), "thickness": (1.0, 2.5), "tilt_deg": (-3.0, 3.0),
                "colour": (0.6, 0.72, 0.9), "margin_p": 0.0, "both_directions": True},
    # the rules of the sheet's other side (or the one below), faintly seen through it
    "show_through": {"spacing": (0.45, 0.75), "thickness": (2.0, 4.0), "tilt_deg": (-3.0, 3.0),
                     "colour": (0.93, 0.93, 0.94), "margin_p": 0.0, "both_directions": False},
}
MARGIN_COLOUR = (0.9, 0.35, 0.35)


def params(condition: str) -> dict:
    """The full parameter set of ``condition`` (BASE updated by its entry)."""
    return {**BASE, **CONDITIONS[condition]}


def _draw(rng: np.random.Generator, span: tuple[float, float]) -> float:
    return float(rng.uniform(*span))


SKELETON_SCALE = 4  # the digit is thinned at 4x its 28x28 size (112 px: strokes ~8 px wide)
SUPERSAMPLE = 4  # thin pens are drawn at 4x and box-averaged: anti-aliased lines
MNIST_STROKE = 2.0  # px: the true digit of a thin-pen photo is its drawing this wide in 28x28


def _zhang_suen(mask: np.ndarray) -> np.ndarray:
    """Skeleton of a (H, W) bool mask, one pixel wide and 8-connected: (H, W) bool.

    T. Y. Zhang and C. Y. Suen, "A fast parallel algorithm for thinning digital
    patterns", Communications of the ACM 27(3), 1984: two sub-iterations remove the
    boundary pixels with 2..6 neighbours and one 0 -> 1 transition around them, until
    none changes.
    """
    m = np.pad(mask, 1).astype(np.uint8)
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            c = m[1:-1, 1:-1]
            # neighbours P2..P9, clockwise from north
            n = [m[:-2, 1:-1], m[:-2, 2:], m[1:-1, 2:], m[2:, 2:], m[2:, 1:-1],
                 m[2:, :-2], m[1:-1, :-2], m[:-2, :-2]]
            count = sum(n)
            transitions = sum((n[i] == 0) & (n[(i + 1) % 8] == 1) for i in range(8))
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            side = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0) if step == 0 else \
                (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            gone = (c == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & side
            if gone.any():
                c[gone] = 0
                changed = True
    return m[1:-1, 1:-1].astype(bool)


def skeleton_strokes(digit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The centre lines of a (28, 28) uint8 digit: (points (n, 2) float64 (y, x) in px of
    the 28x28 field, edges (m, 2) int indices into points).

    The digit is scaled by SKELETON_SCALE (bicubic), cut at 128 and thinned
    (:func:`_zhang_suen`); skeleton pixels next to each other are joined (diagonally only
    where no shared neighbour joins them already), and the points of simple runs (two
    neighbours) are smoothed twice towards their neighbours' mean, so that the staircase
    of the pixel grid does not show in a thin pen's line.
    """
    k = SKELETON_SCALE
    big = Image.fromarray(digit.astype(np.float32), mode="F").resize((28 * k, 28 * k),
                                                                      Image.Resampling.BICUBIC)
    skeleton = _zhang_suen(np.asarray(big) >= 128)
    index = np.full(skeleton.shape, -1, np.intp)
    ys, xs = np.nonzero(skeleton)
    index[ys, xs] = np.arange(len(ys))
    pad = np.pad(index, 1, constant_values=-1)[1:, 1:]  # pad[y, x] = index[y, x]; -1 beyond

    def at(dy: int, dx: int) -> np.ndarray:
        return pad[ys + dy, xs + dx]

    edges = [np.stack([np.arange(len(ys)), at(dy, dx)], 1) for dy, dx in ((0, 1), (1, 0))]
    for dx, beside in ((1, (at(0, 1), at(1, 0))), (-1, (at(0, -1), at(1, 0)))):
        free = (beside[0] < 0) & (beside[1] < 0)  # no 4-connected path joins them
        edges.append(np.stack([np.arange(len(ys)), np.where(free, at(1, dx), -1)], 1))
    edges = np.concatenate(edges)
    edges = edges[edges[:, 1] >= 0]
    points = np.stack([ys, xs], 1).astype(np.float64)
    degree = np.bincount(edges.ravel(), minlength=len(points))
    for _ in range(2):
        total = np.zeros_like(points)
        np.add.at(total, edges[:, 0], points[edges[:, 1]])
        np.add.at(total, edges[:, 1], points[edges[:, 0]])
        run = degree == 2
        points[run] = 0.5 * points[run] + 0.25 * total[run]
    return (points + 0.5) / k - 0.5, edges


def draw_strokes(points: np.ndarray, edges: np.ndarray, shape: tuple[int, int],
                 width: float) -> np.ndarray:
    """Coverage (H, W) float32 in [0, 1] of lines ``width`` px wide along ``edges``
    between ``points`` ((n, 2) (y, x), px of ``shape``), with round joins; drawn at
    SUPERSAMPLE x and box-averaged."""
    k = SUPERSAMPLE
    im = Image.new("L", (shape[1] * k, shape[0] * k))
    draw = ImageDraw.Draw(im)
    xy = (points[:, ::-1] + 0.5) * k - 0.5
    r = width * k / 2
    for a, b in edges:
        draw.line([tuple(xy[a]), tuple(xy[b])], fill=255, width=max(1, round(width * k)))
    for x, y in xy:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(im.reduce(k), np.float32) / 255


def thin_pen_ink(digit: np.ndarray, side: int, width: float) -> np.ndarray:
    """A (28, 28) uint8 digit redrawn with a thin pen on a (side, side) field: its
    :func:`skeleton_strokes`, ``width`` px wide, as coverage (side, side) float32."""
    points, edges = skeleton_strokes(digit)
    return draw_strokes((points + 0.5) * (side / 28) - 0.5, edges, (side, side), width)


def truth(condition: str, digit: np.ndarray) -> np.ndarray:
    """The true digit of a photo of ``digit`` ((28, 28) uint8) in ``condition``, as MNIST
    would have it: (28, 28) uint8, light on black.

    The digit itself, unless the condition draws with a thin pen: then the drawing, its
    :func:`skeleton_strokes` MNIST_STROKE px wide, normalised as MNIST is (LeCun, Cortes
    and Burges): a 20x20 box (the centre lines fill 20 - MNIST_STROKE px of it), centre
    of mass (of the lines, by length) at pixel (14, 14).
    """
    if params(condition)["pen_width"] is None:
        return digit
    points, edges = skeleton_strokes(digit)
    if len(edges) == 0:
        raise ValueError("the digit has no strokes to redraw")
    scale = (20 - MNIST_STROKE) / max(float(np.ptp(points, axis=0).max()), 1e-6)
    middles = (points[edges[:, 0]] + points[edges[:, 1]]) / 2
    lengths = np.linalg.norm(points[edges[:, 0]] - points[edges[:, 1]], axis=1)
    centre = lengths @ middles / lengths.sum()
    ink = draw_strokes((points - centre) * scale + 14.0, edges, (28, 28), MNIST_STROKE)
    return np.round(ink * 255).astype(np.uint8)


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


def _pressure(side: int, low: float, rng: np.random.Generator) -> np.ndarray:
    """Ink density over a (side, side) field, float32 from ``low`` to 1: a pen whose flow
    varies smoothly along the strokes (a 3x3 grid of uniform draws, bilinear, stretched to
    [low, 1])."""
    grid = rng.uniform(0, 1, (3, 3)).astype(np.float32)
    f = np.asarray(Image.fromarray(grid, mode="F").resize((side, side),
                                                          Image.Resampling.BILINEAR))
    return low + (1 - low) * (f - f.min()) / max(float(np.ptp(f)), 1e-6)


def _ink(p: dict, digit: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """The digit's coverage on a (side, side) field, float32 in [0, 1]: scaled up with
    bicubic, or redrawn with a thin pen (:func:`thin_pen_ink`), its flow uneven with a
    ``pressure``."""
    if p["pen_width"] is not None:
        ink = thin_pen_ink(digit, side, _draw(rng, p["pen_width"]))
        if p["pressure"] is not None:
            ink *= _pressure(side, _draw(rng, p["pressure"]), rng)
        return ink
    big = Image.fromarray(digit.astype(np.float32) / 255.0, mode="F")
    return np.clip(np.asarray(big.resize((side, side), Image.Resampling.BICUBIC)), 0, 1)


def _tight_frame(ink: np.ndarray, frame: dict,
                 rng: np.random.Generator) -> tuple[int, int, np.ndarray, int, int]:
    """A tall photo framed tightly around the ink of a field: (h, w, the ink cut to its
    box, top, left: the box's place in the photo).

    Margins m1, m2 of ``frame["margin"]`` x the ink's height (drawn apart); the photo is
    ``frame["aspect"]`` times as high as wide, the smallest holding the ink with m1 above,
    m2 below and m1 + m2 across; the ink at a random place within those margins. A narrow
    digit fills the photo's height, a wide one its width.
    """
    rows, cols = np.flatnonzero(ink.max(1) > 0.05), np.flatnonzero(ink.max(0) > 0.05)
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    ih, iw = ink.shape
    above, below = (round(_draw(rng, frame["margin"]) * ih) for _ in range(2))
    aspect = _draw(rng, frame["aspect"])
    w = max(iw + above + below, round((ih + above + below) / aspect))
    h = max(ih + above + below, round(w * aspect))
    top = above + int(rng.integers(0, h - ih - above - below + 1))
    return h, w, ink, top, int(rng.integers(0, w - iw + 1))


def render(condition: str, digit: np.ndarray, rng: np.random.Generator,
           **overrides) -> np.ndarray:
    """One photo of ``digit`` ((28, 28) uint8, light on black) in ``condition``: (H, W, 3)
    uint8. ``overrides`` replace parameters of the condition (tests: one end of a range)."""
    p = {**params(condition), **overrides}
    if p["frame"] is None:
        short = int(rng.integers(p["short_side"][0], p["short_side"][1] + 1))
        h, w = (short, short * 4 // 3) if rng.uniform() < 0.5 else (short * 4 // 3, short)
        side = max(28, int(_draw(rng, p["digit"]) * short))
        ink = _ink(p, digit, side, rng)
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    else:
        side = int(rng.integers(p["frame"]["field_px"][0], p["frame"]["field_px"][1] + 1))
        h, w, ink, top, left = _tight_frame(_ink(p, digit, side, rng), p["frame"], rng)
    paper = _draw(rng, p["paper"]) * np.array([1.0, rng.uniform(0.95, 1.0),
                                                rng.uniform(0.85, 1.0)], np.float32)
    pen_name = p["pen"] if isinstance(p["pen"], str) else p["pen"][rng.integers(len(p["pen"]))]
    pen = np.clip(np.array(PENS[pen_name], np.float32) + rng.uniform(-0.05, 0.05, 3), 0, 1)
    lines = _rules((h, w), LINES[p["lines"]], side, rng) if p["lines"] else None
    cast = rng.uniform(0.92, 1.04, 3).astype(np.float32)  # white balance of the camera
    rgb = _light((h, w), p, rng)[..., None] * (paper * cast * 255)
    if lines is not None:
        rgb *= lines
    ih, iw = ink.shape
    rgb[top:top + ih, left:left + iw] *= 1 - ink[..., None] * (1 - pen)
    sigma = _draw(rng, p["noise"]) * 255
    rgb += rng.standard_normal(rgb.shape, dtype=np.float32) * np.float32(sigma) + 0.5
    im = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), mode="RGB")
    return np.asarray(im.filter(ImageFilter.GaussianBlur(_draw(rng, p["blur"]))))


def drawn(condition: str, labels: np.ndarray | None, n: int) -> np.ndarray:
    """(n,) bool: which of n digits with these ``labels`` ((n,) ints) ``condition`` draws.

    Raises ValueError for a condition that draws only some digits when ``labels`` is None.
    """
    only = params(condition)["labels"]
    if only is None:
        return np.ones(n, bool)
    if labels is None:
        raise ValueError(f"condition {condition!r} draws only the digits {only}: pass labels")
    return np.isin(labels, only)


def make_hard_files(digits: np.ndarray, out_dir: Path | str,
                    conditions: Sequence[str] = tuple(CONDITIONS), seed: int = 0,
                    first_index: int = 0, labels: np.ndarray | None = None) -> list[Path]:
    """Write every digit in every condition as a JPEG; return the paths, digit-major.

    ``digits``: (N, 28, 28) uint8 MNIST test images; ``first_index``: the test-set index
    of ``digits[0]`` (it seeds each photo, so a digit's photo does not depend on the
    batch). Files are ``{test index:05d}_{condition}.jpg`` in ``out_dir`` (created).
    ``labels`` ((N,) ints) are needed by conditions that draw only some digits (such as
    ``long_stems``), which skip the others: read a path's digit and condition with
    :func:`parse_name`. Raises ValueError for bad digits, an unknown condition, or
    missing labels.
    """
    digits, out = checked_inputs(digits, conditions, list(CONDITIONS), out_dir)
    if labels is not None and np.shape(labels) != (len(digits),):
        raise ValueError(f"labels must be ({len(digits)},), got {np.shape(labels)}")
    chosen = {condition: drawn(condition, labels, len(digits)) for condition in conditions}
    paths = []
    for n, digit in enumerate(digits):
        i = first_index + n
        for condition in conditions:
            if not chosen[condition][n]:
                continue
            rng = np.random.default_rng([seed, i, CONDITION_IDS[condition]])
            rgb = render(condition, digit, rng)
            quality = int(rng.integers(params(condition)["quality"][0],
                                       params(condition)["quality"][1] + 1))
            path = out / f"{i:05d}_{condition}.jpg"
            Image.fromarray(rgb, mode="RGB").save(path, quality=quality)
            paths.append(path)
    return paths


def parse_name(path: Path | str) -> tuple[int, str]:
    """(test index, condition) of a file written by :func:`make_hard_files`."""
    index, condition = Path(path).stem.split("_", 1)
    return int(index), condition


# -- what the preparation kept ------------------------------------------------------------

INK = 128  # a pixel of a (28, 28) uint8 image is ink at >= 128 (half MNIST's full ink)
SHIFTS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]  # 1-px centring differences


def _shifted(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """(28, 28) bool moved by (dy, dx) px, zero-filled."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        mask[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def _ink_masks(prepared: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if np.shape(prepared) != (28, 28) or np.shape(true) != (28, 28):
        raise ValueError(f"expected two (28, 28) images, got {np.shape(prepared)} and "
                         f"{np.shape(true)}")
    t = np.asarray(true) >= INK
    if not t.any():
        raise ValueError("the true digit has no ink (no pixel >= 128)")
    return np.asarray(prepared) >= INK, t


def stroke_recall(prepared: np.ndarray, true: np.ndarray) -> float:
    """Share of the true digit's ink that the preparation kept, in [0, 1].

    ``prepared``, ``true``: (28, 28) uint8, ink light. The true digit's pixels >= INK
    covered by the prepared ink (>= INK) dilated by 1 px (a 3x3 square), the best over
    shifts of -1..1 px in each axis: thickening and a 1-px centring difference are not
    losses, a stroke that is gone is.
    """
    p, t = _ink_masks(prepared, true)
    grown = np.zeros_like(p)
    for dy, dx in SHIFTS:
        grown |= _shifted(p, dy, dx)
    return max(np.count_nonzero(t & _shifted(grown, dy, dx)) for dy, dx in SHIFTS) / t.sum()


def iou(prepared: np.ndarray, true: np.ndarray) -> float:
    """Intersection over union of the prepared and the true ink (both >= INK, (28, 28)
    uint8), the best over shifts of -1..1 px: in [0, 1]. Thickening lowers it."""
    p, t = _ink_masks(prepared, true)
    return max(np.count_nonzero(t & q) / np.count_nonzero(t | q)
               for q in (_shifted(p, dy, dx) for dy, dx in SHIFTS))
