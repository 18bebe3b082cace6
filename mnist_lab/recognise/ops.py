"""Array operations for preparing images: fast block reduction and resizing, local
minimum and maximum filters, histograms and Otsu's threshold, stroke width.

All take and return float32 NumPy arrays (grey values in [0, 1]) unless stated.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def reduce(a: np.ndarray, f: int) -> np.ndarray:
    """(H, W) float32 -> (ceil(H/f), ceil(W/f)) float32, each cell the mean of an f x f block."""
    return np.asarray(Image.fromarray(a, mode="F").reduce(f)) if f > 1 else a


def upsample(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Bilinear resize (Pillow) of a float32 grid to `shape` (H, W)."""
    return np.asarray(Image.fromarray(a, mode="F").resize(shape[::-1], Image.Resampling.BILINEAR))


def minmax(a: np.ndarray, k: int, fn: np.ufunc) -> np.ndarray:
    """Erosion (fn=np.minimum) or dilation (np.maximum), k x k square, k odd, edges repeated.

    Separable; windows of 1, 2, 4, .. then two overlapping ones: O(log k) array operations.
    """
    for _ in range(2):  # axis 0, then (after the transpose) axis 1
        a = np.concatenate((np.repeat(a[:1], k // 2, 0), a, np.repeat(a[-1:], k // 2, 0)))
        w = 1
        while 2 * w <= k:
            a, w = fn(a[:-w], a[w:]), 2 * w
        a = fn(a[:len(a) - (k - w)], a[k - w:]).T
    return a


def hist(a: np.ndarray, n: int) -> tuple[np.ndarray, float, float]:
    """Histogram of `a` in n bins from its min to its max: (counts, min, bin width)."""
    lo, hi = float(a.min()), float(a.max())
    step = max(hi - lo, 1e-9) / (n - 1)
    return np.bincount(((a - lo) * (1 / step)).astype(np.intp).ravel(), minlength=n), lo, step


def otsu(counts: np.ndarray) -> int:
    """Otsu's threshold: the last bin of the lower class (maximal between-class variance)."""
    w = np.cumsum(counts, dtype=np.float64)
    mu = np.cumsum(counts * np.arange(len(counts)), dtype=np.float64)
    denominator = w * (w[-1] - w)
    denominator[denominator == 0] = np.inf  # one class empty: no split
    between = (mu[-1] * w - mu * w[-1]) ** 2 / denominator
    return int(np.argmax(between)) if between.max() > 0 else len(counts) // 2


def stroke_width(detail: np.ndarray) -> float:
    """Mean stroke width (px) of bright detail: 2 x area / boundary crossings of its Otsu mask."""
    counts, lo, step = hist(detail, 256)
    m = detail > lo + (otsu(counts) + 1) * step
    crossings = np.count_nonzero(m[1:] != m[:-1]) + np.count_nonzero(m[:, 1:] != m[:, :-1])
    return 2 * np.count_nonzero(m) / max(crossings, 1)
