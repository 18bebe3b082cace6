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


def widths(labels: np.ndarray) -> np.ndarray:
    """Mean stroke width (px) of each piece of ``labels`` ((H, W) intp, -1 off the pieces):
    (n,) float64 indexed by label (n = the largest label + 1; NaN for labels not there),
    2 x area / boundary crossings along rows and columns, as :func:`stroke_width`."""
    n = int(labels.max()) + 1
    padded = np.pad(labels, 1, constant_values=-1)
    crossings = np.zeros(n)
    for a, b in ((padded[:, :-1], padded[:, 1:]), (padded[:-1], padded[1:])):
        edge = a != b
        for side in (a[edge], b[edge]):
            crossings += np.bincount(side[side >= 0], minlength=n)
    area = np.bincount(labels[labels >= 0], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(area > 0, 2 * area / crossings, np.nan)


def stroke_width(detail: np.ndarray) -> float:
    """Mean stroke width (px) of bright detail: 2 x area / boundary crossings of its Otsu mask."""
    counts, lo, step = hist(detail, 256)
    m = detail > lo + (otsu(counts) + 1) * step
    crossings = np.count_nonzero(m[1:] != m[:-1]) + np.count_nonzero(m[:, 1:] != m[:, :-1])
    return 2 * np.count_nonzero(m) / max(crossings, 1)


def components(mask: np.ndarray) -> np.ndarray:
    """Labels of the 8-connected components of a (H, W) bool mask: (H, W) intp, -1 off it.

    Union-find over the pixels of ``mask``, vectorised: each round hooks the larger root of
    every pair of neighbours with two roots to the smaller, then compresses every path to
    its root; rounds until no such pair is left (a few for strokes). A component's label
    is the index of its first pixel in row-major order. Cost grows with the pixels of
    ``mask``, not the image's.
    """
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    index = np.full((h + 2, w + 2), -1, np.intp)
    index[ys + 1, xs + 1] = np.arange(len(ys))
    pairs = [(np.flatnonzero(nb >= 0), nb[nb >= 0]) for nb in
             (index[ys + 1 + dy, xs + 1 + dx] for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)))]
    a, b = np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])
    root = np.arange(len(ys))
    while True:
        ra, rb = root[a], root[b]
        split = ra != rb
        if not split.any():
            break
        np.minimum.at(root, np.maximum(ra[split], rb[split]), np.minimum(ra[split], rb[split]))
        while not np.array_equal(up := root[root], root):
            root = up
    labels = np.full(mask.shape, -1, np.intp)
    labels[ys, xs] = root
    return labels


def connected_to(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels of ``mask`` that an 8-connected path inside ``mask`` joins to
    a pixel of ``seeds`` (both (H, W) bool; seeds off ``mask`` join nothing)."""
    labels = components(mask)
    seeded = np.zeros(labels.size + 1, bool)  # index -1: off the mask
    seeded[labels[seeds & mask]] = True
    seeded[-1] = False
    return seeded[labels]


def in_long_runs(mask: np.ndarray, n: int) -> np.ndarray:
    """(H, W) bool: the pixels of a (H, W) bool ``mask`` in a run of >= ``n`` pixels of
    it along a row or a column."""
    out = np.zeros(mask.shape, bool)
    for m, o in ((mask, out), (mask.T, out.T)):  # runs along rows, then along columns
        flat = np.pad(m, ((0, 0), (0, 1))).ravel()  # a False after every row ends its runs
        run = np.cumsum(flat & ~np.concatenate(([False], flat[:-1]))) * flat
        o |= (np.bincount(run)[run] >= n).reshape(m.shape[0], -1)[:, :-1] & m
    return out
