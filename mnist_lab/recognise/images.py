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


def read_image(path: str | Path, min_side: int | None = None) -> np.ndarray:
    """Decode an image file to (H, W) float32 grey in [0, 1]; ink or paper not yet decided.

    Any format Pillow reads (first frame), any mode; 16-bit /65535; alpha composited over
    white; EXIF orientation applied. With `min_side`, a JPEG is decoded at the smallest DCT
    scale (1/2, 1/4, 1/8) keeping its short side >= min_side (much faster for photos).
    Raises ImageError, naming the file, for anything that is not a readable image.
    """
    try:
        with _OPEN_LOCK, warnings.catch_warnings():  # over MAX_IMAGE_PIXELS Pillow only warns
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)  # reads the header only: the lock is held briefly
        with im:
            s = max(1, min(im.size) // min_side) if min_side else 1
            im.draft("L", (math.ceil(im.width / s), math.ceil(im.height / s)))
            im.load()
            return _to_grey(ImageOps.exif_transpose(im))
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
