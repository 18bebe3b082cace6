"""Batched, seeded augmentation on the tensor path."""

import torch

from mnist_lab.data.augment import Augmenter, change_stroke, random_affine_matrices
from mnist_lab.data.augment import AugmentConfig

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
