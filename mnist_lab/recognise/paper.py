"""The paper under the ink: smooth lighting (vignetting) and printed rules (ruled or squared
paper), estimated so that neither is taken for ink.

Both work on light-ink images (ink bright on dark paper, float32), as :mod:`.prepare`
has them after deciding the polarity.
"""

from __future__ import annotations

import functools

import numpy as np

DEGREE = 6  # lighting: a polynomial surface of this total degree in x and y (28 terms)


@functools.lru_cache(maxsize=16)
def _terms(h: int, w: int, degree: int) -> np.ndarray:
    """(h * w, n) float64: the monomials x^i y^j, i + j <= degree, x and y in [-1, 1]."""
    y, x = np.linspace(-1, 1, h)[:, None], np.linspace(-1, 1, w)[None, :]
    return np.stack([np.broadcast_to(x ** i * y ** j, (h, w)).ravel()
                     for i in range(degree + 1) for j in range(degree + 1 - i)], 1)


def _below(residual: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Cells whose residual is under 2.5 robust standard deviations (1.4826 x the median
    absolute deviation, over ``among``): not ink."""
    r = residual[among]
    spread = 1.4826 * np.median(np.abs(r - np.median(r)))
    return residual < 2.5 * max(spread, 1e-4)


def lighting_surface(c: np.ndarray, degree: int = DEGREE, rounds: int = 3,
                     start: np.ndarray | None = None) -> np.ndarray:
    """Smooth lighting of a coarse (h, w) float32 light-ink grid: (h, w) float32.

    A least-squares polynomial surface of total degree ``degree`` (coordinates scaled to
    [-1, 1]), refitted ``rounds`` times in all without the cells that lie above it by
    more than 2.5 robust standard deviations: the ink. With ``start`` (a first estimate
    without the ink, such as a grey opening), the first fit already leaves out the cells
    far above it, so a large, bold digit cannot pull the surface up. It follows a vignette
    into the corners, where a grey opening (a window's minimum) cuts the peak off and
    leaves the corners looking like ink.
    """
    terms = _terms(*c.shape, degree)
    z = c.ravel().astype(np.float64)
    keep = np.ones(z.shape, bool)
    if start is not None:
        keep = _below(z - start.ravel(), keep)
    for round_ in range(rounds):
        a = terms[keep]
        coef = np.linalg.solve(a.T @ a + 1e-9 * np.eye(a.shape[1]), a.T @ z[keep])
        if round_ < rounds - 1:
            keep = _below(z - terms @ coef, keep)
    return (terms @ coef).reshape(c.shape).astype(np.float32)


RULE_TILT_DEG, RULE_STEP_DEG = 6.0, 0.25  # rules: within +-6 degrees of the image axes
RULE_SPAN = 0.4  # a rule is ink-bright over >= 40 % of the image's width ...
RULE_ENDS = 0.15  # ... and within 15 % of both of its ends: it crosses the frame ...
RULE_THIN = 1 / 40  # ... and is at most 3 px or 1/40 of the short side thick


def _rules_along_rows(ink: np.ndarray) -> tuple[np.ndarray, int]:
    """Near-horizontal rules in (H, W) float32 light ink: (bool mask (H, W), thickness px).

    The bright pixels (ink > 0.2) are binned by their distance across lines tilted by
    -6..6 degrees (1 degree steps, then 0.25 around the best); the tilt that packs them
    into the fewest bins (the largest sum of squared bin counts) wins. Its bins with
    bright pixels over RULE_SPAN of the width (and of the line's length inside the image:
    a tilted line may leave it at the top or bottom), reaching within RULE_ENDS of the
    width of both ends of that length, in runs no thicker than RULE_THIN of the short side
    (or 3 px), are rules, widened by one bin on each side (the anti-aliased edges). A
    digit's stroke is neither that long and thin nor does it cross the frame.
    """
    h, w = ink.shape
    ys, xs = np.nonzero(ink > 0.2)
    none = np.zeros(ink.shape, bool), 0
    if len(ys) < RULE_SPAN * w or xs.min() > RULE_ENDS * w or xs.max() < (1 - RULE_ENDS) * w:
        return none  # too little ink, or none near both sides: nothing crosses the frame
    ys, xs = ys.astype(np.float32), xs.astype(np.float32)

    def packing(degrees: np.ndarray) -> tuple[float, float, np.ndarray]:
        best = (-1.0, 0.0, None)
        for tilt in np.deg2rad(degrees):  # aligned with the rules, pixels share fewest bins
            across = (ys * np.cos(tilt) - xs * np.sin(tilt) + (w + 0.5)).astype(np.intp)
            hits = np.bincount(across).astype(np.float64)
            best = max(best, (hits @ hits, tilt, across), key=lambda b: b[0])
        return best

    _, tilt, across = packing(np.arange(-RULE_TILT_DEG, RULE_TILT_DEG + 1e-3, 1.0))
    if np.bincount(across).max() < RULE_SPAN * w / 4:  # even smeared over 4 bins: no rule
        return none
    _, tilt, across = packing(np.rad2deg(tilt) + np.arange(-0.75, 0.76, RULE_STEP_DEG))
    hits = np.bincount(across, minlength=h + 2 * w + 2)
    rules = np.zeros(len(hits), bool)
    line_x = np.arange(w)
    for b in np.flatnonzero(hits >= RULE_SPAN * w):
        inside = line_x[np.abs((b - w + line_x * np.sin(tilt)) / np.cos(tilt) - (h - 1) / 2)
                        <= (h - 1) / 2]
        x, ends = xs[across == b], RULE_ENDS * w
        rules[b] = (len(inside) and hits[b] >= RULE_SPAN * len(inside)
                    and x.min() < inside[0] + ends and x.max() > inside[-1] - ends)
    flips = np.flatnonzero(np.diff(np.concatenate(([0], rules.astype(np.int8), [0]))))
    for start, stop in zip(flips[::2], flips[1::2]):  # printed rules are thin; strokes not
        rules[start:stop] &= stop - start <= max(3, min(h, w) * RULE_THIN)
    if not rules.any():
        return none
    flips = np.flatnonzero(np.diff(np.concatenate(([0], rules.astype(np.int8), [0]))))
    thickness = int(np.max(flips[1::2] - flips[::2])) + 2
    rules = np.convolve(rules, [1, 1, 1], "same") > 0
    yy, xx = np.ogrid[0:h, 0:w]
    return rules[np.round(yy * np.cos(tilt) - xx * np.sin(tilt)).astype(np.intp) + w], thickness


def _across(a: np.ndarray, gap: int, axis: int) -> np.ndarray:
    """min(a shifted by +gap, a shifted by -gap) along ``axis``, edges padded with 0:
    what lies on both sides of a rule ``gap`` px away."""
    pad = [(0, 0), (0, 0)]
    pad[axis] = (gap, gap)
    p = np.pad(a, pad)
    n = a.shape[axis]
    return np.minimum(np.take(p, range(0, n), axis=axis), np.take(p, range(2 * gap, 2 * gap + n),
                                                                   axis=axis))


def remove_rules(ink: np.ndarray, sure: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Take printed rules (ruled or squared paper, a margin line) out of the ink.

    ``ink``: (H, W) float32 light ink in [0, 1]; ``sure``: (H, W) bool definite ink.
    Returns both without the rules (see :func:`_rules_along_rows`, for rows and for
    columns); unchanged where none was found. Where a stroke crosses a rule, the rule's
    pixels are filled from the ink just beyond both of its sides (the smaller of the
    two), so strokes stay whole; elsewhere they become paper.
    """
    out_ink, out_sure = ink, sure
    for axis in (0, 1):  # axis 0: rules along rows (horizontal); 1: along columns
        mask, thickness = _rules_along_rows(ink if axis == 0 else ink.T)
        if not thickness:
            continue
        mask = mask if axis == 0 else mask.T
        gap = thickness + 1
        clean_ink = np.where(mask, 0, out_ink)
        clean_sure = out_sure & ~mask
        out_ink = np.where(mask, _across(clean_ink, gap, axis), out_ink)
        out_sure = np.where(mask, _across(clean_sure, gap, axis), out_sure)
    return out_ink.astype(np.float32), out_sure
