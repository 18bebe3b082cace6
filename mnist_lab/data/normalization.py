"""Model inputs: raw uint8 pixels to the normalised float32 tensors a model sees.

Torch only (no torchvision), so predicting and serving load fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Normalization:
    """Model input = (pixel / 255 - mean) / std, per image, float32.

    ``mean=0, std=1`` is the seed protocol (``ToTensor``: values in [0, 1]).
    """

    mean: float = 0.0
    std: float = 1.0

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) 0..255 → float32 (N, C, H, W), channels-last."""
        x = images.to(torch.float32).div_(255.0)
        if (self.mean, self.std) != (0.0, 1.0):
            x = x.sub_(self.mean).div_(self.std)
        return x.contiguous(memory_format=torch.channels_last)
