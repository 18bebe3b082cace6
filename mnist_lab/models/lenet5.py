"""LeNet-5 as published for 28x28 digits.

Source: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning
applied to document recognition", Proc. IEEE 86(11), 1998, section II.B, Table I
and Appendix A. The paper's layers (trainable parameters in brackets):

- input: 32x32, the 28x28 digit field centred in it (here: C1 pads 2 pixels);
- C1: 6 feature maps 28x28, 5x5 convolution (156);
- S2: 6 maps 14x14; each unit adds its 2x2 inputs, multiplies the sum by a
  trainable coefficient and adds a trainable bias, per map (12);
- C3: 16 maps 10x10, 5x5 convolution over the subsets of S2's maps given by
  Table I (1,516 = 60 connected 5x5 kernels + 16 biases);
- S4: 16 maps 5x5, as S2 (32);
- C5: 120 maps 1x1, 5x5 convolution over all of S4 (48,120);
- F6: 84 units, fully connected (10,164);
- output: 10 Euclidean RBF units over F6 with fixed +-1 codes (7x12 bitmaps).

Every unit up to F6 applies the scaled tanh f(a) = 1.7159 tanh(2a/3) (Appendix
A) to its weighted sum; the weights start uniform in +-2.4/F_i, F_i the unit's
fan-in (section II.B, note on initialisation).

Deviations from the paper:

- output: a trained fully connected layer 84 → 10 with log-softmax, trained
  with the negative log-likelihood (``F.nll_loss``) like every mnist_lab
  model, instead of RBF units with fixed codes and the paper's MAP criterion
  (its eq. 9); 850 parameters instead of 840 fixed ones;
- padding: C1 pads the 28x28 image by 2 pixels repeating its border
  (``padding_mode="replicate"``); MNIST's border is background, so the digit
  sits in a 32x32 field of background, as in the paper, whatever the input
  normalisation;
- C3's Table I is a fixed 0/1 mask on a full (16, 6, 5, 5) weight; the 900
  unconnected entries are zero from the start and get no gradient, so they
  stay zero (``c3_table=false`` trains them: full connections);
- biases start uniform in +-2.4/F_i like the weights (the paper does not say);
- training (SGD with momentum, the preset ``experiment=lenet5``) instead of
  the paper's stochastic diagonal Levenberg-Marquardt for 20 passes; inputs are
  standardised to mean 0, variance 1 (``data.normalize=true``) where the paper
  maps background to -0.1 and ink to 1.175 for the same purpose.

Trainable parameters: 156 + 12 + 1,516 + 32 + 48,120 + 10,164 + 850 = 60,850
(the tensors hold 61,750 numbers: 900 are C3's masked zeros).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config.parts import schema_of
from ..errors import ConfigError

# Table I: the S2 maps each C3 map is connected to. 6 maps see 3 neighbouring maps,
# 6 see 4 neighbouring, 3 see 4 non-neighbouring, 1 sees all 6 (60 connections).
C3_TABLE = ((0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
            (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
            (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5), (0, 1, 2, 3, 4, 5))
TANH_A, TANH_S = 1.7159, 2.0 / 3.0  # f(a) = A tanh(S a), Appendix A
SIZE = 28  # the input side LeNet-5's layers are sized for: C5 sees one 5x5 map


def scaled_tanh(a: torch.Tensor) -> torch.Tensor:
    """LeNet-5's squashing function 1.7159 tanh(2a/3): f(1) = 1, f(-1) = -1."""
    return TANH_A * torch.tanh(TANH_S * a)


def c3_mask() -> torch.Tensor:
    """Table I as a float32 (16, 6, 1, 1) mask: 1 where a C3 map sees an S2 map."""
    mask = torch.zeros(16, 6, 1, 1)
    for out_map, in_maps in enumerate(C3_TABLE):
        mask[out_map, list(in_maps)] = 1.0
    return mask


