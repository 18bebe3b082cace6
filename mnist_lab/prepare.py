"""Turn a user's image of one handwritten digit into what an MNIST model expects.

MNIST convention (Y. LeCun, C. Cortes, C. J. C. Burges, "The MNIST database of
handwritten digits", http://yann.lecun.com/exdb/mnist/): "The original black and
white (bilevel) images from NIST were size normalized to fit in a 20x20 pixel box
while preserving their aspect ratio. The resulting images contain grey levels as a
result of the anti-aliasing technique used by the normalization algorithm. the
images were centered in a 28x28 image by computing the center of mass of the
pixels, and translating the image so as to position this point at the center of
the 28x28 field."  So: light ink on black, longer side 20 px, centre of mass at
pixel (14, 14) (measured on the MNIST test set: always within 0.5 px of it).

Pipeline, one function per step (arrays are float32 in [0, 1] until the last step):
  read_image -> downscale -> to_light_ink -> remove_background -> crop_to_ink
  -> scale_to_box -> centre_by_mass -> to_uint8.
`prepare_image(path)` runs it all; `prepare_array(grey)` starts from a decoded array.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

WORK_SIDE = 240  # analyse at a short side of 240..479 px: thin strokes survive, it stays fast
COARSE_SIDE = 48  # lighting is estimated on a grid with a short side of 48..95 cells
BOX, FIELD, CENTRE = 20, 28, 14.0  # MNIST: 20x20 box, 28x28 field, centre of mass at (14, 14)
SPECK = 0.02  # ink groups (projection runs) with < 2 % of the ink are specks
GATE = 3.0  # grey below paper + 3 noise sigmas is paper
HALO = 2  # anti-aliased ink is kept within 2 px of definite ink


class ImageError(Exception):
    """Bad input: the one-line message names the file and the problem."""

    def __init__(self, source: object, problem: str) -> None:
        super().__init__(f"{source}: {' '.join(problem.split())}")


@dataclass
class Prepared:
    """`image`: (28, 28) uint8, ink ~255 on 0, like MNIST; `warnings`: doubts about the input."""

    image: np.ndarray
    warnings: list[str] = field(default_factory=list)


def _to_grey(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> (H, W) float32 in [0, 1]; transparency composited over paper."""
    if im.mode == "P" or (im.mode in ("L", "RGB") and "transparency" in im.info):
        im = im.convert("RGBA" if "transparency" in im.info else "L")
    if "A" in im.getbands():
        alpha = np.asarray(im.getchannel("A"), np.float32) / 255
        luma = np.asarray(im.convert("RGBA").convert("L"), np.float32) / 255
        opaque = alpha >= 0.5
        # over white; over black if the opaque part is small and light (white ink on a clear layer)
        light_ink = opaque.mean() < 0.5 and opaque.any() and luma[opaque].mean() > 0.5
        return luma * alpha + (0.0 if light_ink else 1.0) * (1 - alpha)
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        a = np.nan_to_num(np.asarray(im, np.float32))  # 16-bit: 65535 is white
        lo, hi = float(a.min()), float(a.max())
        scale = 1.0 if im.mode == "F" and hi <= 1 else 255.0 if im.mode == "F" and hi <= 255 else 65535.0
        if lo < 0 or hi > scale:  # e.g. 32-bit data: stretch its own range
            return (a - lo) / max(hi - lo, 1e-12)
        return a / scale
    return np.asarray(im.convert("L"), np.float32) / 255


