"""Datasets as parts: each a class named by ``data._target_``, giving the train,
validation and test splits and what they are.

A dataset (a :class:`Dataset` subclass) says what it is before reading anything
(:attr:`Dataset.info`: input shape, class names, split sizes), so the model, the
number of steps and the value checks are settled first; :meth:`Dataset.load` then
reads it and returns a :class:`~mnist_lab.data.splits.Data` on the training device,
its normalisation included. The ``data`` node also holds how training batches are
drawn (:class:`LoaderConfig`: ``batch_size``, ``augment``), which the trainer reads
and the dataset does not take.

mnist_lab ships MNIST (the seed protocol's, the default), Fashion-MNIST and KMNIST
through torchvision's classes, each checked against its published MD5s
(:mod:`.integrity`), and QMNIST's 50,000 extra test digits as an evaluation set for
MNIST-trained models (:class:`QMNIST50k`, ``python -m mnist_lab.evaluate RUN --on
qmnist``). Only MNIST was trained on here; the others were tested on generated files
in their published formats.

A dataset of a user's own is one :class:`Dataset` subclass on their ``PYTHONPATH``
and one YAML file (README, "Add your own dataset").
"""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..config.parts import build, schema_of
from ..errors import ConfigError
from .augment import AugmentConfig
from .integrity import (RAW_FILES, DataError, Expected, check_labels, check_raw_files,
                        fix_hint, gz_hint, missing_files)
from .normalization import Normalization
from .splits import Data, DatasetInfo, Split, pixel_stats, split_test

DOWNLOAD_TIMEOUT_S = 30.0


@dataclass
class LoaderConfig:
    """How training batches are drawn from the ``data`` node's dataset (read by the trainer)."""

    batch_size: int = 64  # training images per step
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError("data.batch_size", self.batch_size, "must be >= 1")


class Dataset:
    """A dataset part: :attr:`info` at once, the splits on :meth:`load`.

    Subclasses set ``info`` (and ``normalize``, whether inputs are standardised with
    the training split's per-channel mean and std) in their constructor, which reads
    nothing, and implement :meth:`splits`. A constructor raises
    :class:`~mnist_lab.errors.ConfigError` for a bad argument.
    """

    info: DatasetInfo
    normalize: bool = False

    def splits(self) -> tuple[Split, Split, Split]:
        """(train, validation, test) on the CPU: uint8 (N, C, H, W) images, int64 (N,) labels.

        Raises:
            DataError: the data cannot be read (missing, damaged).
        """
        raise NotImplementedError

    def load(self, device: torch.device) -> Data:
        """Read the splits, check them against :attr:`info`, move them to ``device``.

        Raises:
            DataError: the data cannot be read, or is not what :attr:`info` says.
        """
        train, val, test = self.splits()
        for name, split in (("train", train), ("validation", val), ("test", test)):
            if tuple(split.images.shape[1:]) != self.info.in_shape or split.images.dtype != \
                    torch.uint8:
                raise DataError(f"{type(self).__name__}'s {name} split holds "
                                f"{split.images.dtype} images of shape "
                                f"{tuple(split.images.shape[1:])}, not uint8 "
                                f"{self.info.in_shape} as its info says.")
            check_labels(split.labels, Path(name), self.info.num_classes, type(self).__name__)
        if len(train) != self.info.num_train:
            raise DataError(f"{type(self).__name__} has {len(train)} training images, not "
                            f"{self.info.num_train} as its info says.")
        channels = self.info.in_shape[0]
        norm = pixel_stats(train.images) if self.normalize else Normalization(
            (0.0,) * channels, (1.0,) * channels)
        return Data(train.to(device), val.to(device), test.to(device), self.info, norm)


def _idx_sizes(train: int, test: int, shape: tuple[int, int] = (28, 28)) -> dict[str, int]:
    """Bytes of the four IDX files of an MNIST-format dataset (headers included)."""
    pixels = shape[0] * shape[1]
    return {"train-images-idx3-ubyte": 16 + train * pixels, "train-labels-idx1-ubyte": 8 + train,
            "t10k-images-idx3-ubyte": 16 + test * pixels, "t10k-labels-idx1-ubyte": 8 + test}


def _torchvision_files(resources: list[tuple[str, str]], sizes: dict[str, int]) -> dict:
    """Expected raw files from a torchvision class's ``resources`` (archive name, MD5)."""
    files = {}
    for url, md5 in resources:
        name = os.path.splitext(os.path.basename(url))[0]
        files[name] = Expected(sizes[name], archive_md5=md5)
    return files


