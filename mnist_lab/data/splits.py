"""A dataset as tensors on the training device: its splits, their batches, their statistics.

The fast data path: every split is one uint8 tensor of images and one int64 tensor
of labels, moved to the training device once; every batch is a slice of those
tensors taken through a per-epoch permutation (no per-image decoding, no loader
workers).

The seed protocol's split of a test set (:func:`split_test`): validation = its first
``val_size`` (5,000) images, test = the rest; all training images train.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from .normalization import Normalization


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, known before it is read.

    Attributes:
        in_shape: (C, H, W) of one image.
        classes: class names, index = label.
        num_train: images of the training split (they set the steps of an epoch).
    """

    in_shape: tuple[int, int, int]
    classes: tuple[str, ...]
    num_train: int

    @property
    def num_classes(self) -> int:
        return len(self.classes)



@dataclass(frozen=True)
class Split:
    """One split of the data.

    Attributes:
        images: uint8 tensor (N, C, H, W), raw pixel values 0..255.
        labels: int64 tensor (N,), class indices.
    """

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> "Split":
        """The split on ``device``."""
        return Split(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class Data:
    """The three splits on one device, with what the data is and how inputs are normalised.

    Attributes:
        info: the dataset's description (input shape, class names, sizes).
        norm: the input normalisation (from the training split when asked for).
    """

    train: Split
    val: Split
    test: Split
    info: DatasetInfo
    norm: Normalization

    @property
    def in_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return self.info.in_shape

    @property
    def classes(self) -> tuple[str, ...]:
        return self.info.classes

    @property
    def num_classes(self) -> int:
        return len(self.info.classes)


def split_test(test: Split, val_size: int) -> tuple[Split, Split]:
    """The seed split: (validation = test[:val_size], test = test[val_size:]).

    Raises:
        ValueError: ``val_size`` leaves no image for one of the two.
    """
    if not 1 <= val_size < len(test):
        raise ValueError(f"val_size={val_size} must be in 1..{len(test) - 1}")
    val = Split(test.images[:val_size], test.labels[:val_size])
    rest = Split(test.images[val_size:], test.labels[val_size:])
    return val, rest


def pixel_stats(images: torch.Tensor) -> Normalization:
    """Mean and standard deviation of each channel's pixels (scaled to [0, 1]) of ``images``.

    ``images``: uint8 (N, C, H, W). Computed in float64 over the whole training split
    (MNIST: mean 0.1307, std 0.3081).
    """
    x = images.to(torch.float64).div_(255.0).transpose(0, 1).flatten(1)
    return Normalization(mean=tuple(float(m) for m in x.mean(dim=1)),
                         std=tuple(float(s) for s in x.std(dim=1)))


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    """Batches per epoch; the last, smaller batch is kept (60,000 / 64 → 938)."""
    return -(-num_images // batch_size)


def epoch_order(num_images: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    """The order of the training images in ``epoch``: a pure function of (seed, epoch).

    A resumed run therefore sees exactly the batches of an uninterrupted one.
    The two numbers are mixed with NumPy's ``SeedSequence`` into the seed of a
    torch generator.

    Returns:
        int64 tensor (num_images,) on ``device``, a permutation of 0..num_images-1.
    """
    state = np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]
    generator = torch.Generator().manual_seed(int(state) & (2**63 - 1))
    return torch.randperm(num_images, generator=generator).to(device)


def batches(
    split: Split, batch_size: int, seed: int, epoch: int, start: int = 0
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield the batches of one epoch from batch index ``start`` on.

    Yields:
        (images uint8 (B, C, H, W), labels int64 (B,)) on the split's device;
        B = batch_size except for the last, smaller batch.
    """
    order = epoch_order(len(split), seed, epoch, split.labels.device)
    for begin in range(start * batch_size, len(split), batch_size):
        index = order[begin : begin + batch_size]
        yield split.images[index], split.labels[index]
