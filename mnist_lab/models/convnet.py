"""ConvNet: the seed CNN, generalised to any list of conv widths (``model=convnet``).

Seed network (``depth=[4, 8]``): conv 5x5 (padding 2) → ReLU → 2x2 max-pool,
twice, then a 512-unit fully connected layer → ReLU → dropout 0.5 → 10 outputs
→ log-softmax.

The loss is the negative log-likelihood of the log-probabilities the model
returns (``F.nll_loss``). The seed code applied ``nn.CrossEntropyLoss`` to these
log-softmax outputs; that gives the same value, because log-softmax is
idempotent: log_softmax(log_softmax(z)) = log_softmax(z).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config.parts import schema_of
from ..errors import ConfigError


class ConvNet(nn.Module):
    """Conv blocks, then a fully connected layer with dropout, then log-softmax.

    Args:
        depth: output channels of each conv block, e.g. ``[4, 8]``; each block
            halves the spatial size (2x2 max-pool, rounding down).
        kernel_size: odd filter size; padding ``kernel_size // 2`` keeps the size.
        fc_width: units of the fully connected layer.
        dropout: probability of zeroing a unit of the fully connected layer.
        in_shape: (C, H, W) of one input image, taken from the dataset.
        num_classes: number of outputs, taken from the dataset.
        batch_norm: batch normalisation after each conv (not in the seed).

    Raises:
        ConfigError: a value out of range (see :meth:`check`), before anything is built.
    """

    @staticmethod
    def check(in_shape: Sequence[int], depth: Sequence[int], kernel_size: int, fc_width: int,
              dropout: float) -> None:
        """Check the arguments before anything is built; the first bad one raises.

        Each block halves the spatial size (rounding down) and at least 1 pixel
        must remain, so a 28x28 input allows 4 blocks (28 → 14 → 7 → 3 → 1).

        Raises:
            ConfigError: naming the ``model.*`` key, the value and the allowed range.
        """
        depth, size = list(depth), min(in_shape[1:])
        if not (depth and all(c >= 1 for c in depth)):
            raise ConfigError("model.depth", depth, "must be a non-empty list of positive "
                              "channel counts, one per conv block",
                              "Example: 'model.depth=[4,8]' (quoted: shells such as zsh "
                              "expand brackets).")
        blocks = int(math.floor(math.log2(size)))
        if len(depth) > blocks:
            raise ConfigError("model.depth", depth, f"has {len(depth)} conv blocks, but a "
                              f"{size}x{size} input allows at most {blocks} (each block halves "
                              "the size)", f"Use at most {blocks} channel counts.")
        if not (1 <= kernel_size <= size and kernel_size % 2 == 1):
            raise ConfigError("model.kernel_size", kernel_size,
                              f"must be an odd number from 1 to {size} (padding keeps the size)")
        if fc_width < 1:
            raise ConfigError("model.fc_width", fc_width, "must be >= 1")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError("model.dropout", dropout,
                              "must be in [0, 1) (the probability of zeroing a unit)")

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        depth: Sequence[int] = (4, 8),
        kernel_size: int = 5,
        fc_width: int = 512,
        dropout: float = 0.5,
        batch_norm: bool = False,
    ) -> None:
        self.check(in_shape, depth, kernel_size, fc_width, dropout)
        super().__init__()
        channels, height, width = in_shape
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for out_channels in depth:
            self.convs.append(
                nn.Conv2d(channels, out_channels, kernel_size, padding=kernel_size // 2)
            )
            self.norms.append(nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity())
            channels, height, width = out_channels, height // 2, width // 2
        self.fc = nn.Linear(channels * height * width, fc_width)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(fc_width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float32 (N, C, H, W) → log-probabilities float32 (N, num_classes)."""
        for conv, norm in zip(self.convs, self.norms):
            # Pooling before the ReLU gives the same values and gradients as the
            # seed's ReLU → pool (ReLU is monotonic) on a quarter of the elements.
            x = F.relu(F.max_pool2d(norm(conv(x)), 2))
        x = self.dropout(F.relu(self.fc(x.flatten(1))))
        return F.log_softmax(self.out(x), dim=1)

    @torch.no_grad()
    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of each conv layer after ReLU, before pooling.

        As the seed's ``retrieve_features``. Runs without gradients, in whatever
        mode (train/eval) the model is in.

        Args:
            x: float32 (N, C, H, W), normalised like the training inputs.

        Returns:
            One float32 tensor per conv block, (N, depth[i], H_i, W_i) with
            H_0 = H and H_{i+1} = H_i // 2.
        """
        maps = []
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(conv(x)))
            maps.append(x)
            x = F.max_pool2d(x, 2)
        return maps

    def conv_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight (C_out, C_in, k, k), bias (C_out,)) of each conv layer, live tensors."""
        return [(conv.weight, conv.bias) for conv in self.convs]


ConvNetConfig = schema_of(ConvNet)
SCHEMAS = {"convnet": ConvNetConfig}
