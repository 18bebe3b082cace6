"""A multilayer perceptron: the baseline without convolutions.

The image is flattened to C*H*W inputs (784 for MNIST), then each hidden layer
is fully connected → ReLU → dropout, and the output layer gives one
log-probability per class (log-softmax; the loss is ``F.nll_loss``). With
``hidden=[]`` it is multinomial logistic regression.

The default, ``hidden=[256, 128]``, has 784*256 + 256 + 256*128 + 128 + 128*10 + 10
= 235,146 parameters (checked in tests/test_models.py).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config.parts import schema_of
from ..errors import ConfigError


class MLP(nn.Module):
    """Fully connected layers with ReLU and dropout, then log-softmax.

    Args:
        in_shape: (C, H, W) of one input image, taken from the dataset.
        num_classes: number of outputs, taken from the dataset.
        hidden: units of each hidden layer, in order; ``[]``: none.
        dropout: probability of zeroing a hidden unit during training.

    Raises:
        ConfigError: a bad ``hidden`` or ``dropout`` (see :meth:`check`).
    """

    def __init__(self, in_shape: Sequence[int], num_classes: int,
                 hidden: Sequence[int] = (256, 128), dropout: float = 0.2) -> None:
        self.check(hidden, dropout)
        super().__init__()
        widths = [math.prod(in_shape), *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(widths[-1], num_classes)

    @staticmethod
    def check(hidden: Sequence[int], dropout: float) -> None:
        """Check the arguments before anything is built or any data is read.

        Raises:
            ConfigError: ``hidden`` holds a width < 1 (key ``model.hidden``);
                ``dropout`` outside [0, 1) (key ``model.dropout``).
        """
        if not all(int(w) == w and w >= 1 for w in hidden):
            raise ConfigError("model.hidden", list(hidden),
                              "must be a list of positive layer widths ([] for no hidden layer)",
                              "Example: 'model.hidden=[256,128]' (quoted: zsh expands brackets).")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError("model.dropout", dropout,
                              "must be in [0, 1) (the probability of zeroing a unit)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float32 (N, C, H, W) → log-probabilities float32 (N, num_classes)."""
        x = x.flatten(1)
        for layer in self.hidden:
            x = self.dropout(F.relu(layer(x)))
        return F.log_softmax(self.out(x), dim=1)


SCHEMAS = {"mlp": schema_of(MLP)}
