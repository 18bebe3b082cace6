"""Reading people's image files: any format and mode Pillow reads, to grey in [0, 1].

A file that is not a readable image raises :class:`ImageError`, whose message is
one line naming the file and the problem.
"""

from __future__ import annotations

import math
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

_OPEN_LOCK = threading.Lock()  # warnings.catch_warnings changes process-wide state
_PROBLEMS = {FileNotFoundError: "no such file", IsADirectoryError: "a directory, not a file",
             PermissionError: "permission denied",
             UnidentifiedImageError: "not an image (Pillow cannot identify the format)"}


GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2 luma weights, as Pillow's RGB -> L


class ImageError(Exception):
    """Bad input; the message is one line: '<file>: <problem>'."""

    def __init__(self, source: object, problem: str) -> None:
        super().__init__(f"{source}: {' '.join(problem.split())}")


def _to_grey(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> (H, W) float32 in [0, 1]; transparency composited over paper."""
    if im.mode == "P" or (im.mode in ("L", "RGB") and "transparency" in im.info):
        im = im.convert("RGBA" if "transparency" in im.info else "L")
    if "A" in im.getbands():
        alpha = np.asarray(im.getchannel("A"), np.float32) / 255
        luma = np.asarray(im.convert("RGBA").convert("L"), np.float32) / 255
        opaque = alpha >= 0.5  # over white, but over black for light ink on a clear layer
        light_ink = opaque.mean() < 0.5 and opaque.any() and luma[opaque].mean() > 0.5
        return luma * alpha + (0.0 if light_ink else 1.0) * (1 - alpha)
    if im.mode.startswith("I") or im.mode == "F":  # 16-bit (I;16*, or I from a PNG): /65535
        a = np.nan_to_num(np.asarray(im, np.float32))
        lo, hi = float(a.min()), float(a.max())
        scale = 65535.0 if im.mode != "F" else 1.0 if hi <= 1 else 255.0
        return (a - lo) / max(hi - lo, 1e-12) if lo < 0 or hi > scale else a / scale
    return np.asarray(im if im.mode == "L" else im.convert("L"), np.float32) / 255


def to_array(im: Image.Image) -> np.ndarray:
    """A Pillow image -> (H, W, 3) float32 RGB in [0, 1], transparency composited as in
    :func:`_to_grey`; an image whose pixels are all grey -> (H, W) as :func:`_to_grey`."""
    if im.mode in GREY_MODES:
        return _to_grey(im)
    rgba = np.asarray(im if im.mode in ("RGB", "RGBA") else im.convert("RGBA"))
    if np.array_equal(rgba[..., 0], rgba[..., 1]) and np.array_equal(rgba[..., 1], rgba[..., 2]):
        return _to_grey(im)
    rgb = rgba[..., :3].astype(np.float32) * np.float32(1 / 255)
    if rgba.shape[2] == 4 and rgba[..., 3].min() < 255:
        alpha = rgba[..., 3:].astype(np.float32) / 255
        opaque = alpha[..., 0] >= 0.5
        luma = rgb @ np.array(LUMA, np.float32)
        light_ink = opaque.mean() < 0.5 and opaque.any() and luma[opaque].mean() > 0.5
        rgb = rgb * alpha + (0.0 if light_ink else 1.0) * (1 - alpha)
    return rgb


def read_image(path: str | Path, min_side: int | None = None, colour: bool = False,
               region: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """Decode an image file to (H, W) float32 grey in [0, 1]; ink or paper not yet decided.

    Any format Pillow reads (first frame), any mode; 16-bit /65535; alpha composited over
    white (over black when the opaque part is light ink on a mostly clear layer); EXIF
    orientation applied. With `min_side`, a JPEG is decoded at the smallest DCT
    scale (1/2, 1/4, 1/8) keeping its short side (of `region`) >= min_side (much faster
    for photos). With `colour`, an image with colours is returned as (H, W, 3) float32 RGB
    instead. `region`: only (top, bottom, left, right), fractions of the upright image.
    Raises ImageError, naming the file, for anything that is not a readable image.
    """
    try:
        with _OPEN_LOCK, warnings.catch_warnings():  # over MAX_IMAGE_PIXELS Pillow only warns
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)  # reads the header only: the lock is held briefly
        with im:
            part = 1.0 if region is None else min(region[1] - region[0], region[3] - region[2])
            s = max(1, int(min(im.size) * part) // min_side) if min_side else 1
            keep = colour and im.mode not in GREY_MODES
            im.draft("RGB" if keep else "L", (math.ceil(im.width / s), math.ceil(im.height / s)))
            im.load()
            im = ImageOps.exif_transpose(im)
            if region is not None:
                top, bottom, left, right = region
                im = im.crop((round(left * im.width), round(top * im.height),
                              round(right * im.width), round(bottom * im.height)))
            return to_array(im) if keep else _to_grey(im)
    except (FileNotFoundError, IsADirectoryError, PermissionError, UnidentifiedImageError) as e:
        raise ImageError(path, next(v for k, v in _PROBLEMS.items() if isinstance(e, k))) from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise ImageError(path, f"too large: {e} (Pillow's decompression-bomb guard, PIL.Image"
                         f".MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS}: raise it only for files "
                         "you trust)") from None
    except Exception as e:  # noqa: BLE001 - whatever a decoder raises, it is bad input
        truncated = "truncated" in str(e).lower() or isinstance(e, EOFError)
        kind = "truncated file" if truncated else "unreadable"
        raise ImageError(path, f"{kind}: {type(e).__name__}: {e}") from None


def ink_contrast(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] -> (H, W) float32 grey where coloured ink stands out.

    Luminance alone turns light blue or red ink into a faint grey. So the colours are first
    balanced on the paper's (each channel divided by its median: the paper is most of the
    image), and each pixel's distance from the grey axis (the norm of its balanced colour
    minus its luminance: how coloured it is, relative to the paper) is taken off its
    luminance on light paper (added on dark): ink of any colour darkens like black ink.
    Black ink and grey pixels are unchanged; an image without colour (no channel of a
    pixel in a 4x4 grid 10 % off the others, relative to the paper) is only luminance.
    """
    paper = np.maximum(np.median(rgb[::4, ::4].reshape(-1, 3), axis=0), 1 / 255)
    sample = rgb[::4, ::4] / paper
    if np.ptp(sample, axis=-1).max() < 0.1:  # no colour beyond the paper's: luminance will do
        return rgb @ np.array(LUMA, np.float32)
    balanced = rgb * (1 / paper).astype(np.float32)
    luma = balanced @ np.array(LUMA, np.float32)
    balanced -= luma[..., None]
    chroma = np.sqrt(np.einsum("ijk,ijk->ij", balanced, balanced))
    scale = float(np.array(LUMA, np.float32) @ paper)  # the paper's luminance
    luma += -chroma if scale >= 0.5 else chroma
    luma *= scale
    return np.clip(luma, 0, 1, out=luma)


def as_grey(a: np.ndarray, source: object = "<array>") -> np.ndarray:
    """Any decoded image array -> (H, W) float32 grey in [0, 1].

    (H, W) uint8 (/255), uint16 (/65535), bool or float in [0, 1]; (H, W, 3) RGB or
    (H, W, 4) RGBA, uint8 or float (transparency composited as :func:`read_image` does,
    colours turned grey by :func:`ink_contrast`). Raises ImageError naming `source` if it
    is under 8 px a side, ValueError for another shape.
    """
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        if a.shape[2] == 4 or a.dtype != np.float32:
            a = to_array(Image.fromarray(a if a.dtype == np.uint8 else
                                         np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)))
        a = ink_contrast(a) if a.ndim == 3 else a
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D greyscale or (H, W, 3 or 4) colour array, got shape "
                         f"{a.shape}")
    if min(a.shape) < 8:
        raise ImageError(source, f"{a.shape[1]}x{a.shape[0]} px is too small for a digit")
    if a.dtype != np.float32 or not (0 <= a.min() and a.max() <= 1):  # (NaN fails too)
        scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(a.dtype, 1.0)
        a = np.clip(np.nan_to_num(a.astype(np.float32) / scale), 0, 1)
    return a