class TorchvisionDigits(Dataset):
    """An MNIST-format dataset read by torchvision: 28x28 grey images, 10 classes,
    60,000 training and 10,000 test images; validation = the first ``val_size`` test
    images, test = the rest (the seed protocol's split).

    Args:
        root: folder holding ``<name>/raw/`` (relative: to where the command was launched).
        download: fetch the files with torchvision when they are missing.
        val_size: validation images, from the start of the test set (1..9,999).
        normalize: standardise inputs with the training split's mean and std
            (else inputs are pixel / 255).

    Files present: read, and nothing is written into ``root``. Each file is checked
    (size, published MD5, labels) before it is parsed (:mod:`.integrity`).

    Raises:
        ConfigError: ``val_size`` out of range.
    """

    torchvision_name: ClassVar[str] = "MNIST"  # the torchvision.datasets class
    # The raw files and their published sums; None: those torchvision lists for its
    # downloads (the class's ``resources``: archive names and MD5s).
    files: ClassVar[dict[str, Expected] | None] = RAW_FILES
    num_test: ClassVar[int] = 10_000

    def __init__(self, root: str, download: bool = True, val_size: int = 5000,
                 normalize: bool = False) -> None:
        if not 1 <= val_size <= self.num_test - 1:
            raise ConfigError(
                "data.val_size", val_size,
                f"must be in 1..{self.num_test - 1}: the validation split is taken from the "
                f"start of the {self.num_test}-image test set and the rest is the test split")
        self.root, self.download, self.val_size = Path(root), download, val_size
        self.normalize = normalize
        classes = tuple(c.split(" - ")[0] for c in self._torchvision().classes)
        self.info = DatasetInfo((1, 28, 28), classes, 60_000)
        self.expected = self.files if self.files is not None else _torchvision_files(
            self._torchvision().resources, _idx_sizes(60_000, self.num_test))

    @classmethod
    def _torchvision(cls) -> type:
        import torchvision.datasets

        return getattr(torchvision.datasets, cls.torchvision_name)

    @property
    def raw(self) -> Path:
        """``<root>/<name>/raw``, where torchvision keeps the files."""
        return self.root / self.torchvision_name / "raw"

    def splits(self) -> tuple[Split, Split, Split]:
        train, test = self.read()
        val, test = split_test(test, self.val_size)
        return train, val, test

    def read(self) -> tuple[Split, Split]:
        """The training and test sets as CPU tensors, checked (see the class docstring).

        Raises:
            DataError: files missing and ``download`` false, or the download failed
                (the message names the root and the missing files); a file truncated,
                empty or damaged (wrong MD5); a label outside the classes.
        """
        name, missing = self.torchvision_name, missing_files(self.raw, self.expected)
        if missing and not self.download:
            raise DataError(
                f"{name} not found in data root '{self.root.resolve()}' (missing {name}/raw/"
                f"{f', {name}/raw/'.join(missing)}) and data.download=false. "
                f"{fix_hint(name, self.expected)}, or set data.download=true (run.py) to "
                f"fetch them.{gz_hint(self.raw, missing)}")
        if missing:
            self._download()
        check_raw_files(self.raw, name, self.expected)
        return self.read_split(True), self.read_split(False)

    def read_split(self, train: bool) -> Split:
        """The training (``train``) or test set, parsed by torchvision; its labels checked,
        not its files (:meth:`read` checks those first).

        Raises:
            DataError: a file cannot be parsed, or a label is outside the classes.
        """
        try:
            ds = self._torchvision()(root=str(self.root), train=train, download=False)
        except (RuntimeError, ValueError, OSError) as error:
            raise DataError(
                f"The {self.torchvision_name} files in '{self.raw.resolve()}' cannot be read "
                f"({' '.join(str(error).split())}): a file is truncated or damaged. Compare "
                "them with the published checksums (md5sum) or download them again."
            ) from None
        labels = ds.targets.to(torch.int64)
        label_file = Path(ds.raw_folder) / f"{'train' if train else 't10k'}-labels-idx1-ubyte"
        check_labels(labels, label_file, self.info.num_classes, self.torchvision_name,
                     self.expected.get(label_file.name))
        return Split(ds.data.unsqueeze(1).contiguous(), labels)

    def _download(self) -> None:
        """Download into ``root`` with torchvision; on failure remove what it made."""
        raw = self.raw
        # Every folder the attempt may make (torchvision makes raw/ and all its ancestors).
        created = [p for p in (*reversed(raw.absolute().parents), raw.absolute())
                   if not p.exists()]
        before = set(os.listdir(raw)) if raw.is_dir() else set()
        old_timeout = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            self._torchvision()(root=str(self.root), train=True, download=True)
        except Exception as error:  # torchvision raises RuntimeError, URLError, OSError...
            _remove_new(raw, before, created)
            reason = " ".join(str(error).split()).rstrip(" .")  # torchvision's is multi-line
            raise DataError(
                f"Could not download {self.torchvision_name} into '{self.root.resolve()}' "
                f"(missing: {', '.join(missing_files(raw, self.expected))}): {reason}. "
                f"Nothing was left behind. {fix_hint(self.torchvision_name, self.expected)}, "
                "e.g. copied from a machine with network access.") from None
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


