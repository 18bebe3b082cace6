"""The data path on the real MNIST files."""

import hashlib
import json
import logging
import os
import shutil
import struct
from pathlib import Path

import pytest
import torch
from torchvision.datasets import MNIST as TorchvisionMNIST

from conftest import data_root_state
from mnist_lab.data.datasets import MNIST
from mnist_lab.data.integrity import DataError
from mnist_lab.data.normalization import Normalization
from mnist_lab.data.splits import batches, epoch_order, pixel_stats, split_test, steps_per_epoch
from mnist_lab.data import integrity
from mnist_lab.data.integrity import RAW_FILES, md5_cache_file

TRAIN_LABELS = "train-labels-idx1-ubyte"


@pytest.fixture(scope="module", autouse=True)
def md5_cache(tmp_path_factory):
    """These tests' MD5 cache, away from the user's ~/.cache (a test may use its own)."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("md5_cache")
        patch.setenv("MNIST_LAB_CACHE", str(folder))
        yield folder


def raw_copy(tmp_path: Path, data_root: Path, copied=(TRAIN_LABELS,)) -> Path:
    """A data root in ``tmp_path``: copies of the ``copied`` raw files, links to the rest."""
    raw = tmp_path / "root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES:
        real = data_root / "MNIST" / "raw" / name
        shutil.copyfile(real, raw / name) if name in copied else (raw / name).symlink_to(real)
    return raw


def set_byte(path: Path, offset: int, value: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(bytes([value]))


@pytest.fixture(scope="module")
def mnist(data_root):
    return MNIST(str(data_root), download=False).load(torch.device("cpu"))


def test_splits_have_the_seed_sizes_and_do_not_overlap(mnist, data_root):
    assert (len(mnist.train), len(mnist.val), len(mnist.test)) == (60000, 5000, 5000)
    assert mnist.in_shape == (1, 28, 28) and mnist.classes == tuple("0123456789")
    full = TorchvisionMNIST(str(data_root), train=False, download=False)
    assert torch.equal(mnist.val.images[:, 0], full.data[:5000])
    assert torch.equal(mnist.test.images[:, 0], full.data[5000:])
    assert torch.equal(torch.cat([mnist.val.labels, mnist.test.labels]), full.targets)
    assert mnist.train.images.dtype == torch.uint8 and mnist.train.labels.dtype == torch.int64


def test_split_test_rejects_sizes_outside_the_test_set(mnist):
    with pytest.raises(ValueError, match="val_size=5000"):
        split_test(mnist.val, 5000)


def test_batches_cover_each_image_once_and_keep_the_last_small_batch(mnist):
    assert steps_per_epoch(60000, 64) == 938
    sizes, labels = [], []
    for _, y in batches(mnist.train, 64, seed=0, epoch=0):
        sizes.append(len(y))
        labels.append(y)
    assert len(sizes) == 938 and sizes[-1] == 60000 - 937 * 64 and set(sizes[:-1]) == {64}
    assert torch.equal(torch.cat(labels).bincount(), mnist.train.labels.bincount())


def test_epoch_order_is_a_pure_function_of_seed_and_epoch():
    device = torch.device("cpu")
    a = epoch_order(1000, seed=3, epoch=2, device=device)
    assert torch.equal(a, epoch_order(1000, seed=3, epoch=2, device=device))
    assert torch.equal(a.sort().values, torch.arange(1000))
    assert not torch.equal(a, epoch_order(1000, seed=3, epoch=3, device=device))
    assert not torch.equal(a, epoch_order(1000, seed=4, epoch=2, device=device))


def test_resumed_batches_are_the_same(mnist):
    all_batches = list(batches(mnist.train, 64, seed=1, epoch=5))
    later = list(batches(mnist.train, 64, seed=1, epoch=5, start=900))
    assert len(later) == 38
    assert all(torch.equal(a[1], b[1]) for a, b in zip(all_batches[900:], later))


def test_normalisation(mnist):
    x = Normalization().apply(mnist.val.images[:10])
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    torch.testing.assert_close(x, mnist.val.images[:10].float() / 255)
    stats = pixel_stats(mnist.train.images)
    assert stats.mean[0] == pytest.approx(0.1307, abs=1e-4)
    assert stats.std[0] == pytest.approx(0.3081, abs=1e-4)
    standardised = stats.apply(mnist.train.images[:2000])
    assert abs(standardised.mean().item()) < 0.05


def test_missing_root_without_download_names_the_path(tmp_path):
    root = tmp_path / "no_mnist_here"
    with pytest.raises(DataError) as info:
        MNIST(str(root), download=False).read()
    message = str(info.value)
    assert str(root) in message and "MNIST/raw/train-images-idx3-ubyte" in message
    assert "data.root" in message and "MNIST_LAB_DATA" in message
    assert not root.exists()


def test_failed_download_names_the_root_and_leaves_nothing(tmp_path, monkeypatch):
    # An address where nothing listens: torchvision's real download code fails fast.
    monkeypatch.setattr(TorchvisionMNIST, "mirrors", ["http://127.0.0.1:9/"])
    root = tmp_path / "new_root"
    with pytest.raises(DataError) as info:
        MNIST(str(root), download=True).read()
    assert f"Could not download MNIST into '{root}'" in str(info.value)
    assert "\n" not in str(info.value)
    assert not root.exists(), "half-made folders were left behind"


def test_reading_writes_nothing_into_the_data_root(data_root):
    before = data_root_state(data_root)
    MNIST(str(data_root), download=True).read()  # files present: download must not write
    assert data_root_state(data_root) == before


def test_failed_download_into_a_nested_root_removes_every_folder_it_made(
        tmp_path, monkeypatch):
    monkeypatch.setattr(TorchvisionMNIST, "mirrors", ["http://127.0.0.1:9/"])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("not made by the download")
    with pytest.raises(DataError, match="Nothing was left behind"):
        MNIST("deep/a/b", download=True).read()  # none of deep/a/b exists
    assert os.listdir(tmp_path) == ["keep.txt"], "folders made by the download were left"


@pytest.mark.parametrize("name, size, state", [
    ("train-images-idx3-ubyte", 3000, "truncated: 3,000 bytes, expected 47,040,016 bytes"),
    ("t10k-labels-idx1-ubyte", 0, "empty: 0 bytes, expected 10,008 bytes"),
])
def test_a_truncated_or_empty_raw_file_names_its_size_and_the_expected_one(
        tmp_path, data_root, name, size, state):
    raw = raw_copy(tmp_path, data_root, copied=(name,))
    with open(raw / name, "r+b") as f:
        f.truncate(size)
    with pytest.raises(DataError) as info:
        MNIST(str(raw.parent.parent), download=True).read()
    message = str(info.value)
    assert f"The MNIST file '{raw / name}' is {state}." in message
    assert "data.download=true" in message and "\n" not in message
    assert f"`md5sum {raw / name}` must print {RAW_FILES[name].md5}" in message


def test_a_changed_byte_fails_the_md5_check(tmp_path, data_root):
    raw = raw_copy(tmp_path, data_root)
    set_byte(raw / TRAIN_LABELS, 8 + 4242, 255)  # label 4242 (after the 8-byte header)
    actual = hashlib.md5((raw / TRAIN_LABELS).read_bytes()).hexdigest()
    with pytest.raises(DataError) as info:
        MNIST(str(raw.parent.parent), download=False).read()
    assert str(info.value).startswith(
        f"The MNIST file '{raw / TRAIN_LABELS}' is damaged: its MD5 is {actual}, expected "
        "the published a25bea736e30d166cdddb491f175f624. Download MNIST again")


def test_md5_check_is_cached_by_what_a_user_cannot_set_back(tmp_path, data_root, monkeypatch):
    """Cached by path, size, mtime, inode and ctime: a byte changed with the old mtime
    restored (``touch -d``) is hashed again (issue 15: it was trained on before)."""
    monkeypatch.setenv("MNIST_LAB_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    md5_cache_file().write_text("{ half a file")  # a damaged cache counts as empty
    raw = raw_copy(tmp_path, data_root)
    MNIST(str(raw.parent.parent), download=False).read()
    assert os.listdir(tmp_path / "cache") == ["verified_md5.json"]  # no temp file left
    cached = json.loads(md5_cache_file().read_text())
    copy = raw / TRAIN_LABELS
    stat = copy.stat()
    assert cached[str(copy)] == {"size": 60008, "mtime_ns": stat.st_mtime_ns,
                                 "ino": stat.st_ino, "ctime_ns": stat.st_ctime_ns,
                                 "md5": "a25bea736e30d166cdddb491f175f624"}
    assert set(cached) == {str(copy)} | {
        str(data_root / "MNIST" / "raw" / n) for n in RAW_FILES if n != TRAIN_LABELS}
    hashed = []
    real_md5 = integrity.calculate_md5
    monkeypatch.setattr(integrity, "calculate_md5", lambda p: hashed.append(p) or real_md5(p))
    MNIST(str(raw.parent.parent), download=False).read()
    assert hashed == []  # unchanged files: not hashed again
    set_byte(copy, 8 + 4242, 255)
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the old mtime, set back
    assert copy.stat().st_mtime_ns == stat.st_mtime_ns
    with pytest.raises(DataError, match="is damaged: its MD5 is"):
        MNIST(str(raw.parent.parent), download=False).read()
    assert hashed == [copy.resolve()]


def test_md5_cache_location(tmp_path, monkeypatch):
    monkeypatch.delenv("MNIST_LAB_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert md5_cache_file() == tmp_path / "home/.cache/mnist_lab/verified_md5.json"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert md5_cache_file() == tmp_path / "xdg/mnist_lab/verified_md5.json"
    monkeypatch.setenv("MNIST_LAB_CACHE", str(tmp_path / "mine"))
    assert md5_cache_file() == tmp_path / "mine/verified_md5.json"


def test_an_unwritable_md5_cache_warns_once_and_the_data_loads(
        tmp_path, data_root, monkeypatch, caplog):
    home = tmp_path / "home_is_a_file"  # nothing can be made under it, even by root
    home.write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("MNIST_LAB_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    with caplog.at_level(logging.WARNING, logger="mnist_lab.data.integrity"):
        for _ in range(2):
            train, _ = MNIST(str(data_root), download=False).read()
            assert len(train) == 60000
    warnings = [r.getMessage() for r in caplog.records if r.name == "mnist_lab.data.integrity"]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"Cannot write the MNIST checksum cache '{home}/.cache/mnist_lab/verified_md5.json'")


def write_idx(path: Path, items: list[int], shape: tuple = ()) -> None:
    """An IDX file of unsigned bytes (magic 0x08, then the dimensions, big-endian)."""
    dims = (len(items) // max(1, int(torch.tensor(shape).prod())), *shape)
    header = struct.pack(">I", 0x0800 + len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    path.write_bytes(header + bytes(items))


def test_labels_outside_0_to_9_are_refused_when_a_split_is_read(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split in ("train", "t10k"):  # torchvision wants all four files
        write_idx(raw / f"{split}-images-idx3-ubyte", [0] * 4 * 28 * 28, shape=(28, 28))
        write_idx(raw / f"{split}-labels-idx1-ubyte", [0, 1, 2, 3])
    write_idx(raw / "t10k-labels-idx1-ubyte", [7, 2, 255, 10])
    with pytest.raises(DataError) as info:
        MNIST(str(tmp_path), download=False).read_split(train=False)
    assert str(info.value).startswith(
        f"The MNIST label file '{raw / 't10k-labels-idx1-ubyte'}' holds label 255 at index 2 "
        "(the first of 2 labels outside 0..9).")
    write_idx(raw / "t10k-labels-idx1-ubyte", [7, 2, 9, 0])
    labels = MNIST(str(tmp_path), download=False).read_split(train=False).labels
    assert labels.tolist() == [7, 2, 9, 0]
