"""The ConvNet family, in the style of timm's model tests."""

import pytest
import torch
import torch.nn.functional as F

from mnist_lab.models.build import build_model
from mnist_lab.errors import ConfigError, UserError
from mnist_lab.models.convnet import ConvNet

DEPTHS = [[4], [4, 8], [8, 16, 32], [2, 4, 8, 16]]


def make(depth, kernel_size=5, batch_norm=False):
    torch.manual_seed(0)
    return ConvNet(in_shape=(1, 28, 28), num_classes=10, depth=depth, kernel_size=kernel_size,
                   fc_width=32, dropout=0.5, batch_norm=batch_norm)


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("depth", DEPTHS, ids=str)
def test_output_is_log_probabilities(depth, batch_norm):
    model = make(depth, batch_norm=batch_norm).eval()
    out = model(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, 10) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.exp().sum(dim=1), torch.ones(3))


@pytest.mark.parametrize("depth", DEPTHS, ids=str)
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_feature_maps_shapes(depth, kernel_size):
    maps = make(depth, kernel_size).feature_maps(torch.rand(2, 1, 28, 28))
    size, shapes = 28, []
    for channels in depth:
        shapes.append((2, channels, size, size))
        size //= 2
    assert [tuple(m.shape) for m in maps] == shapes
    assert all((m >= 0).all() for m in maps), "feature maps are taken after the ReLU"


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("depth", DEPTHS, ids=str)
def test_gradients_reach_every_parameter(depth, batch_norm):
    model = make(depth, batch_norm=batch_norm).train()
    loss = F.nll_loss(model(torch.rand(8, 1, 28, 28)), torch.arange(8) % 10)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"no gradient reaches {name}"


def test_seed_network_matches_the_protocol():
    model = make([4, 8])
    convs = [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in model.convs]
    assert convs == [(1, 4, (5, 5), (2, 2)), (4, 8, (5, 5), (2, 2))]
    seed = ConvNet((1, 28, 28), 10, [4, 8], 5, 512, 0.5)
    assert (seed.fc.in_features, seed.fc.out_features) == (8 * 7 * 7, 512)
    assert seed.dropout.p == 0.5 and seed.out.out_features == 10


def test_pool_before_relu_equals_the_seed_order():
    """forward pools before the ReLU; the seed did ReLU then pool: same values."""
    model = make([4, 8]).eval()
    x = torch.rand(4, 1, 28, 28)
    h = x
    for conv in model.convs:
        h = F.max_pool2d(F.relu(conv(h)), 2)
    seed_order = F.log_softmax(model.out(F.relu(model.fc(h.flatten(1)))), dim=1)
    torch.testing.assert_close(model(x), seed_order, rtol=0, atol=0)


def test_too_deep_for_the_input_is_refused():
    with pytest.raises(ConfigError, match="has 5 conv blocks, but a 28x28 input allows at most 4"):
        make([1, 1, 1, 1, 1])


def test_build_model_by_target():
    model = build_model("mnist_lab.models.convnet.ConvNet", {
        "depth": [4], "kernel_size": 3, "fc_width": 8, "dropout": 0.0}, (1, 28, 28), 10)
    assert isinstance(model, ConvNet)
    with pytest.raises(UserError, match="cannot be imported"):
        build_model("mnist_lab.models.convnet.ResNet", {}, (1, 28, 28), 10)
