"""Preparation keeps every stroke of the digit (issue 20): a straight stroke is ink unless
there is evidence of a printed rule, and thin, light ink survives.

Photos of validation-half MNIST test digits, made as ``tests/hard_images.py`` makes them
(JPEG files), prepared as ``python -m mnist_lab.predict`` prepares them, and compared with
the true digit by stroke recall (``hard_images.stroke_recall``: the share of the true
digit's ink that the prepared ink, dilated by 1 px, covers).
"""

from __future__ import annotations

import numpy as np
import pytest

import hard_images
from hard_images import make_hard_files, stroke_recall, truth
from mnist_lab.recognise.paper import DOUBTFUL_LINE
from mnist_lab.recognise.prepare import prepare_image
from test_prepare import check_mnist_like
from user_images import load_mnist_test

KEPT = 0.9  # stroke recall of every photo (issue 20: worst 1 % >= 0.9)


@pytest.fixture(scope="module")
def mnist(data_root):
    return load_mnist_test(data_root)


def prepared(mnist, tmp_path, condition: str, indices) -> list[tuple[float, np.ndarray]]:
    """(stroke recall, prepared image) of test digits ``indices`` photographed in
    ``condition``."""
    images, labels = mnist
    out = []
    for i in indices:
        path, = make_hard_files(images[i:i + 1], tmp_path, [condition], first_index=i,
                                labels=labels[i:i + 1])
        p = prepare_image(path)
        check_mnist_like(p.image)
        out.append((stroke_recall(p.image, truth(condition, images[i])), p.image))
    return out


def first_of(mnist, digits, n: int) -> list[int]:
    """The first ``n`` validation-half test indices whose label is in ``digits``."""
    return np.flatnonzero(np.isin(mnist[1][:5000], digits))[:n].tolist()


def test_long_stems_in_tall_tight_crops_are_kept(mnist, tmp_path):
    # The first 20 1s, 4s and 7s of the validation half in `long_stems`: thin pen on grey
    # paper with faint show-through lines, framed tall and tight, so that a stem crosses the
    # frame as a rule does. Before issue 20 the 7 of test image 0 lost its long stroke
    # (recall 0.73): a single straight line reaching both ends of the frame was a rule.
    indices = first_of(mnist, [1, 4, 7], 20)
    recall = [r for r, _ in prepared(mnist, tmp_path, "long_stems", indices)]
    assert min(recall) >= KEPT, dict(zip(indices, np.round(recall, 2)))


@pytest.mark.parametrize("condition, index", [
    ("tall_crop", 265), ("tall_crop", 272), ("long_stems", 180),  # 1s: recall 0.46 .. 0.65
    ("tall_crop", 250),  # a 4 whose stem was erased, read as 6 (recall 0.55)
    ("tall_crop", 62),  # a 9 whose stem was erased, read as 6 (recall 0.73)
])
def test_a_stem_reaching_both_ends_of_the_frame_is_ink(mnist, tmp_path, condition, index):
    (recall, _), = prepared(mnist, tmp_path, condition, [index])
    assert recall >= KEPT


@pytest.mark.parametrize("condition, index", [
    ("tall_crop", 102),  # the top bar of a 5 (recall 0.67)
    ("long_stems", 79),  # the top bar of a 7 (recall 0.90)
    ("long_stems", 287),  # the bar of a 4 (recall 0.84)
])
def test_a_lone_stroke_within_the_digit_is_ink(mnist, tmp_path, condition, index):
    # A straight bar across a narrow, tight frame reaches both of its sides, as a rule
    # does; but it does not reach beyond the rest of the digit on both sides: it is ink.
    (recall, _), = prepared(mnist, tmp_path, condition, [index])
    assert recall >= KEPT


def test_a_margin_line_beyond_the_digit_is_removed(mnist, tmp_path, monkeypatch):
    # Ruled paper with its red margin line in every photo: the margin line is alone in its
    # direction (no regular family), but it runs far beyond the digit at both ends.
    monkeypatch.setitem(hard_images.LINES, "ruled", {**hard_images.LINES["ruled"],
                                                     "margin_p": 1.0})
    for recall, image in prepared(mnist, tmp_path, "ruled", range(12)):
        assert recall >= KEPT
        # a margin line left in would be a long stroke at one side of a shrunken digit
        assert np.count_nonzero(image.max(0) >= 128) >= 3


