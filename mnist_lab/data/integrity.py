"""A dataset's raw files: present, complete, the published bytes, labels in range.

Before torchvision parses anything, :func:`check_raw_files` compares each raw
file's size with the expected one (a truncated or empty file gets a clear error),
then its MD5 with the published sum: MNIST's published sums of the uncompressed
files (:data:`RAW_FILES`), or, for the datasets whose publisher gives only the sums
of the ``.gz`` downloads (Fashion-MNIST, KMNIST, QMNIST), the sum torchvision lists
for the archive that torchvision's download keeps beside each file. A raw file
without its archive cannot be checked against a published sum: that is said once,
in a warning, and the file is used.

Hashing the 55 MB of MNIST takes a fraction of a second, so each file is hashed
once: the result is cached outside the data root (which may be read-only), keyed by
the file's absolute path, size, modification time, inode and status-change time
(ns). A user can set the modification time back (``touch -d``), not the
status-change time: any write, and restoring the modification time itself, moves
it, so a changed file is always hashed again. The cache is a JSON file in
``$MNIST_LAB_CACHE``, else ``$XDG_CACHE_HOME/mnist_lab``, else
``~/.cache/mnist_lab``. A cache that cannot be written costs only the hashing on the
next run (one warning per process). :func:`check_labels` refuses labels outside the
classes when a split is read.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import NamedTuple

import torch
from torchvision.datasets.utils import calculate_md5

from ..errors import UserError
from ..record.atomic import replace_atomically

log = logging.getLogger(__name__)
CACHE_FILE = "verified_md5.json"


class DataError(UserError):
    """The dataset's files are missing, incomplete or damaged, and could not be obtained."""


class Expected(NamedTuple):
    """What one raw file must be.

    Attributes:
        size: bytes (an IDX file: its header, 4-byte magic and 4 bytes per dimension,
            then the items).
        md5: hex digest of the file itself, when published; else None.
        archive_md5: hex digest of ``<file>.gz`` (torchvision's download, kept beside
            the file), when that is what is published; else None.
    """

    size: int
    md5: str | None = None
    archive_md5: str | None = None


