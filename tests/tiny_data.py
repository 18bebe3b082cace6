"""A tiny MNIST for fast tests: the first 2,000 training and 1,000 test images of the
real files, written in MNIST's own format (IDX), checked against their own sizes and
MD5s as the real ones are against the published ones (injected by :func:`write_tiny`).

``data=tiny`` (tests/conf/data/tiny.yaml) trains on it: validation = its first 500
test images, test = the other 500. Real digits, the real loading code, a tenth of
the evaluation cost."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import torch
from torchvision.datasets import MNIST as TorchvisionMNIST

from mnist_lab.data.datasets import MNIST
from mnist_lab.data.integrity import Expected
from mnist_lab.data.splits import DatasetInfo

TRAIN, TEST = 2000, 1000


class TinyMNIST(MNIST):
    """MNIST's first 2,000 training and 1,000 test images (see the module docstring)."""

    files: dict = {}  # the written files' sizes and MD5s (write_tiny)
    num_test = TEST

    def __init__(self, root: str, download: bool = False, val_size: int = 500,
                 normalize: bool = False) -> None:
        super().__init__(root, download, val_size, normalize)
        self.info = DatasetInfo(self.info.in_shape, self.info.classes, TRAIN)


def _idx(path: Path, data: torch.Tensor) -> None:
    """``data`` (uint8) as an IDX file: magic 0x0800 + dims, the dims (big-endian), bytes."""
    header = struct.pack(">I", 0x0800 + data.dim()) + struct.pack(f">{data.dim()}I",
                                                                  *data.shape)
    path.write_bytes(header + data.contiguous().numpy().tobytes())


def write_tiny(real_root: Path, root: Path) -> Path:
    """Write the tiny files into ``root/MNIST/raw`` and inject their sizes and MD5s."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, n, prefix in ((True, TRAIN, "train"), (False, TEST, "t10k")):
        full = TorchvisionMNIST(str(real_root), train=split, download=False)
        _idx(raw / f"{prefix}-images-idx3-ubyte", full.data[:n])
        _idx(raw / f"{prefix}-labels-idx1-ubyte", full.targets[:n].to(torch.uint8))
    TinyMNIST.files = {p.name: Expected(p.stat().st_size, hashlib.md5(p.read_bytes()).hexdigest())
                       for p in sorted(raw.iterdir())}
    return root
