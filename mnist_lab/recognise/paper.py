"""The paper under the ink: smooth lighting (vignetting) and printed rules (ruled or squared
paper), estimated so that neither is taken for ink.

Both work on light-ink images (ink bright on dark paper, float32), as :mod:`.prepare`
has them after deciding the polarity.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from .digit import ink_box

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


RULE_BRIGHT = 0.2  # lines of ink over 0.2 ...
RULE_TILT_DEG, RULE_STEP_DEG = 6.0, 0.25  # ... within +-6 degrees of the image axes ...
RULE_SPAN = 0.4  # ... ink-bright over >= 40 % of the image's width ...
RULE_ENDS = 0.15  # ... and within 15 % of both of its ends: they cross the frame ...
RULE_THIN = 1 / 40  # ... at most 3 px or 1/40 of the short side thick.
# Such a line is a printed rule only with evidence (issue 20: a digit's stem in a tall,
# tight photo is all of the above, and was erased):
FAMILY = 3  # >= 3 parallel lines on a regular lattice (two alone show no spacing), ...
SPACING_TOL = 0.1  # ... each within 10 % of the spacing of a site, the spacing >= 10 px, ...
FILLED = 2 / 3  # ... holding >= 2/3 of the sites between the outer two; or
CLEAR = 0.05  # a lone line beyond the rest of the ink at both ends: apart from it, or by
LONG = 1.5  # >= 1/20 of the rest's extent at each and >= 1.5x its extent in all or off
EDGE = 2  # the image at both ends (within 2 px).
MIN_REST = 0.01  # Ink beside a line under 1 % of the line's own: the line is the digit.
RULE_SIDE = 0.1  # bins beside a line with bright pixels over 10 % of the width are its own
# (a stroke's waver; at most as many as the line's), not the rest of the ink
APART = 2  # no rest of the ink within 2x a line's thickness of it: the line stays apart
DOUBTFUL_LINE = ("a long straight line that may be a printed rule was kept as part of the "
                 "digit: if the result looks wrong, photograph the digit on plain paper")


class Line(NamedTuple):
    """A long, thin, straight line of bright ink along the rows (:func:`_lines_along_rows`)."""

    lo: int  # its bins across the rows, [lo, hi), anti-aliased edges included
    hi: int
    start: int  # the first and the last column of its bright pixels
    stop: int
    own_lo: int  # [own_lo, own_hi): with the bins beside it that are its own (RULE_SIDE)
    own_hi: int
    edge_to_edge: bool  # it runs off the image at both ends (within EDGE px)


def _lines_along_rows(ink: np.ndarray,
                      bright: float = RULE_BRIGHT) -> tuple[np.ndarray, list[Line]]:
    """Near-horizontal lines crossing (H, W) float32 light ink: (bins, lines).

    ``bins``: (H, W) intp, each pixel's bin across the lines (1 px wide, along their tilt).
    The bright pixels (ink > ``bright``) are binned by their distance across lines tilted
    by -6..6 degrees (1 degree steps, then 0.25 around the best); the tilt that packs them
    into the fewest bins (the largest sum of squared bin counts) wins. Its bins with
    bright pixels over RULE_SPAN of the width (and of the line's length inside the image:
    a tilted line may leave it at the top or bottom), reaching within RULE_ENDS of the
    width of both ends of that length, in runs no thicker than RULE_THIN of the short side
    (or 3 px), are lines, widened by one bin on each side (the anti-aliased edges). The
    bins beside a line with bright pixels over RULE_SIDE of the width (as many as its own
    at most, on each side), and one more on each side, are its own too where the rest of
    the ink is concerned: a stroke that wavers a little. Printed rules are such lines,
    but so is a digit's stem in a tight photo: see :func:`remove_rules` for the evidence
    that tells them apart.
    """
    h, w = ink.shape
    ys, xs = np.nonzero(ink > bright)
    none = np.zeros(ink.shape, np.intp), []
    if len(ys) < RULE_SPAN * w or xs.min() > RULE_ENDS * w or xs.max() < (1 - RULE_ENDS) * w:
        return none  # too little ink, or none near both sides: nothing crosses the frame
    ys, xs = ys.astype(np.float32), xs.astype(np.float32)

    def packing(degrees: np.ndarray) -> tuple[float, float, np.ndarray]:
        best = (-1.0, 0.0, None)
        for tilt in np.deg2rad(degrees):  # aligned with the lines, pixels share fewest bins
            across = (ys * np.cos(tilt) - xs * np.sin(tilt) + (w + 0.5)).astype(np.intp)
            hits = np.bincount(across).astype(np.float64)
            best = max(best, (hits @ hits, tilt, across), key=lambda b: b[0])
        return best

    _, tilt, across = packing(np.arange(-RULE_TILT_DEG, RULE_TILT_DEG + 1e-3, 1.0))
    if np.bincount(across).max() < RULE_SPAN * w / 4:  # even smeared over 4 bins: no line
        return none
    _, tilt, across = packing(np.rad2deg(tilt) + np.arange(-0.75, 0.76, RULE_STEP_DEG))
    hits = np.bincount(across, minlength=h + 2 * w + 2)
    crossing, edge_to_edge = np.zeros(len(hits), bool), np.zeros(len(hits), bool)
    line_x = np.arange(w)
    for b in np.flatnonzero(hits >= RULE_SPAN * w):
        inside = line_x[np.abs((b - w + line_x * np.sin(tilt)) / np.cos(tilt) - (h - 1) / 2)
                        <= (h - 1) / 2]
        x, ends = xs[across == b], RULE_ENDS * w
        crossing[b] = (len(inside) and hits[b] >= RULE_SPAN * len(inside)
                       and x.min() < inside[0] + ends and x.max() > inside[-1] - ends)
        edge_to_edge[b] = crossing[b] and x.min() <= inside[0] + EDGE and \
            x.max() >= inside[-1] - EDGE
    flips = np.flatnonzero(np.diff(np.concatenate(([0], crossing.astype(np.int8), [0]))))
    lines, side = [], hits >= RULE_SIDE * w
    for top, bottom in zip(flips[::2], flips[1::2]):
        if bottom - top > max(3, min(h, w) * RULE_THIN):  # printed rules are thin
            continue
        x = xs[(across >= top) & (across < bottom)]
        lo, hi = top - 1, bottom + 1
        while lo > max(top - 1 - (bottom - top), 0) and side[lo - 1]:
            lo -= 1
        while hi < min(bottom + 1 + (bottom - top), len(hits)) and side[hi]:
            hi += 1
        lines.append(Line(int(top) - 1, int(bottom) + 1, int(x.min()), int(x.max()),
                          int(lo) - 1, int(hi) + 1, bool(edge_to_edge[top:bottom].any())))
    yy, xx = np.ogrid[0:h, 0:w]
    return np.round(yy * np.cos(tilt) - xx * np.sin(tilt)).astype(np.intp) + w, lines


def _on(bins: np.ndarray, lines: list[Line], pads: list[int] | None = None,
        own: bool = False) -> np.ndarray:
    """(H, W) bool: the pixels of ``lines`` (bins ``bins``; with the bins beside them that
    are their ``own``), each widened by its ``pads``."""
    table = np.zeros(int(bins.max()) + 1, bool)
    for line, pad in zip(lines, pads or [0] * len(lines)):
        lo, hi = (line.own_lo, line.own_hi) if own else (line.lo, line.hi)
        table[max(lo - pad, 0):hi + pad] = True
    return table[bins]


def _regular_family(across: np.ndarray) -> np.ndarray:
    """Indices of the parallel lines at positions ``across`` ((n,) px) that are printed
    rules by their spacing: the largest set of >= FAMILY lines on a lattice a + k s.

    Each gap between neighbouring lines (>= 10 px) proposes s; the line with the most
    others within SPACING_TOL s of its lattice is a; a and s are then fitted to those
    (least squares: the spacing drifts over many lines), and the lines within SPACING_TOL
    s of the fitted lattice are the family, as far as the sites they take are >= FILLED
    of those between (:func:`_densest`; a lattice of half the spacing would take every
    rule and a stem between two of them). Ruled and squared paper: evenly spaced lines,
    some too faint or hidden under the digit. Empty (int) if there is no such set.
    """
    best = np.zeros(0, np.intp)
    gaps = np.diff(np.sort(across))
    for s in np.unique(gaps[SPACING_TOL * gaps >= 1]):
        k = (across[None, :] - across[:, None]) / s
        on = np.abs(k - np.round(k)) <= SPACING_TOL
        first = int(np.argmax(on.sum(1)))
        sites = np.round(k[first, on[first]])
        if len(np.unique(sites)) < FAMILY:
            continue
        s, a = np.polyfit(sites, across[on[first]], 1)
        if SPACING_TOL * s < 1:
            continue
        k = (across - a) / s
        on = np.abs(k - np.round(k)) <= SPACING_TOL
        family = _densest(np.round(k), on)
        if len(family) > len(best):
            best = family
    return best


def _densest(sites: np.ndarray, on: np.ndarray) -> np.ndarray:
    """Indices of the lines ``on`` a lattice (at ``sites``, (n,) float) whose sites run
    from one to another holding >= FILLED of the sites between, and >= FAMILY of them:
    the most such lines (int, empty if none)."""
    taken = np.unique(sites[on])
    best = np.zeros(0, np.intp)
    for i, low in enumerate(taken):
        for high in taken[i + FAMILY - 1:]:
            inside = on & (sites >= low) & (sites <= high)
            held = np.count_nonzero((taken >= low) & (taken <= high))
            if held >= FILLED * (high - low + 1) and np.count_nonzero(inside) > len(best):
                best = np.flatnonzero(inside)
    return best


def _beyond(line: Line, rest: np.ndarray) -> tuple[float, float, np.ndarray]:
    """How far a lone line along the rows reaches beyond the rest of the ink: (at the end
    where it reaches least, at both ends together; fractions of the rest's width, negative
    where it stops short) and the rest's box ((H, W) bool).

    ``rest``: (H, W) bool, the definite ink away from that line and without printed rules
    (not empty); its extent is the digit's box (:func:`~.digit.ink_box`: specks and edge
    artefacts left out).
    """
    top, bottom, left, right = ink_box(rest)
    box = np.zeros(rest.shape, bool)
    box[top:bottom, left:right] = True
    ends = np.array([left - line.start, line.stop - (right - 1)]) / max(right - left, 1)
    return float(ends.min()), float(ends.sum()), box


def _lone_verdict(line: Line, bins: np.ndarray, rest: np.ndarray,
                  axis: int) -> tuple[bool, bool]:
    """(whether a lone line is a printed rule, whether it is kept in doubt), given its
    ``bins`` and the ``rest`` of the definite ink ((H, W) bool, not empty; the line along
    the rows for ``axis`` 0, the columns for 1).

    A rule reaches beyond the digit (``rest``, its box) at both ends: by any amount if it
    stays apart from it (no part of the box within APART times the line's thickness), or
    else by CLEAR of the digit's extent at each end and by LONG of it in all, or off the
    image at both ends: a margin line. Within the digit's extent a straight stroke is
    ink; one that reaches beyond it by CLEAR at both ends but meets it and is not that
    long is kept, in doubt (a 4's stem may rise above its arm), and so is one off the
    image at both ends and LONG beyond the digit in all that stops short of CLEAR at one
    end: a margin line beside a digit at the edge of the photo, or a 1's stem below its
    flag.
    """
    least, total, box = _beyond(line, rest if axis == 0 else rest.T)
    near = _on(bins, [line], [APART * (line.hi - line.lo)], own=True)
    apart = not ((box if axis == 0 else box.T) & near).any()
    rule = (apart and least > 0) or (least >= CLEAR and (total >= LONG or line.edge_to_edge))
    return rule, not rule and (least >= CLEAR or (line.edge_to_edge and total >= LONG))


def _verdicts(found: list[tuple[np.ndarray, list[Line]]],
              sure: np.ndarray) -> tuple[list[np.ndarray], bool]:
    """Which lines of each axis are printed rules: ((n,) bool per axis, whether a line was
    kept in doubt). ``found``: (bins, lines) along the rows, then the columns (bins of the
    image, not transposed).

    Evidence (issue 20): a line of a regular family (:func:`_regular_family`) is a rule,
    and so is a lone line that reaches far enough beyond the digit, the rest of the
    definite ink (:func:`_lone_verdict`). The rest leaves out the rules found so far and
    the lone lines of the same direction (with the bins that are their own); the
    directions take turns until no rule is added. Reaching the frame is no evidence on
    its own. With under MIN_REST of a line's definite ink beside it, the line is the
    digit (a plain 1).
    """
    rules = [np.zeros(len(lines), bool) for _, lines in found]
    for (_, lines), rule in zip(found, rules):
        rule[_regular_family(np.array([(line.lo + line.hi) / 2 for line in lines]))] = True
    doubts = [np.zeros(len(lines), bool) for _, lines in found]
    added = True
    while added:
        added = False
        printed = np.zeros(sure.shape, bool)
        for (bins, lines), rule in zip(found, rules):
            printed |= _on(bins, [line for line, r in zip(lines, rule) if r])
        for axis, ((bins, lines), rule) in enumerate(zip(found, rules)):
            lone = np.flatnonzero(~rule)
            rest = sure & ~printed & ~_on(bins, [lines[i] for i in lone], own=True)
            beside = np.count_nonzero(rest)
            for i in lone:
                if beside and beside >= MIN_REST * np.count_nonzero(sure & _on(bins, [lines[i]])):
                    rule[i], doubts[axis][i] = _lone_verdict(lines[i], bins, rest, axis)
                    added |= rule[i]
    return rules, any((d & ~r).any() for d, r in zip(doubts, rules))


def _across(a: np.ndarray, gap: int, axis: int) -> np.ndarray:
    """min(a shifted by +gap, a shifted by -gap) along ``axis``, edges padded with 0:
    what lies on both sides of a rule ``gap`` px away."""
    pad = [(0, 0), (0, 0)]
    pad[axis] = (gap, gap)
    p = np.pad(a, pad)
    n = a.shape[axis]
    return np.minimum(np.take(p, range(0, n), axis=axis), np.take(p, range(2 * gap, 2 * gap + n),
                                                                   axis=axis))


def remove_rules(ink: np.ndarray,
                 sure: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Take printed rules (ruled or squared paper, a margin line) out of the ink.

    ``ink``: (H, W) float32 light ink in [0, 1]; ``sure``: (H, W) bool definite ink.
    Returns both without the rules, where the rules ran ((H, W) bool: each widened by its
    thickness on both sides, its faint edges included), and warnings. Long thin straight
    lines (:func:`_lines_along_rows`, for rows and for columns) are rules only with
    evidence (:func:`_verdicts`): a regular family, or a reach far beyond the digit at
    both ends; otherwise they are strokes of the digit, and kept (with a warning where in
    doubt). Where a stroke crosses a rule, the rule's pixels are filled from the ink just
    beyond both of its sides (the smaller of the two), so strokes stay whole; elsewhere
    they become paper. Unchanged where there is no rule.
    """
    rows, columns = _lines_along_rows(ink), _lines_along_rows(ink.T)
    out_ink, out_sure, along = ink, sure, np.zeros(ink.shape, bool)
    if not rows[1] and not columns[1]:
        return out_ink, out_sure, along, []
    found = [rows, (columns[0].T, columns[1])]
    rules, doubt = _verdicts(found, sure)
    for axis, ((bins, lines), rule) in enumerate(zip(found, rules)):  # 0: rows, 1: columns
        removed = [line for line, r in zip(lines, rule) if r]
        if not removed:
            continue
        mask = _on(bins, removed)
        along |= _on(bins, removed, [line.hi - line.lo for line in removed])
        gap = max(line.hi - line.lo for line in removed) + 1
        clean_ink = np.where(mask, 0, out_ink)
        clean_sure = out_sure & ~mask
        out_ink = np.where(mask, _across(clean_ink, gap, axis), out_ink)
        out_sure = np.where(mask, _across(clean_sure, gap, axis), out_sure)
    return out_ink.astype(np.float32), out_sure, along, [DOUBTFUL_LINE] if doubt else []


def faint_lines(ink: np.ndarray) -> np.ndarray:
    """(H, W) bool: the lines of the paper in light ``ink`` ((H, W) float32), however faint:
    long thin straight lines crossing the frame (:func:`_lines_along_rows`, rows and
    columns) made of any ink at all (over 0: above the noise), with the bins beside them
    that are their own. Faint rules and lines seen through the paper, which a digit's
    faint strokes must not be taken along (see :func:`.prepare.faint_strokes`)."""
    rows, columns = _lines_along_rows(ink, 0.0), _lines_along_rows(ink.T, 0.0)
    return _on(*rows, own=True) | _on(*columns, own=True).T
