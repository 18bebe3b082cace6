"""The raw MNIST files: present, complete, the published bytes, labels in range.

Before torchvision parses anything, :func:`check_raw_files` compares each raw
IDX file's size with the expected one (a truncated or empty file gets a clear
error), then its MD5 with the published sum. Hashing the 55 MB takes a fraction
of a second, so each file is hashed once: the result is cached outside the data
root (which may be read-only), keyed by the file's absolute path, size,
modification time, inode and status-change time (ns). A user can set the
modification time back (``touch -d``), not the status-change time: any write,
and restoring the modification time itself, moves it, so a changed file is
always hashed again. The cache is a JSON file in ``$MNIST_LAB_CACHE``, else
``$XDG_CACHE_HOME/mnist_lab``, else ``~/.cache/mnist_lab``. A cache that cannot
be written costs only the hashing on the next run (one warning per process).
:func:`check_labels` refuses labels outside 0..9 when a split is read.
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
    """The MNIST files are missing, incomplete or damaged, and could not be obtained."""


class Expected(NamedTuple):
    """What one raw file must be."""

    size: int  # bytes: the IDX header (4-byte magic, 4 bytes per dimension) + 1 per item
    md5: str  # hex digest of the uncompressed file


# The four uncompressed IDX files (LeCun, Cortes and Burges). The MD5s are the published
# sums of the uncompressed files, as listed in shared/mnist/MD5SUMS (see its README.md);
# torchvision's own sums are those of the .gz downloads.
RAW_FILES = {
    "train-images-idx3-ubyte": Expected(47_040_016, "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte": Expected(60_008, "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte": Expected(7_840_016, "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte": Expected(10_008, "27ae3e4e09519cfbb04c329615203637"),
}
_warned_caches: set[Path] = set()


def missing_files(root: str | Path) -> list[str]:
    """The raw IDX files absent from ``root/MNIST/raw`` (empty when all are there)."""
    raw = Path(root) / "MNIST" / "raw"
    return [name for name in RAW_FILES if not (raw / name).is_file()]


def fix_hint() -> str:
    """How to point mnist_lab at the files (ends without a full stop)."""
    return (
        "Point the data root (data.root for run.py, --data-root for evaluate, or the "
        "environment variable MNIST_LAB_DATA) at a folder that holds the four uncompressed "
        "IDX files in MNIST/raw/ (" + ", ".join(RAW_FILES) + ")"
    )


def gz_hint(root: Path, missing: list[str]) -> str:
    """A hint when the files are there, but still gzip-compressed."""
    raw = root / "MNIST" / "raw"
    if any((raw / f"{name}.gz").is_file() for name in missing):
        return f" The folder holds .gz files: decompress them first (gunzip {raw}/*.gz)."
    return ""


def _replace_hint(path: Path) -> str:
    md5 = RAW_FILES[path.name].md5
    return (
        "Download MNIST again (delete the file and run with data.download=true) or copy the "
        f"file again from a good copy, then check it: `md5sum {path}` must print {md5}."
    )


def check_raw_files(raw: Path) -> None:
    """Check the four files in ``raw`` (``<data root>/MNIST/raw``): sizes, then MD5s.

    Raises:
        DataError: a file has the wrong size (truncated, empty) or the wrong MD5;
            the message names the file, the expected and actual value, and the fix.
    """
    for name, expected in RAW_FILES.items():
        path = (raw / name).resolve()
        size = path.stat().st_size
        if size != expected.size:
            state = "empty" if size == 0 else "truncated" if size < expected.size else "too long"
            raise DataError(
                f"The MNIST file '{path}' is {state}: {size:,} bytes, expected "
                f"{expected.size:,} bytes. {_replace_hint(path)}"
            )
    _check_md5s(raw)


def _check_md5s(raw: Path) -> None:
    """Hash each file not yet verified as it is now (size, times, inode); cache the new ones."""
    cache = md5_cache_file()
    verified = _read_cache(cache)
    fresh = {}
    try:
        for name, expected in RAW_FILES.items():
            path = (raw / name).resolve()
            stat = path.stat()
            entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ino": stat.st_ino,
                     "ctime_ns": stat.st_ctime_ns, "md5": expected.md5}
            if verified.get(str(path)) == entry:
                continue
            actual = calculate_md5(path)
            if actual != expected.md5:
                raise DataError(
                    f"The MNIST file '{path}' is damaged: its MD5 is {actual}, expected the "
                    f"published {expected.md5}. {_replace_hint(path)}"
                )
            fresh[str(path)] = entry
    finally:
        if fresh:
            _write_cache(cache, fresh)


def md5_cache_file() -> Path:
    """The JSON file of verified raw files: {absolute path: {size, mtime_ns, ino, ctime_ns, md5}}."""
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
        if cache not in _warned_caches:
            _warned_caches.add(cache)
            log.warning(
                "Cannot write the MNIST checksum cache '%s' (%s): the files were verified, "
                "but will be hashed again on every run. Set MNIST_LAB_CACHE to a writable "
                "folder to keep the result.", cache, error,
            )


def check_labels(labels: torch.Tensor, path: Path, num_classes: int) -> None:
    """Refuse labels outside ``0..num_classes-1``.

    Args:
        labels: int64 tensor (N,), as read from the label file ``path``.

    Raises:
        DataError: naming the file, the first bad index and its value.
    """
    bad = ((labels < 0) | (labels >= num_classes)).nonzero().flatten()
    if len(bad):
        index, path = int(bad[0]), path.resolve()
        raise DataError(
            f"The MNIST label file '{path}' holds label {int(labels[index])} at index {index} "
            f"(the first of {len(bad)} labels outside 0..{num_classes - 1}). "
            f"{_replace_hint(path)}"
        )