class MNIST(TorchvisionDigits):
    """MNIST (LeCun, Cortes and Burges): handwritten digits, the seed protocol's data."""


class FashionMNIST(TorchvisionDigits):
    """Fashion-MNIST (Xiao, Rasul and Vollgraf 2017): 10 classes of clothing, MNIST's format.

    Checked against the MD5s torchvision publishes for its ``.gz`` downloads.
    """

    torchvision_name = "FashionMNIST"
    files = None  # torchvision's published archive MD5s (its class's resources)


class KMNIST(TorchvisionDigits):
    """Kuzushiji-MNIST (Clanuwat et al. 2018): 10 classes of cursive Japanese, MNIST's format.

    Checked against the MD5s torchvision publishes for its ``.gz`` downloads.
    """

    torchvision_name = "KMNIST"
    files = None  # torchvision's published archive MD5s (its class's resources)


class QMNIST50k:
    """QMNIST's 50,000 test digits that MNIST's test set left out (Yadav and Bottou 2019;
    torchvision's ``QMNIST(what='test50k')``): an evaluation set for MNIST-trained models.

    Its error has a standard error about 3x smaller than one over a 5,000-image split
    (sqrt(50,000 / 5,000) = 3.2). Read from ``<root>/QMNIST/raw/``, checked against the
    MD5s torchvision publishes for the ``.gz`` downloads; never downloaded here unless
    ``download``.
    """

    torchvision_name = "QMNIST"
    files: ClassVar[dict[str, Expected]] = {
        "qmnist-test-images-idx3-ubyte": Expected(16 + 60_000 * 784,
                                                  archive_md5="1394631089c404de565df7b7aeaf9412"),
        "qmnist-test-labels-idx2-int": Expected(12 + 60_000 * 8 * 4,
                                                archive_md5="5b5b05890a5e13444e108efe57b788aa"),
    }

    def __init__(self, root: str | Path, download: bool = False) -> None:
        self.root, self.download = Path(root), download

    def read(self) -> Split:
        """The 50,000 digits: uint8 (50000, 1, 28, 28) images, int64 (50000,) labels.

        Raises:
            DataError: the files are missing (and not downloaded), damaged, or unreadable.
        """
        from torchvision.datasets import QMNIST

        raw = self.root / "QMNIST" / "raw"
        missing = missing_files(raw, self.files)
        if missing and not self.download:
            raise DataError(
                f"QMNIST not found in '{self.root.resolve()}' (missing QMNIST/raw/"
                f"{', QMNIST/raw/'.join(missing)}). {fix_hint('QMNIST', self.files)}, or "
                "pass --download to fetch them with torchvision.")
        try:
            if not missing:
                check_raw_files(raw, "QMNIST", self.files)
            ds = QMNIST(str(self.root), what="test50k", download=self.download)
        except (RuntimeError, ValueError, OSError) as error:
            raise DataError(f"QMNIST's test50k cannot be read from '{raw}' "
                            f"({' '.join(str(error).split())[:200]}).") from None
        labels = ds.targets[:, 0].to(torch.int64)
        check_labels(labels, raw / "qmnist-test-labels-idx2-int", 10, "QMNIST",
                     self.files["qmnist-test-labels-idx2-int"])
        return Split(ds.data.unsqueeze(1).contiguous(), labels)


LOADER_KEYS = tuple(f.name for f in fields(LoaderConfig))  # read by the trainer


def _node_values(node: Any) -> dict[str, Any]:
    return asdict(node) if is_dataclass(node) else dict(node)


def loader_of(node: Any) -> LoaderConfig:
    """The ``data`` node's :class:`LoaderConfig` (its defaults where a user's node has none).

    Raises:
        ConfigError: a value outside its range.
    """
    values = {k: v for k, v in _node_values(node).items() if k in LOADER_KEYS}
    augment = values.get("augment", {})
    if not isinstance(augment, AugmentConfig):
        values["augment"] = AugmentConfig(**dict(augment))
    return LoaderConfig(**values)


def dataset_of(node: Any) -> Dataset:
    """The dataset the ``data`` node names, built without the loader keys (nothing is read).

    Only for a trusted node (the command's own, or a saved one checked first).

    Raises:
        ConfigError, UserError: as :func:`mnist_lab.config.parts.build`.
    """
    values = {k: v for k, v in _node_values(node).items() if k not in LOADER_KEYS}
    return build(values, "data")


def _schema(cls: type) -> type:
    return schema_of(cls, supplied=(), base=LoaderConfig)


SCHEMAS = {"mnist": _schema(MNIST), "fashion_mnist": _schema(FashionMNIST),
           "kmnist": _schema(KMNIST)}
