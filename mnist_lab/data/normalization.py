"""Model inputs: raw uint8 pixels to the normalised float32 tensors a model sees.

Torch only (no torchvision), so predicting and serving load fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass(frozen=True)
class Normalization:
    """Model input = (pixel / 255 - mean[c]) / std[c] for channel c, float32.

    ``mean`` and ``std`` hold one value per channel, or one for all; ``mean=0,
    std=1`` is the seed protocol (``ToTensor``: values in [0, 1]).
    """

    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _per_channel(self.mean))
        object.__setattr__(self, "std", _per_channel(self.std))

    @property
    def is_identity(self) -> bool:
        """Pixels / 255 only."""
        return set(self.mean) == {0.0} and set(self.std) == {1.0}

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) 0..255 → float32 (N, C, H, W), channels-last."""
        x = images.to(torch.float32).div_(255.0)
        if len(self.mean) == 1 and not self.is_identity:
            x = x.sub_(self.mean[0]).div_(self.std[0])
        elif not self.is_identity:
            shape = (1, len(self.mean), 1, 1)
            x = x.sub_(torch.tensor(self.mean, device=x.device).view(shape)).div_(
                torch.tensor(self.std, device=x.device).view(shape))
        return x.contiguous(memory_format=torch.channels_last)


def _per_channel(value: float | Sequence[float]) -> tuple[float, ...]:
    """A number or a sequence of numbers as a tuple of floats (checkpoint format 2 saved one)."""
    return (float(value),) if isinstance(value, (int, float)) else tuple(float(v) for v in value)
