"""The data path on the real MNIST files."""

import pytest
import torch
from torchvision.datasets import MNIST as TorchvisionMNIST

from conftest import data_root_state
from mnist_lab.data import (DataError, Normalization, batches, epoch_order, load_data,
                            load_mnist, pixel_stats, split_test, steps_per_epoch)


@pytest.fixture(scope="module")
def mnist(data_root):
    return load_data(data_root, download=False, val_size=5000, normalize=False,
                     device=torch.device("cpu"))


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
    assert stats.mean == pytest.approx(0.1307, abs=1e-4)
    assert stats.std == pytest.approx(0.3081, abs=1e-4)
    standardised = stats.apply(mnist.train.images[:2000])
    assert abs(standardised.mean().item()) < 0.05


def test_missing_root_without_download_names_the_path(tmp_path):
    root = tmp_path / "no_mnist_here"
    with pytest.raises(DataError) as info:
        load_mnist(root, download=False)
    message = str(info.value)
    assert str(root) in message and "MNIST/raw/train-images-idx3-ubyte" in message
    assert "data.root" in message and "MNIST_LAB_DATA" in message
    assert not root.exists()


def test_failed_download_names_the_root_and_leaves_nothing(tmp_path, monkeypatch):
    # An address where nothing listens: torchvision's real download code fails fast.
    monkeypatch.setattr(TorchvisionMNIST, "mirrors", ["http://127.0.0.1:9/"])
    root = tmp_path / "new_root"
    with pytest.raises(DataError) as info:
        load_mnist(root, download=True)
    assert f"Could not download MNIST into '{root}'" in str(info.value)
    assert "\n" not in str(info.value)
    assert not root.exists(), "half-made folders were left behind"


def test_reading_writes_nothing_into_the_data_root(data_root):
    before = data_root_state(data_root)
    load_mnist(data_root, download=True)  # files present: download must not write
    assert data_root_state(data_root) == before
