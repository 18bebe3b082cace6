"""Batched, seeded augmentation on the tensor path."""

import pytest
import torch

from mnist_lab.data.augment import (
    AugmentConfig,
    Augmenter,
    change_stroke,
    random_affine_matrices,
    redraw_thin_pen,
    thin,
)
from mnist_lab.errors import ConfigError

OFF = AugmentConfig(enabled=True, rotation_deg=0, scale=0, shear_deg=0, translate=0, stroke=0)


def digits():
    torch.manual_seed(0)
    x = torch.zeros(8, 1, 28, 28, dtype=torch.uint8)
    x[:, :, 8:20, 12:16] = 255  # a vertical bar: a "1"
    return x


def test_zero_strength_is_the_identity():
    out = Augmenter(OFF, seed=0)(digits(), step=5)
    torch.testing.assert_close(out, digits().float(), atol=1e-3, rtol=0)


def test_draws_are_a_pure_function_of_seed_and_step():
    aug = Augmenter(AugmentConfig(enabled=True), seed=3)
    a = aug(digits(), step=7)
    assert torch.equal(a, aug(digits(), step=7))
    assert torch.equal(a, Augmenter(AugmentConfig(enabled=True), seed=3)(digits(), step=7))
    assert not torch.equal(a, aug(digits(), step=8))
    assert not torch.equal(a, Augmenter(AugmentConfig(enabled=True), seed=4)(digits(), step=7))


def test_output_keeps_shape_range_and_most_of_the_ink():
    out = Augmenter(AugmentConfig(enabled=True), seed=0)(digits(), step=0)
    assert out.shape == (8, 1, 28, 28) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 255
    ink = out.sum(dim=(1, 2, 3)) / digits().float().sum(dim=(1, 2, 3))
    assert ((ink > 0.4) & (ink < 2.5)).all(), ink
    assert not torch.equal(out, digits().float()), "augmentation changed nothing"


def test_images_get_different_transforms():
    theta = random_affine_matrices(64, AugmentConfig(), torch.Generator().manual_seed(0),
                                   torch.device("cpu"))
    assert theta.shape == (64, 2, 3) and len({tuple(t.flatten().tolist()) for t in theta}) == 64
    angles = torch.rad2deg(torch.atan2(theta[:, 1, 0], theta[:, 0, 0])).abs()
    assert angles.max() < 15 + 10 + 1  # rotation plus shear bound the apparent angle


def test_stroke_changes_thicken_and_thin():
    x = digits().float()
    always = change_stroke(x, 1.0, torch.Generator().manual_seed(1))
    ink = (always > 127).sum(dim=(1, 2, 3)).float() / (x > 127).sum(dim=(1, 2, 3))
    assert (ink > 1.1).any() and (ink < 0.9).any()  # some thicker, some thinner
    assert torch.equal(change_stroke(x, 0.0, torch.Generator().manual_seed(1)), x)


def ring(outer: float = 9.0, inner: float = 5.0) -> torch.Tensor:
    """bool (1, 1, 28, 28): a closed loop (a "0"), 4 px thick, centred."""
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    r = torch.hypot(yy - 13.5, xx - 13.5)
    return ((r <= outer) & (r >= inner)).view(1, 1, 28, 28)


def test_thinning_leaves_a_one_pixel_centre_line():
    bar = torch.zeros(1, 1, 28, 28, dtype=torch.bool)
    bar[..., 4:24, 10:16] = True  # 6 px wide, 20 tall
    skeleton = thin(bar)
    rows = skeleton[0, 0].sum(dim=1)
    assert rows.max() == 1, rows  # one pixel wide
    middle = skeleton[0, 0, 8:20].nonzero()[:, 1]
    assert ((middle >= 12) & (middle <= 13)).all(), middle  # on the bar's centre line
    assert rows.sum() >= 14  # and most of its length


def test_thinning_keeps_a_loop_closed():
    skeleton = thin(ring())[0, 0]
    assert skeleton.sum() > 30
    # walk around the centre: every ray from it crosses the skeleton exactly once
    yy, xx = skeleton.nonzero().T.float()
    angles = torch.atan2(yy - 13.5, xx - 13.5)
    covered = torch.histc(angles, bins=24, min=-torch.pi, max=torch.pi)
    assert (covered > 0).all(), covered


@pytest.mark.parametrize("width", [1.5, 2.5])
def test_a_thin_pen_draws_strokes_of_its_width_and_keeps_loops(width):
    thick = ring().float() * 255  # a 4 px stroke
    drawn = redraw_thin_pen(thick, torch.tensor([width]))
    assert drawn.shape == thick.shape and drawn.dtype == torch.float32
    assert 0 <= drawn.min() and drawn.max() <= 255
    length = 2 * torch.pi * 7  # the loop's centre line, px
    measured = float(drawn.sum() / 255 / length)
    assert width - 0.4 < measured < width + 0.4, measured
    # closed: the centre stays dark and is cut off from the border by ink
    assert drawn[0, 0, 13:15, 13:15].max() < 10
    assert (drawn[0, 0, 13, :14] > 127).any() and (drawn[0, 0, 13, 14:] > 127).any()


def test_each_channel_is_redrawn_on_its_own():
    loop = ring().float() * 255
    both = redraw_thin_pen(torch.cat([loop, loop.flip(-1) * 0.6], dim=1), torch.tensor([2.0]))
    assert both.shape == (1, 2, 28, 28)
    torch.testing.assert_close(both[:, :1], redraw_thin_pen(loop, torch.tensor([2.0])))


def test_the_thin_pen_share_of_a_batch_is_redrawn():
    cfg = AugmentConfig(enabled=True, rotation_deg=0, scale=0, shear_deg=0, translate=0,
                        stroke=0, thin_pen=0.5)
    x = (ring().float() * 255).to(torch.uint8).expand(64, 1, 28, 28)
    out = Augmenter(cfg, seed=0)(x, step=3)
    ink = out.sum(dim=(1, 2, 3)) / x.float().sum(dim=(1, 2, 3))
    redrawn = ink < 0.8  # a 4 px loop redrawn at 1.2-2.5 px keeps under two thirds
    assert 16 < int(redrawn.sum()) < 48, ink
    assert torch.allclose(ink[~redrawn], torch.ones(1)), "the rest are unchanged"
    assert torch.equal(out, Augmenter(cfg, seed=0)(x, step=3))


@pytest.mark.parametrize("widths", [[2.0], [2.0, float("nan")], [2.0, 0.0], [2.0, -1.0]])
def test_pen_widths_must_be_one_per_image_finite_and_positive(widths):
    with pytest.raises(ValueError, match="widths must be 2 finite pen widths"):
        redraw_thin_pen(ring().float().expand(2, 1, 28, 28) * 255, torch.tensor(widths))


def test_thinning_takes_any_non_zero_mask():
    assert torch.equal(thin(ring().to(torch.uint8) * 255), thin(ring()))


@pytest.mark.parametrize("key, value", [("thin_pen", 1.5), ("pen_width", [2.5, 1.5]),
                                        ("pen_width", [0.1, 1.0]), ("pen_width", [2.0])])
def test_thin_pen_settings_out_of_range_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"data.augment.{key}"):
        AugmentConfig(**{key: value})
