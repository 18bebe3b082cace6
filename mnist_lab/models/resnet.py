"""A small residual network for 28x28 images, from He et al.'s basic blocks.

Source: K. He, X. Zhang, S. Ren, J. Sun, "Deep residual learning for image
recognition", CVPR 2016: the CIFAR-10 networks of section 4.2 (6n+2 layers:
a 3x3 conv, then 3 stages of n basic blocks with 16, 32 and 64 filters on maps
of 32x32, 16x16 and 8x8, the first conv of stages 2 and 3 with stride 2, then
global average pooling, a 10-way fully connected layer and softmax).

A basic block (the paper's Fig. 2): conv 3x3 → BN → ReLU → conv 3x3 → BN, plus
the shortcut, then ReLU. BN (Ioffe & Szegedy 2015) follows every conv, before
the activation, and those convs have no bias (BN's shift replaces it).

Here, for 28x28 MNIST, the default is n = 1 (``blocks=1``, 8 layers) on maps
of 28x28, 14x14 and 7x7 (``widths=[16, 32, 64]``): 77,738 parameters, 160 in
the stem, 76,928 in the blocks (BN included), 650 in the output layer (checked
in tests/test_models.py); 9.3 million multiply-adds per image in the forward
pass (torch.utils.flop_counter).

Deviations from the paper:

- where a block changes the width or the size, the shortcut is a 1x1 conv with
  stride 2 followed by BN, the paper's option B (its CIFAR nets use option A,
  zero-padded identity shortcuts); other shortcuts are identities;
- the first conv (the stem) has a bias and no BN: it is the layer whose filters
  mnist_lab shows (:meth:`ResNet.conv_weights`), and with BN a bias would get
  no gradient; the input is standardised instead (``data.normalize=true`` in
  the preset ``experiment=resnet``);
- log-softmax output trained with the negative log-likelihood (the same as
  softmax with cross-entropy).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config.parts import schema_of
from ..errors import ConfigError


class BasicBlock(nn.Module):
    """He et al.'s basic block: float (N, C_in, H, W) → (N, C_out, ceil(H/s), ceil(W/s))."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:  # option B: projection
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet(nn.Module):
    """Stem conv, stages of basic blocks, global average pooling, linear, log-softmax.

    Args:
        in_shape: (C, H, W) of one input image, from the dataset.
        num_classes: number of outputs, from the dataset.
        widths: filters of each stage; stages after the first start with
            stride 2, halving the maps (28 → 14 → 7 → 4 ...). The stem has
            ``widths[0]`` filters.
        blocks: basic blocks per stage (the paper's n: 6n+2 layers for 3 stages).

    Raises:
        ConfigError: bad ``widths`` or ``blocks`` (see :meth:`check`).
    """

    def __init__(self, in_shape: Sequence[int], num_classes: int,
                 widths: Sequence[int] = (16, 32, 64), blocks: int = 1) -> None:
        self.check(in_shape, widths, blocks)
        super().__init__()
        self.stem = nn.Conv2d(in_shape[0], widths[0], 3, padding=1)
        layers, channels = [], widths[0]
        for stage, width in enumerate(widths):
            for block in range(blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(BasicBlock(channels, width, stride))
                channels = width
        self.blocks = nn.ModuleList(layers)
        self.out = nn.Linear(channels, num_classes)
        for m in self.modules():  # He et al. 2015 (the paper's ref. [13]) for the convs
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @staticmethod
    def check(in_shape: Sequence[int], widths: Sequence[int], blocks: int) -> None:
        """Check the arguments before anything is built or any data is read.

        Raises:
            ConfigError: ``widths`` empty, with a width < 1, or with more stages
                than halvings the input allows (key ``model.widths``);
                ``blocks`` < 1 (key ``model.blocks``).
        """
        size = min(in_shape[1:])
        stages = 1 + (size - 1).bit_length()  # halvings (rounding up) until 1x1, + 1
        if not widths or not all(int(w) == w and w >= 1 for w in widths):
            raise ConfigError("model.widths", list(widths),
                              "must be a non-empty list of positive filter counts, one per stage",
                              "Example: 'model.widths=[16,32,64]' (quoted: zsh expands brackets).")
        if len(widths) > stages:
            raise ConfigError("model.widths", list(widths),
                              f"has {len(widths)} stages, but a {size}x{size} input allows at "
                              f"most {stages} (each stage after the first halves the size)",
                              f"Use at most {stages} filter counts.")
        if blocks < 1:
            raise ConfigError("model.blocks", blocks, "must be >= 1 (basic blocks per stage)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float32 (N, C, H, W) → log-probabilities float32 (N, num_classes)."""
        x = F.relu(self.stem(x))
        for block in self.blocks:
            x = block(x)
        return F.log_softmax(self.out(x.mean(dim=(2, 3))), dim=1)

    @torch.no_grad()
    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The stem's output and each basic block's, after their ReLU.

        Args:
            x: float32 (N, C, H, W), normalised like the training inputs.

        Returns:
            float32 (N, widths[0], H, W), then one (N, C_b, H_b, W_b) per block
            (H_b: H halved, rounding up, once per stage before the block's).
        """
        maps = [F.relu(self.stem(x))]
        for block in self.blocks:
            maps.append(block(maps[-1]))
        return maps

    def conv_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """[(weight (widths[0], C, 3, 3), bias (widths[0],))] of the stem, live tensors.

        The blocks' convs have no bias (BN follows them) and are not listed.
        """
        return [(self.stem.weight, self.stem.bias)]


SCHEMAS = {"resnet": schema_of(ResNet)}