# The four uncompressed IDX files of MNIST (LeCun, Cortes and Burges). The MD5s are the
# published sums of the uncompressed files, as listed in shared/mnist/MD5SUMS (see its
# README.md); torchvision's own sums are those of the .gz downloads.
RAW_FILES = {
    "train-images-idx3-ubyte": Expected(47_040_016, "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte": Expected(60_008, "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte": Expected(7_840_016, "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte": Expected(10_008, "27ae3e4e09519cfbb04c329615203637"),
}
_warned: set[str] = set()


def missing_files(raw: str | Path, files: dict[str, Expected] = RAW_FILES) -> list[str]:
    """The ``files`` absent from the folder ``raw`` (empty when all are there)."""
    return [name for name in files if not (Path(raw) / name).is_file()]


def fix_hint(dataset: str, files: dict[str, Expected]) -> str:
    """How to point mnist_lab at the files (ends without a full stop)."""
    return (
        "Point the data root (data.root for run.py, --data-root for evaluate, or the "
        f"environment variable MNIST_LAB_DATA) at a folder that holds the uncompressed "
        f"files in {dataset}/raw/ (" + ", ".join(files) + ")"
    )


def gz_hint(raw: Path, missing: list[str]) -> str:
    """A hint when the files are there, but still gzip-compressed."""
    if any((raw / f"{name}.gz").is_file() for name in missing):
        return f" The folder holds .gz files: decompress them first (gunzip {raw}/*.gz)."
    return ""


def _replace_hint(dataset: str, path: Path, expected: Expected) -> str:
    check = (f"`md5sum {path}` must print {expected.md5}" if expected.md5 else
             f"`md5sum {path}.gz` must print {expected.archive_md5}")
    return (
        f"Download {dataset} again (delete the file and run with data.download=true) or copy "
        f"the file again from a good copy, then check it: {check}."
    )


def check_raw_files(raw: Path, dataset: str = "MNIST",
                    files: dict[str, Expected] = RAW_FILES) -> None:
    """Check ``files`` in ``raw`` (``<data root>/<dataset>/raw``): sizes, then MD5s.

    Raises:
        DataError: a file has the wrong size (truncated, empty) or the wrong MD5;
            the message names the file, the expected and actual value, and the fix.
    """
    for name, expected in files.items():
        path = (raw / name).resolve()
        size = path.stat().st_size
        if size != expected.size:
            state = "empty" if size == 0 else "truncated" if size < expected.size else "too long"
            raise DataError(
                f"The {dataset} file '{path}' is {state}: {size:,} bytes, expected "
                f"{expected.size:,} bytes. {_replace_hint(dataset, path, expected)}"
            )
    _check_md5s(raw, dataset, files)


def _published(raw: Path, name: str, expected: Expected) -> tuple[Path, str] | None:
    """The file to hash and its published MD5: the file itself, or its ``.gz`` archive."""
    if expected.md5:
        return (raw / name).resolve(), expected.md5
    archive = raw / f"{name}.gz"
    if expected.archive_md5 and archive.is_file():
        return archive.resolve(), expected.archive_md5
    return None


def _check_md5s(raw: Path, dataset: str, files: dict[str, Expected]) -> None:
    """Hash each file not yet verified as it is now (size, times, inode); cache the new ones."""
    cache = md5_cache_file()
    verified = _read_cache(cache)
    fresh = {}
    try:
        for name, expected in files.items():
            published = _published(raw, name, expected)
            if published is None:
                _warn_once(f"unverified {raw / name}", "%s cannot be checked against a "
                           "published MD5: torchvision publishes the sums of the .gz "
                           "downloads, and %s.gz is not beside it. It is used unchecked.",
                           raw / name, name)
                continue
            path, md5 = published
            stat = path.stat()
            entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ino": stat.st_ino,
                     "ctime_ns": stat.st_ctime_ns, "md5": md5}
            if verified.get(str(path)) == entry:
                continue
            actual = calculate_md5(path)
            if actual != md5:
                raise DataError(
                    f"The {dataset} file '{path}' is damaged: its MD5 is {actual}, expected the "
                    f"published {md5}. {_replace_hint(dataset, (raw / name).resolve(), expected)}"
                )
            fresh[str(path)] = entry
    finally:
        if fresh:
            _write_cache(cache, fresh)


def md5_cache_file() -> Path:
    """The JSON file of verified raw files: {absolute path: {size, mtime_ns, ino, ctime_ns,
    md5}}."""
    folder = os.environ.get("MNIST_LAB_CACHE")
    if not folder:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        folder = os.path.join(base, "mnist_lab")
    return Path(folder) / CACHE_FILE


def _read_cache(cache: Path) -> dict:
    """The cache's entries; a missing, unreadable or damaged cache is empty."""
    try:
        entries = json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def _write_cache(cache: Path, fresh: dict) -> None:
    """Merge ``fresh`` into the cache atomically (parallel jobs may write at once)."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        entries = _read_cache(cache) | fresh
        replace_atomically(cache, lambda tmp: tmp.write_text(json.dumps(entries, indent=1)))
    except OSError as error:
        _warn_once(str(cache), "Cannot write the MNIST checksum cache '%s' (%s): the files "
                   "were verified, but will be hashed again on every run. Set MNIST_LAB_CACHE "
                   "to a writable folder to keep the result.", cache, error)


def _warn_once(key: str, message: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


def check_labels(labels: torch.Tensor, path: Path, num_classes: int, dataset: str = "MNIST",
                 expected: Expected | None = None) -> None:
    """Refuse labels outside ``0..num_classes-1``.

    Args:
        labels: int64 tensor (N,), as read from the label file ``path``.

    Raises:
        DataError: naming the file, the first bad index and its value.
    """
    bad = ((labels < 0) | (labels >= num_classes)).nonzero().flatten()
    if len(bad):
        index, path = int(bad[0]), path.resolve()
        expected = expected or RAW_FILES.get(path.name) or Expected(0)
        raise DataError(
            f"The {dataset} label file '{path}' holds label {int(labels[index])} at index {index} "
            f"(the first of {len(bad)} labels outside 0..{num_classes - 1}). "
            f"{_replace_hint(dataset, path, expected)}"
        )