def read_image(path: str | Path, min_side: int | None = None) -> np.ndarray:
    """Decode one image file to (H, W) float32 greyscale in [0, 1] (polarity not decided).

    Any format Pillow reads (first frame), any mode; 16-bit is scaled by 65535; alpha is
    composited over white; EXIF orientation is applied. With `min_side`, JPEGs are decoded
    at a reduced DCT scale (1/2, 1/4, 1/8) whose short side stays >= min_side (fast).
    Raises ImageError (one line, names the file) for anything that is not a readable image.
    """
    try:
        with warnings.catch_warnings():  # Pillow warns above MAX_IMAGE_PIXELS: treat as error
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if min_side and min(im.size) >= 2 * min_side:
                    s = min(im.size) // min_side
                    im.draft("L", (math.ceil(im.width / s), math.ceil(im.height / s)))
                else:
                    im.draft("L", None)
                im.load()
                return _to_grey(ImageOps.exif_transpose(im) or im)
    except FileNotFoundError:
        raise ImageError(path, "no such file") from None
    except IsADirectoryError:
        raise ImageError(path, "is a directory, not an image file") from None
    except PermissionError:
        raise ImageError(path, "permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(path, "not an image (Pillow cannot identify the format)") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise ImageError(path, f"too large: {e} (Pillow's decompression-bomb limit, "
                         f"PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS})") from None
    except Exception as e:  # noqa: BLE001 - any decoder failure is bad input, not a crash
        kind = "truncated file" if "truncated" in str(e) or isinstance(e, EOFError) else "unreadable"
        raise ImageError(path, f"{kind}: {type(e).__name__}: {e}") from None


def downscale(grey: np.ndarray, min_side: int = WORK_SIDE) -> np.ndarray:
    """(H, W) -> (H/f, W/f) float32 by an integer box average f, keeping the short side >= min_side."""
    f = min(grey.shape) // min_side
    if f < 2:
        return grey
    return np.asarray(Image.fromarray(grey, mode="F").reduce(f))


def _minmax(a: np.ndarray, k: int, fn: np.ufunc) -> np.ndarray:
    """Grey erosion (np.minimum) or dilation (np.maximum) with a k x k square, k odd.

    Separable, edge-padded; windows of 1, 2, 4, .. then two overlapping ones: O(log k) ops.
    """
    for _ in range(2):  # axis 0, then (after the transpose) axis 1
        p = k // 2
        a = np.concatenate((np.repeat(a[:1], p, 0), a, np.repeat(a[-1:], p, 0)))
        w = 1
        while 2 * w <= k:
            a, w = fn(a[:-w], a[w:]), 2 * w
        a = fn(a[:len(a) - (k - w)], a[k - w:]).T
    return a


def _coarse(grey: np.ndarray) -> np.ndarray:
    """Box-averaged (h, w) float32 grid with a short side of COARSE_SIDE..2*COARSE_SIDE-1."""
    f = max(1, min(grey.shape) // COARSE_SIDE)
    return np.asarray(Image.fromarray(grey, mode="F").reduce(f)) if f > 1 else grey


def _upsample(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Bilinear resize of a float32 grid to `shape` (H, W)."""
    return np.asarray(Image.fromarray(a, mode="F").resize(shape[::-1], Image.Resampling.BILINEAR))


def to_light_ink(grey: np.ndarray) -> tuple[np.ndarray, bool]:
    """Decide polarity: (H, W) float32 in [0, 1] with the ink lighter than the paper, inverted?

    Rule: the paper's lighting is modelled as a plane (least squares on the coarse grid);
    ink is the minority, so it forms the long tail of the residual. A negative third moment
    means dark ink on light paper: invert. Holds while ink covers under ~half of the image
    (no error on the 10,000 MNIST test digits, either polarity, or with strokes thickened).
    """
    c = _coarse(grey).astype(np.float64)
    c -= c.mean()
    for axis, n in enumerate(c.shape):  # the grid is regular: fit each slope on its own
        x = np.arange(n) - (n - 1) / 2
        c -= np.expand_dims(x * ((x @ c.mean(axis=1 - axis)) / (x @ x)), 1 - axis)
    dark_ink = float(np.mean(c * c * c)) < 0
    return (1.0 - grey if dark_ink else grey), dark_ink


def _opening(c: np.ndarray, k: int) -> np.ndarray:
    """Grey opening (k x k min filter, then max filter): removes bright details thinner than k."""
    return _minmax(_minmax(c, k, np.minimum), k, np.maximum)


def _stroke_width(detail: np.ndarray) -> float:
    """Typical stroke width in px of the ink in a (h, w) float image of bright detail on 0.

    Ink = Otsu split of `detail`; width = median length of its runs along rows and columns
    (a median, so that a few wide blobs such as glare do not count).
    """
    hist, edges = np.histogram(detail, 256)
    mask = detail > edges[_otsu(hist) + 1]
    lengths = []
    for m in (mask, mask.T):
        edge = np.diff(np.pad(m, ((0, 0), (1, 1))).astype(np.int8), axis=1)
        lengths.append(np.flatnonzero(edge == -1) - np.flatnonzero(edge == 1))
    return float(np.median(np.concatenate(lengths))) if mask.any() else 1.0


def _otsu(hist: np.ndarray) -> int:
    """Otsu's threshold on a histogram: the last bin of the dark class (between-class variance max)."""
    w = np.cumsum(hist, dtype=np.float64)
    mu = np.cumsum(hist * np.arange(len(hist)), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * w - mu * w[-1]) ** 2 / (w * (w[-1] - w))
    between = np.nan_to_num(between, nan=-1.0, posinf=-1.0)
    return int(np.argmax(between)) if between.max() > 0 else len(hist) // 2


def remove_background(light: np.ndarray, inverted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Flatten the lighting and split ink from paper: (H, W) float32 light ink -> (ink, sure).

    `ink`: (H, W) float32 in [0, 1], paper exactly 0, anti-aliased edges kept as grey;
    `sure`: (H, W) bool, definite ink (all False when nothing stands out from the noise).
    Background = grey opening (min then max filter) of the coarse grid, window a third of
    its short side: it removes anything thinner (strokes) and keeps gradients, shadows and
    their edges; upsampled and subtracted. In the residual r the paper level m and noise s
    come from the 5th and 25th percentiles (paper while ink covers < ~70 %). Definite ink =
    Otsu split of the pixels above m + 3 s, and it must stand out: its 90th percentile
    (`level`) > m + max(8 s, 0.05). Soft ink = (r - m) / (level - m), clipped to [0, 1],
    and 0 below m + 3 s (noise gate).
    """
    c = _coarse(light)
    k = max(3, min(c.shape) // 3 | 1)
    bg = _opening(c, k)
    k_thin = min(k, max(3, min(c.shape) // 8 | 1, int(4 * _stroke_width(c - bg)) | 1))
    if k_thin < k:  # thin strokes: a smaller window follows shadows and corners better
        bg = _opening(c, k_thin)
    bg = _upsample(bg, light.shape)
    r = light - bg
    if inverted:  # ink contrast scales with the light on the paper: divide it out (shadows)
        r /= np.maximum(1.0 - bg, 0.05)
    lo, top, n = float(r.min()), float(r.max()), 1024
    if top - lo < 1e-3:
        return np.zeros_like(r), np.zeros(r.shape, bool)
    step = (top - lo) / (n - 1)
    sample = r[::2, ::2]  # every 4th pixel is plenty for the statistics
    hist = np.bincount(((sample - lo) * (1 / step)).astype(np.intp).ravel(), minlength=n)
    cum = np.cumsum(hist)
    q05, q25 = lo + np.searchsorted(cum, np.array([0.05, 0.25]) * cum[-1]) * step
    noise = (q25 - q05) / 0.97  # Gaussian sigma from the 5th..25th percentiles
    paper = q25 + 0.674 * noise
    floor = paper + GATE * noise + 1e-3
    first = min(int((floor - lo) / step) + 1, n - 1)
    cut = first + _otsu(hist[first:])  # last bin that is not definite ink
    level = lo + np.searchsorted(cum, cum[cut] + 0.9 * (cum[-1] - cum[cut])) * step
    sure = r > lo + (cut + 1) * step
    if cut >= n - 1 or level < paper + max(8 * noise, 0.05):
        sure[:] = False
    gate = r <= floor
    r -= paper
    r *= 1 / max(level - paper, 1e-6)
    np.clip(r, 0, 1, out=r)
    r[gate] = 0
    return r, sure


def _runs(profile: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of non-zero entries of a 1-D profile: (starts, stops, masses)."""
    edges = np.diff(np.concatenate(([0], (profile > 0).astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    total = np.concatenate(([0], np.cumsum(profile)))
    return starts, stops, total[stops] - total[starts]


def _span(profile: np.ndarray) -> tuple[int, int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Kept extent [lo, hi) of the ink along one axis, and the kept runs (starts, stops, masses).

    Runs holding < SPECK of the ink are specks. Runs touching the image edge are dropped too
    when the other runs hold at least a quarter of the ink: shadow or paper edges, not the digit.
    """
    starts, stops, mass = _runs(profile)
    keep = (mass >= SPECK * mass.sum()) | (mass == mass.max())
    inner = keep & (starts > 0) & (stops < len(profile))
    if mass[inner].sum() >= 0.25 * mass[keep].sum():
        keep = inner
    return int(starts[keep][0]), int(stops[keep][-1]), (starts[keep], stops[keep], mass[keep])


def crop_to_ink(ink: np.ndarray, sure: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Cut the digit out: (H, W) float32 soft ink + bool definite ink -> (h, w) float32, notes.

    Box = extent of the definite ink along rows, then columns (within those rows), twice,
    ignoring specks and edge artefacts (see `_span`); widened by HALO px for the anti-aliased
    fringe (kept only within HALO px of definite ink), then fitted to the remaining ink.
    Notes a wide empty column gap with >= 15 % of the ink on each side (several digits?),
    ink touching the image border, and a small digit.
    """
    top, bottom, left, right = 0, sure.shape[0], 0, sure.shape[1]
    for _ in range(2):  # again, within the other axis' span: drops what only an artefact held
        top, bottom, _ = _span(sure[:, left:right].sum(1))
        left, right, (starts, stops, mass) = _span(sure[top:bottom].sum(0))
    notes = []
    height, before = bottom - top, np.cumsum(mass)[:-1] / mass.sum()
    gaps = starts[1:] - stops[:-1]
    if np.any((gaps >= 0.25 * height) & (before >= 0.15) & (before <= 0.85)):
        notes.append("ink falls into separate groups side by side: several digits? "
                     "Only one digit per image is supported, the result is likely wrong")
    if top == 0 or left == 0 or bottom == ink.shape[0] or right == ink.shape[1]:
        notes.append("ink touches the image border: the digit may be cut off, or an edge "
                     "or shadow was taken for ink")
    rows = slice(max(top - HALO, 0), bottom + HALO)
    cols = slice(max(left - HALO, 0), right + HALO)
    near = _minmax(sure[rows, cols], 2 * HALO + 1, np.maximum)
    crop = np.where(near, ink[rows, cols], 0).astype(np.float32)
    r, c = np.flatnonzero(crop.any(1)), np.flatnonzero(crop.any(0))
    crop = crop[r[0]:r[-1] + 1, c[0]:c[-1] + 1]
    if max(crop.shape) < 16:
        notes.append(f"the digit is only {max(crop.shape)} px tall or wide in the image: "
                     "crop closer to it for a sharper result")
    return crop, notes


def scale_to_box(crop: np.ndarray) -> np.ndarray:
    """(h, w) float32 -> (<=20, <=20) float32 in [0, 1], longer side exactly 20, aspect kept.

    Shrinking uses Pillow's BOX filter (area average: the anti-aliasing of MNIST's
    normalisation); enlarging (a digit under 20 px) uses LANCZOS, clipped to [0, 1].
    """
    h, w = crop.shape
    s = BOX / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    resample = Image.Resampling.BOX if s <= 1 else Image.Resampling.LANCZOS
    return np.clip(np.asarray(Image.fromarray(crop, mode="F").resize(size, resample)), 0, 1)


def centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Paste (h, w) float32 into a (28, 28) float32 zero field, centre of mass at pixel (14, 14).

    The shift is a whole number of pixels (rounded; clamped so nothing is cut off), as in
    MNIST, whose centres of mass all lie within 0.5 px of (14, 14): a sub-pixel shift would
    interpolate, i.e. blur the anti-aliased strokes once more.
    """
    h, w = digit.shape
    mass = float(digit.sum())
    cy = float(digit.sum(1) @ np.arange(h)) / mass
    cx = float(digit.sum(0) @ np.arange(w)) / mass
    top = min(max(math.floor(CENTRE - cy + 0.5), 0), FIELD - h)
    left = min(max(math.floor(CENTRE - cx + 0.5), 0), FIELD - w)
    field_ = np.zeros((FIELD, FIELD), np.float32)
    field_[top:top + h, left:left + w] = digit
    return field_


def to_uint8(field_: np.ndarray) -> np.ndarray:
    """(28, 28) float32 -> (28, 28) uint8, brightest ink 255 (as in MNIST), background 0."""
    return np.round(field_ * (255 / max(float(field_.max()), 1e-6))).astype(np.uint8)


def prepare_array(grey: np.ndarray, source: object = "<array>") -> Prepared:
    """Prepare a decoded (H, W) image: uint8 (/255), uint16 (/65535), bool or float in [0, 1].

    Either polarity. Returns Prepared((28, 28) uint8, warnings). Raises ImageError naming
    `source` when the image is too small or holds no ink, ValueError if it is not 2-D.
    """
    a = np.asarray(grey)
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D greyscale array, got shape {a.shape}")
    if min(a.shape) < 8:
        raise ImageError(source, f"image of {a.shape[1]}x{a.shape[0]} px is too small for a digit")
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(a.dtype, 1.0)
    a = np.clip(np.nan_to_num(a.astype(np.float32) / scale), 0, 1)
    ink, sure = remove_background(*to_light_ink(downscale(a)))
    if not sure.any():
        raise ImageError(source, "no ink found: the image is blank, one colour, or too faint/noisy")
    crop, notes = crop_to_ink(ink, sure)
    return Prepared(to_uint8(centre_by_mass(scale_to_box(crop))), notes)


def prepare_image(path: str | Path) -> Prepared:
    """Read and prepare one image file: Prepared((28, 28) uint8, warnings); ImageError if bad."""
    grey = read_image(path, min_side=WORK_SIDE)
    try:
        return prepare_array(grey, source=path)
    except ImageError:
        raise
    except Exception as e:  # noqa: BLE001 - odd input must not end in a bare traceback
        raise ImageError(path, f"cannot prepare: {type(e).__name__}: {e}") from e
