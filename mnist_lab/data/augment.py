"""Data augmentation on the fast tensor path: batched, on the training device, seeded.

Each training image gets its own random affine transform (rotation, zoom,
shear, translation; applied with ``F.affine_grid`` + ``F.grid_sample``, the
batched form of torchvision's ``functional.affine``, which takes one set of
parameters per call) and, with probability ``stroke``, a thicker or thinner
stroke (grey-level dilation or erosion with a 2x2 or 3x3 max-filter). With
probability ``thin_pen`` an image is first redrawn as a thin pen would write it: its
centre lines (Zhang-Suen thinning) traced with an even pen ``pen_width`` px wide
(:func:`redraw_thin_pen`), the style of ballpoints and fine-liners that MNIST's
felt-tip strokes lack.

The random numbers of a step come from a generator seeded with (seed, step),
so a resumed run draws exactly the augmentations an uninterrupted one draws.
Off by default: the seed protocol has no augmentation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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
    thin_pen: float = 0.0  # probability of a redraw of the centre lines with a thin pen
    pen_width: list[float] = field(default_factory=lambda: [1.2, 2.5])  # px, drawn uniformly

    def __post_init__(self) -> None:
        for key, ok, allowed in (
                ("rotation_deg", 0 <= self.rotation_deg <= 180, "in [0, 180] degrees"),
                ("scale", 0 <= self.scale < 1, "in [0, 1)"),
                ("shear_deg", 0 <= self.shear_deg < 90, "in [0, 90) degrees"),
                ("translate", 0 <= self.translate <= 0.5, "in [0, 0.5] (a fraction of the "
                                                          "image size)"),
                ("stroke", 0 <= self.stroke <= 1, "a probability in [0, 1]"),
                ("thin_pen", 0 <= self.thin_pen <= 1, "a probability in [0, 1]"),
                ("pen_width", len(self.pen_width) == 2
                 and 0.5 <= self.pen_width[0] <= self.pen_width[1] <= 6,
                 "[low, high] in px of the 28x28 image, 0.5 <= low <= high <= 6")):
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


THIN_SCALE = 2  # the digit is thinned and redrawn at 2x (56x56), then area-averaged to 28x28


def _zhang_suen_tables() -> torch.Tensor:
    """bool (2, 256): whether a foreground pixel goes in sub-iteration 0 or 1 of Zhang-Suen
    thinning, by the code of its 8 neighbours (bit i: neighbour P(i+2), clockwise from
    north, as :data:`_NEIGHBOUR_BITS` weighs them)."""
    table = torch.zeros(2, 256, dtype=torch.bool)
    for code in range(256):
        p = [(code >> i) & 1 for i in range(8)]  # P2..P9
        count = sum(p)
        transitions = sum(p[i] == 0 and p[(i + 1) % 8] == 1 for i in range(8))
        base = 2 <= count <= 6 and transitions == 1
        p2, p4, p6, p8 = p[0], p[2], p[4], p[6]
        table[0, code] = base and p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
        table[1, code] = base and p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
    return table


_DELETABLE = _zhang_suen_tables()
# 3x3 weights giving each pixel its neighbours' code: P9 P2 P3 / P8 . P4 / P7 P6 P5
_NEIGHBOUR_BITS = torch.tensor([[128, 1, 2], [64, 0, 4], [32, 16, 8]],
                               dtype=torch.float32).view(1, 1, 3, 3)


def thin(mask: torch.Tensor, max_passes: int = 30) -> torch.Tensor:
    """Skeletons of a batch of binary images: bool (N, 1, H, W) (any dtype: non-zero is
    foreground) -> bool (N, 1, H, W), 8-connected and one pixel wide but for a few 2x2
    knots; a speck of 2x2 px or less vanishes, as Zhang-Suen has it.

    T. Y. Zhang and C. Y. Suen, "A fast parallel algorithm for thinning digital
    patterns", Communications of the ACM 27(3), 1984: two sub-iterations remove the
    boundary pixels with 2..6 neighbours and one 0 -> 1 transition around them, until
    none changes (or after ``max_passes`` pairs). Batched: one 3x3 convolution codes every
    pixel's neighbours, a 256-entry table says which go.
    """
    m = (mask != 0).to(torch.float32)
    bits, deletable = _NEIGHBOUR_BITS.to(m.device), _DELETABLE.to(m.device)
    for _ in range(max_passes):
        changed = False
        for sub in (0, 1):
            code = F.conv2d(m, bits, padding=1).round_().long()
            gone = (m > 0) & deletable[sub][code]
            if gone.any():
                m = m.masked_fill(gone, 0.0)
                changed = True
        if not changed:
            break
    return m > 0


def redraw_thin_pen(images: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    """Digits redrawn with a thin pen: their centre lines traced ``widths`` px wide.

    The image is enlarged THIN_SCALE times (bicubic), cut at 128 and thinned
    (:func:`thin`); every pixel within half a pen width of the skeleton is inked, with an
    anti-aliased edge one pixel wide at the enlarged size, and the drawing area-averaged
    back to the input size. The hard photos' generator (``tests/hard_images.py``) redraws
    its thin-pen digits in a similar way with its own code (thinned at 4x, the centre
    lines drawn as joined segments, pens 1 to 2 px at photo scale).

    Args:
        images: float32 (N, C, H, W) in [0, 255], ink bright on a dark background.
        widths: (N,) pen widths in px of the input image, finite and > 0.
    Returns:
        float32 (N, C, H, W) in [0, 255].
    Raises:
        ValueError: ``widths`` not of shape (N,), or a width not finite and > 0.
    """
    widths = torch.as_tensor(widths, dtype=torch.float32, device=images.device)
    if widths.shape != (len(images),) or not bool(torch.isfinite(widths).all()) \
            or bool((widths <= 0).any()):
        raise ValueError(f"redraw_thin_pen: widths must be {len(images)} finite pen widths "
                         f"> 0 px, one per image; got {widths.tolist()}")
    images = images.to(torch.float32)
    if len(images) == 0:
        return images
    n, c, h, w = images.shape
    k = THIN_SCALE
    big = F.interpolate(images.reshape(n * c, 1, h, w), scale_factor=k, mode="bicubic",
                        align_corners=False)
    skeleton = thin(big >= 128).to(torch.float32)
    radius = widths.repeat_interleave(c).view(-1, 1, 1, 1) * k / 2
    reach = math.ceil(float(radius.max()) + 0.5)
    padded = F.pad(skeleton, (reach,) * 4)
    ink = torch.zeros_like(skeleton)
    for dy in range(-reach, reach + 1):  # ink = max over offsets of skeleton x pen coverage
        for dx in range(-reach, reach + 1):
            pen = (radius + 0.5 - math.hypot(dy, dx)).clamp_(0, 1)  # px at the enlarged size
            if pen.any():
                shifted = padded[..., reach + dy:reach + dy + k * h, reach + dx:reach + dx + k * w]
                ink = torch.maximum(ink, shifted * pen)
    return (F.avg_pool2d(ink, k) * 255).reshape(n, c, h, w)


class Augmenter:
    """Random thin-pen redraws, affine transforms and stroke changes for training batches.

    With ``thin_pen`` > 0 the thin pen's draws come first, so the affine and stroke draws
    of a step differ from those of the same seed without it.

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
        if self.cfg.thin_pen > 0:
            x = self._thin_pen(x, g)
        theta = random_affine_matrices(len(x), self.cfg, g, images.device)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.cfg.stroke > 0:
            x = change_stroke(x, self.cfg.stroke, g)
        return x.clamp_(0, 255)

    def _thin_pen(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """float32 (N, C, H, W): a ``thin_pen`` share of the images redrawn thin."""
        pick = torch.rand(len(x), generator=g, device=x.device) < self.cfg.thin_pen
        low, high = self.cfg.pen_width
        widths = low + (high - low) * torch.rand(len(x), generator=g, device=x.device)
        x = x.clone()
        x[pick] = redraw_thin_pen(x[pick], widths[pick])
        return x