class Subsampling(nn.Module):
    """S2/S4: per map, (sum of each 2x2 block) * coefficient + bias; stride 2.

    float (N, C, H, W) → (N, C, H // 2, W // 2), before the squashing function.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.empty(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        block_sum = 4.0 * F.avg_pool2d(x, 2)
        return block_sum * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998) with a log-softmax output; see the module docstring.

    Args:
        in_shape: (C, H, W) of one input image, from the dataset; H, W >= 28
            (28: C5's maps are 1x1 as in the paper; larger: F6 sees all of them).
        num_classes: number of outputs, from the dataset.
        c3_table: connect C3 to S2 as Table I of the paper (true) or fully.

    Raises:
        ConfigError: an input that is not 28x28 (see :meth:`check`).
    """

    def __init__(self, in_shape: Sequence[int], num_classes: int,
                 c3_table: bool = True) -> None:
        self.check(in_shape)
        super().__init__()
        channels, height, width = in_shape
        self.c1 = nn.Conv2d(channels, 6, 5, padding=2, padding_mode="replicate")
        self.s2 = Subsampling(6)
        self.c3 = nn.Conv2d(6, 16, 5)
        self.s4 = Subsampling(16)
        self.c5 = nn.Conv2d(16, 120, 5)
        c5_size = [(s // 2 - 4) // 2 - 4 for s in (height, width)]
        self.f6 = nn.Linear(120 * c5_size[0] * c5_size[1], 84)
        self.out = nn.Linear(84, num_classes)
        self.register_buffer("c3_mask", c3_mask() if c3_table else torch.ones(16, 6, 1, 1))
        self.reset_parameters()

    @staticmethod
    def check(in_shape: Sequence[int]) -> None:
        """Check the input size before anything is built or any data is read.

        Raises:
            ConfigError: H or W not 28 (key ``model``): LeNet-5's layers are sized for
                28x28 digits (C5 must see one 5x5 map, F6 its 120 outputs).
        """
        if tuple(in_shape[1:]) != (SIZE, SIZE):
            raise ConfigError("model", "lenet5", f"LeNet-5 takes {SIZE}x{SIZE} images by design; "
                              f"the data's are {in_shape[1]}x{in_shape[2]}",
                              "Pick another model, e.g. model=convnet or model=mlp.")

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The paper's initialisation: uniform in +-2.4/F_i, F_i the unit's fan-in.

        C3's fan-in is that of each map's connected inputs (3, 4 or 6 maps x 25);
        its unconnected weights are set to zero.
        """
        c3_fan_in = self.c3_mask.sum(dim=(1, 2, 3)) * 25  # (16,): 75, 100 or 150
        fan_ins = {self.c1: 25.0 * self.c1.in_channels, self.s2: 4.0, self.c3: c3_fan_in,
                   self.s4: 4.0, self.c5: 25.0 * 16, self.f6: float(self.f6.in_features),
                   self.out: 84.0}
        for layer, fan_in in fan_ins.items():
            bound = 2.4 / torch.as_tensor(fan_in)  # scalar, or (16,): one per C3 map
            for p in (layer.weight, layer.bias):
                p.uniform_(-1.0, 1.0).mul_(bound.view(-1, *[1] * (p.dim() - 1)))
        self.c3.weight.mul_(self.c3_mask)

    def _c3(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.c3.weight * self.c3_mask, self.c3.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float32 (N, C, H, W) → log-probabilities float32 (N, num_classes)."""
        x = scaled_tanh(self.s2(scaled_tanh(self.c1(x))))
        x = scaled_tanh(self.s4(scaled_tanh(self._c3(x))))
        x = scaled_tanh(self.f6(scaled_tanh(self.c5(x)).flatten(1)))
        return F.log_softmax(self.out(x), dim=1)

    @torch.no_grad()
    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """C1, C3 and C5 after the squashing function, before subsampling.

        Args:
            x: float32 (N, C, 28, 28), normalised like the training inputs.

        Returns:
            float32 (N, 6, 28, 28), (N, 16, 10, 10), (N, 120, 1, 1) for 28x28
            inputs; values in (-1.7159, 1.7159).
        """
        c1 = scaled_tanh(self.c1(x))
        c3 = scaled_tanh(self._c3(scaled_tanh(self.s2(c1))))
        c5 = scaled_tanh(self.c5(scaled_tanh(self.s4(c3))))
        return [c1, c3, c5]

    def conv_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight (C_out, C_in, 5, 5), bias (C_out,)) of C1, C3 and C5, live tensors.

        C3's weight is zero where Table I leaves a C3 map unconnected.
        """
        return [(conv.weight, conv.bias) for conv in (self.c1, self.c3, self.c5)]


SCHEMAS = {"lenet5": schema_of(LeNet5)}
