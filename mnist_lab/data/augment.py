"""Data augmentation on the fast tensor path: batched, on the training device, seeded.

Each training image gets its own random affine transform (rotation, zoom,
shear, translation; applied with ``F.affine_grid`` + ``F.grid_sample``, the
batched form of torchvision's ``functional.affine``, which takes one set of
parameters per call) and, with probability ``stroke``, a thicker or thinner
stroke (grey-level dilation or erosion with a 2x2 or 3x3 max-filter).

The random numbers of a step come from a generator seeded with (seed, step),
so a resumed run draws exactly the augmentations an uninterrupted one draws.
Off by default: the seed protocol has no augmentation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError


@dataclass
class AugmentConfig:
    """``data.augment``: random affine and stroke-thickness augmentation (off in the seed
    protocol). Angles in degrees, sizes as fractions of the image size.

    Raises:
        ConfigError: a value outside its range (on construction).
    """

    enabled: bool = False
    rotation_deg: float = 15.0  # rotation drawn uniformly in [-r, r] degrees
    scale: float = 0.15  # zoom drawn uniformly in [1 - s, 1 + s]
    shear_deg: float = 10.0  # shear drawn uniformly in [-s, s] degrees
    translate: float = 0.1  # shift drawn uniformly in [-t, t] of the image size
    stroke: float = 0.5  # probability of a thicker or thinner stroke (dilate / erode)

    def __post_init__(self) -> None:
        for key, ok, allowed in (
                ("rotation_deg", 0 <= self.rotation_deg <= 180, "in [0, 180] degrees"),
                ("scale", 0 <= self.scale < 1, "in [0, 1)"),
                ("shear_deg", 0 <= self.shear_deg < 90, "in [0, 90) degrees"),
                ("translate", 0 <= self.translate <= 0.5, "in [0, 0.5] (a fraction of the "
                                                          "image size)"),
                ("stroke", 0 <= self.stroke <= 1, "a probability in [0, 1]")):
            if not ok:
                raise ConfigError(f"data.augment.{key}", getattr(self, key), f"must be {allowed}")


def _generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    state = np.random.SeedSequence([seed, step, 0xA06]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(state) & (2**63 - 1))


def _uniform(n: int, bound: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    """n values drawn uniformly from [-bound, bound] (float32)."""
    return (torch.rand(n, generator=g, device=device) * 2 - 1) * bound


def random_affine_matrices(n: int, cfg: AugmentConfig, g: torch.Generator,
                           device: torch.device) -> torch.Tensor:
    """float32 (n, 2, 3) sampling matrices for ``F.affine_grid`` (output → input coords).

    The forward transform is rotation · shear · zoom, then a shift; sampling
    needs its inverse. Coordinates are normalised to [-1, 1], so a shift of a
    fraction t of the image is 2t.
    """
    angle = torch.deg2rad(_uniform(n, cfg.rotation_deg, g, device))
    shear = torch.deg2rad(_uniform(n, cfg.shear_deg, g, device))
    zoom = 1 + _uniform(n, cfg.scale, g, device)
    shift = _uniform(2 * n, 2 * cfg.translate, g, device).reshape(n, 2)
    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
    rotation = torch.stack([cos, -sin, sin, cos], dim=1).reshape(n, 2, 2)
    shear_m = torch.stack([torch.ones_like(tan), tan, torch.zeros_like(tan),
                           torch.ones_like(tan)], dim=1).reshape(n, 2, 2)
    forward = rotation @ shear_m * zoom[:, None, None]
    inverse = torch.linalg.inv(forward)
    offset = -(inverse @ shift.unsqueeze(2))
    return torch.cat([inverse, offset], dim=2)


def change_stroke(x: torch.Tensor, probability: float, g: torch.Generator) -> torch.Tensor:
    """Thicken (dilate) or thin (erode) the ink of randomly chosen images.

    Args:
        x: float32 (N, C, H, W), ink bright on a dark background.
        probability: chance that an image changes; half of those thicken.
    Returns:
        float32 (N, C, H, W), same range.
    """
    n = x.shape[0]
    pick = torch.rand(n, generator=g, device=x.device)
    thicker = (pick < probability / 2).view(n, 1, 1, 1)
    thinner = ((pick >= probability / 2) & (pick < probability)).view(n, 1, 1, 1)
    # A 2x2 window (padded to keep the size) changes a stroke by about one pixel.
    dilated = F.max_pool2d(F.pad(x, (0, 1, 0, 1)), 2, stride=1)
    eroded = -F.max_pool2d(F.pad(-x, (1, 0, 1, 0), value=-math.inf), 2, stride=1)
    return torch.where(thicker, dilated, torch.where(thinner, eroded, x))


class Augmenter:
    """Random affine and stroke changes for training batches.

    Args:
        cfg: the ``data.augment`` settings.
        seed: the run's seed; with the step it fixes every random draw.
    """

    def __init__(self, cfg: AugmentConfig, seed: int) -> None:
        self.cfg = cfg
        self.seed = seed

    def __call__(self, images: torch.Tensor, step: int) -> torch.Tensor:
        """uint8 (N, C, H, W) → float32 (N, C, H, W) in [0, 255], augmented."""
        g = _generator(self.seed, step, images.device)
        x = images.to(torch.float32)
        theta = random_affine_matrices(len(x), self.cfg, g, images.device)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.cfg.stroke > 0:
            x = change_stroke(x, self.cfg.stroke, g)
        return x.clamp_(0, 255)