def test_evenly_spaced_rules_are_removed(mnist, tmp_path):
    # Ruled and squared paper: families of parallel lines at a regular spacing.
    for condition, n in (("ruled", 6), ("squared", 6), ("ruled_small_vignette", 3)):
        for recall, image in prepared(mnist, tmp_path, condition, range(n)):
            assert recall >= KEPT, condition


def test_a_long_line_beside_a_digit_at_the_edge_is_kept_with_a_warning(mnist, tmp_path):
    # A margin line runs off the photo at both ends, far beyond a small digit that sits
    # near the photo's edge: at that end it does not clear the digit, just as a 1's stem
    # does not clear its flag. It is kept, and the preparation says it may be a rule (test
    # image 253, a 5; before, no warning).
    images, labels = mnist
    path, = make_hard_files(images[253:254], tmp_path, ["ruled_small_vignette"],
                            first_index=253, labels=labels[253:254])
    assert DOUBTFUL_LINE in prepare_image(path).warnings


def _enclosed(image: np.ndarray) -> int:
    """Pixels of a (28, 28) uint8 image under 128 that no 4-connected path of such pixels
    joins to the border: the inside of closed loops."""
    paper = image < 128
    outside = np.zeros_like(paper)
    outside[[0, -1]], outside[:, [0, -1]] = paper[[0, -1]], paper[:, [0, -1]]
    while True:
        grown = outside.copy()
        grown[1:] |= outside[:-1]
        grown[:-1] |= outside[1:]
        grown[:, 1:] |= outside[:, :-1]
        grown[:, :-1] |= outside[:, 1:]
        grown &= paper
        if (grown == outside).all():
            return int(np.count_nonzero(paper & ~outside))
        outside = grown


def test_a_light_thin_loop_stays_closed(mnist, tmp_path):
    # The first ten 9s of the validation half in `light_uneven`: light blue or pencil
    # ballpoint, 1-2 px wide, its flow uneven, on a small photo. Before issue 20 the faint
    # part of the loop and stem of test image 7 were dropped (recall 0.39; read as 0).
    images, _ = mnist
    indices = first_of(mnist, [9], 10)
    for i, (recall, image) in zip(indices, prepared(mnist, tmp_path, "light_uneven", indices)):
        assert recall >= KEPT, i
        if _enclosed(truth("light_uneven", images[i])):
            assert _enclosed(image) > 0, i


# the measures and the parts ---------------------------------------------------------------


def test_stroke_recall_forgives_thickening_and_a_shift_not_a_lost_stroke(mnist):
    digit = mnist[0][0]
    thick = np.maximum(digit, np.roll(digit, 1, 1))
    assert stroke_recall(np.roll(thick, 1, 0), digit) == 1.0
    assert hard_images.iou(thick, digit) < 0.9  # IoU counts the thickening against it
    half = digit.copy()
    half[14:] = 0
    assert stroke_recall(half, digit) < 0.7
    with pytest.raises(ValueError, match="no ink"):
        stroke_recall(digit, np.zeros((28, 28), np.uint8))


def test_a_regular_family_is_found_and_a_stem_between_rules_is_not_in_it():
    from mnist_lab.recognise.paper import _regular_family

    rules = 100 + 17.7 * np.arange(12)  # 12 rules, their spacing drifting off 17 px
    assert set(_regular_family(rules)) == set(range(12))
    with_stem = np.concatenate([rules, [rules[4] + 8.8]])  # a stem halfway between two
    assert set(_regular_family(with_stem)) == set(range(12))
    assert len(_regular_family(np.array([50.0, 80.0]))) == 0  # two lines show no spacing
    assert len(_regular_family(np.array([50.0, 80.0, 170.0]))) == 0  # not evenly spaced


def test_connected_pieces_and_long_runs():
    from mnist_lab.recognise.ops import components, connected_to, in_long_runs

    mask = np.zeros((6, 10), bool)
    mask[1, 1:9] = True  # a row of 8
    mask[2:6, 0] = True  # a column of 4, touching the row diagonally
    mask[4, 4:6] = True  # apart
    labels = components(mask)
    assert labels[1, 1] == labels[5, 0] != labels[4, 4] and (labels[~mask] == -1).all()
    seeds = np.zeros_like(mask)
    seeds[5, 0] = True
    assert (connected_to(mask, seeds) == (mask & (labels == labels[1, 1]))).all()
    long = in_long_runs(mask, 4)
    assert long[1, 1:9].all() and long[2:6, 0].all() and not long[4, 4:6].any()
