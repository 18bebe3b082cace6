"""MNIST as tensors on the training device: reading, splits, batches.

The fast data path: the 70,000 images are read once with
``torchvision.datasets.MNIST`` (which parses the IDX files into one uint8 tensor;
no per-image PIL decoding), moved to the training device, and every batch is a
slice of those tensors taken through a per-epoch permutation. The raw files'
sizes, MD5 sums and labels are checked first (:mod:`mnist_lab.data.integrity`).

The seed protocol's split: validation = the first ``val_size`` (5,000) images of
the 10,000-image test set, test = the rest; all 60,000 training images train.
"""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torchvision.datasets import MNIST as TorchvisionMNIST

from ..config.schema import MNIST
from .normalization import Normalization
from .integrity import (DataError, check_labels, check_raw_files, fix_hint, gz_hint,
                        missing_files)

DOWNLOAD_TIMEOUT_S = 30.0


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


@dataclass(frozen=True)
class MNISTData:
    """The three splits on one device, with the class names and input normalisation."""

    train: Split
    val: Split
    test: Split
    classes: tuple
    norm: Normalization

    @property
    def in_shape(self) -> tuple:
        """(C, H, W) of one image, read from the data."""
        return tuple(self.train.images.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _download(root: Path) -> None:
    """Download MNIST into ``root`` with torchvision; on failure remove what it made."""
    raw = root / "MNIST" / "raw"
    # Every folder the attempt may make (torchvision makes raw/ and all its ancestors).
    created = [p for p in (*reversed(raw.absolute().parents), raw.absolute()) if not p.exists()]
    before = set(os.listdir(raw)) if raw.is_dir() else set()
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        TorchvisionMNIST(root=str(root), train=True, download=True)
    except Exception as error:  # torchvision raises RuntimeError, URLError, OSError...
        _remove_new(raw, before, created)
        reason = " ".join(str(error).split()).rstrip(" .")  # torchvision's is multi-line
        raise DataError(
            f"Could not download MNIST into '{root.resolve()}' (missing: "
            f"{', '.join(missing_files(root))}): {reason}. Nothing was left behind. "
            f"{fix_hint()}, e.g. copied from a machine with network access."
        ) from None
    finally:
        socket.setdefaulttimeout(old_timeout)


def _remove_new(raw: Path, before: set, created: list[Path]) -> None:
    """Remove the files and folders a failed download made, and nothing else."""
    if raw.is_dir():
        for name in set(os.listdir(raw)) - before:
            path = raw / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    for folder in reversed(created):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def load_mnist(root: str | Path, download: bool) -> tuple[Split, Split, tuple]:
    """Read MNIST's training and test sets from ``root`` as CPU tensors.

    Files present: read them and write nothing into ``root``. Files missing and
    ``download``: fetch them with torchvision. Then check each file's size and MD5
    (hashed once, cached outside ``root``: see :mod:`mnist_lab.data.integrity`), and
    the labels' range.

    Returns:
        (train, test, classes): 60,000 and 10,000 images as :class:`Split`,
        uint8 (N, 1, 28, 28); ``classes`` the class names ("0".."9").

    Raises:
        DataError: files missing and ``download`` false, or the download failed
            (the message names the root and the missing files); a file truncated,
            empty or damaged (wrong MD5); a label outside 0..9 (see :func:`read_split`).
    """
    root = Path(root)
    missing = missing_files(root)
    if missing and not download:
        raise DataError(
            f"MNIST not found in data root '{root.resolve()}' (missing MNIST/raw/"
            f"{', MNIST/raw/'.join(missing)}) and data.download=false. {fix_hint()}, "
            f"or set data.download=true to fetch them.{gz_hint(root, missing)}"
        )
    if missing:
        _download(root)
    check_raw_files(root / "MNIST" / "raw")
    splits = [read_split(root, train) for train in (True, False)]
    classes = tuple(name.split(" - ")[0] for name in TorchvisionMNIST.classes)
    train_split, test_split = splits
    assert train_split.images.shape[1:] == MNIST.in_shape, train_split.images.shape
    assert (len(train_split), len(test_split)) == (MNIST.num_train, MNIST.num_test)
    return train_split, test_split, classes


def read_split(root: Path, train: bool) -> Split:
    """One of MNIST's two sets (training or test) from ``root``, parsed by torchvision.

    Checks the labels, not the files' sizes or sums (:func:`load_mnist` does).

    Returns:
        :class:`Split`: images uint8 (N, 1, 28, 28), labels int64 (N,) in 0..9.

    Raises:
        DataError: a file cannot be parsed, or a label is outside 0..9 (the
            message names the label file, the first bad index and its value).
    """
    try:
        ds = TorchvisionMNIST(root=str(root), train=train, download=False)
    except (RuntimeError, ValueError, OSError) as error:
        raise DataError(
            f"The MNIST files in '{root.resolve() / 'MNIST' / 'raw'}' cannot be read "
            f"({' '.join(str(error).split())}): a file is truncated or damaged. Compare them "
            "with the published checksums (md5sum) or download them again."
        ) from None
    labels = ds.targets.to(torch.int64)
    label_file = Path(ds.raw_folder) / f"{'train' if train else 't10k'}-labels-idx1-ubyte"
    check_labels(labels, label_file, MNIST.num_classes)
    return Split(ds.data.unsqueeze(1).contiguous(), labels)


def split_test(test: Split, val_size: int) -> tuple[Split, Split]:
    """The seed split: (validation = test[:val_size], test = test[val_size:])."""
    if not 1 <= val_size < len(test):
        raise ValueError(f"val_size={val_size} must be in 1..{len(test) - 1}")
    val = Split(test.images[:val_size], test.labels[:val_size])
    rest = Split(test.images[val_size:], test.labels[val_size:])
    return val, rest


def pixel_stats(images: torch.Tensor) -> Normalization:
    """Mean and standard deviation of all pixels (scaled to [0, 1]) of ``images``.

    Computed in float64 over the whole training set (MNIST: mean 0.1307, std 0.3081).
    """
    x = images.to(torch.float64).div_(255.0)
    return Normalization(mean=float(x.mean()), std=float(x.std()))


def load_data(
    root: str | Path, download: bool, val_size: int, normalize: bool, device: torch.device
) -> MNISTData:
    """Load MNIST, split it and move every split to ``device``.

    Args:
        root: data root holding ``MNIST/raw/``.
        download: fetch the files when missing.
        val_size: validation images taken from the start of the test set.
        normalize: standardise inputs with the training set's mean and std
            (else inputs are pixel / 255).
        device: the training device.

    Raises:
        DataError: see :func:`load_mnist`.
    """
    train, test, classes = load_mnist(root, download)
    val, test = split_test(test, val_size)
    norm = pixel_stats(train.images) if normalize else Normalization()
    on = lambda s: Split(s.images.to(device), s.labels.to(device))  # noqa: E731
    return MNISTData(on(train), on(val), on(test), classes, norm)


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
