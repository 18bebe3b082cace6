"""The ConvNet family: the seed CNN generalised to any list of conv widths.

Seed network (``depth=[4, 8]``): conv 5x5 (padding 2) → ReLU → 2x2 max-pool,
twice, then a 512-unit fully connected layer → ReLU → dropout 0.5 → 10 outputs
→ log-softmax.

The loss is the negative log-likelihood of the log-probabilities the model
returns (``F.nll_loss``). The seed code applied ``nn.CrossEntropyLoss`` to these
log-softmax outputs; that gives the same value, because log-softmax is
idempotent: log_softmax(log_softmax(z)) = log_softmax(z).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn


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
        ValueError: the input is too small for ``len(depth)`` blocks.
    """

    def __init__(
        self,
        depth: Sequence[int],
        kernel_size: int,
        fc_width: int,
        dropout: float,
        in_shape: Sequence[int],
        num_classes: int,
        batch_norm: bool = False,
    ) -> None:
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
        if height < 1 or width < 1:
            raise ValueError(f"{len(depth)} conv blocks do not fit an input of {in_shape}")
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


MODELS = {"convnet": ConvNet}


def build_model(name: str, kwargs: dict[str, Any], in_shape: Sequence[int],
                num_classes: int) -> nn.Module:
    """Build a model by its config name.

    Args:
        name: a key of ``MODELS`` (the ``model.name`` config key).
        kwargs: the model's own arguments (the model config without ``name``).
        in_shape: (C, H, W) from the dataset. num_classes: from the dataset.

    Raises:
        ValueError: unknown ``name``.
    """
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name](in_shape=tuple(in_shape), num_classes=num_classes, **kwargs)
