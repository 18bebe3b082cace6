"""Every model of the zoo (mnist_lab/models/), in the style of timm's model tests."""

from __future__ import annotations

import csv
import importlib
import inspect
import io
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import compose_config, run_training
from mnist_lab.models.build import build_model, load_model
from mnist_lab.errors import ConfigError
from mnist_lab.evaluate import evaluate_run
from mnist_lab.models.convnet import ConvNet
from mnist_lab.models.lenet5 import C3_TABLE, LeNet5, scaled_tanh
from mnist_lab.models.mlp import MLP
from mnist_lab.models.resnet import ResNet
from mnist_lab.predict import main as predict_main
from mnist_lab.record.folder import RunRecord
from user_images import load_mnist_test, make_user_style_files

CONF = Path(__file__).resolve().parent.parent / "conf"
IN_SHAPE, NUM_CLASSES = (1, 28, 28), 10
ZOO = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))  # every model=<option>
OURS = ["mlp", "lenet5", "resnet"]  # the zoo's models after the seed's convnet
# name → the overrides that train it (convnet: the seed's lr 0.001 needs more than 200 steps)
PRESETS = {"convnet": ["model=convnet", "optimizer.lr=0.01"],
           "convnet_bn": ["experiment=recogniser"],
           **{name: [f"experiment={name}"] for name in OURS}}


def yaml_model(name: str) -> tuple[str, dict]:
    """(_target_, keyword arguments) of conf/model/<name>.yaml, as composed."""
    node = OmegaConf.to_container(compose_config([f"model={name}"]).model)
    return node.pop("_target_"), node


# name → (_target_, keyword arguments): each model option, then variants of ours.
MODELS = {name: yaml_model(name) for name in ZOO} | {
    "mlp-logistic": ("mnist_lab.models.mlp.MLP", {"hidden": []}),
    "lenet5-full-c3": ("mnist_lab.models.lenet5.LeNet5", {"c3_table": False}),
    "resnet-4x2": ("mnist_lab.models.resnet.ResNet", {"widths": [8, 16, 32, 64], "blocks": 2}),
    **{f"convnet-{d}": ("mnist_lab.models.convnet.ConvNet", {"depth": d, "kernel_size": k,
                                                             "fc_width": 32, "batch_norm": bn})
       for d, k, bn in (([4], 5, False), ([8, 16, 32], 3, True), ([2, 4, 8, 16], 5, False))},
}
# name → feature-map shapes (C, H, W) for a 28x28 image; None: no feature_maps().
FEATURE_MAPS = {
    "convnet": [(4, 28, 28), (8, 14, 14)],
    "convnet_bn": [(32, 28, 28), (64, 14, 14), (128, 7, 7)],
    "mlp": None,
    "mlp-logistic": None,
    "lenet5": [(6, 28, 28), (16, 10, 10), (120, 1, 1)],
    "lenet5-full-c3": [(6, 28, 28), (16, 10, 10), (120, 1, 1)],
    "resnet": [(16, 28, 28), (16, 28, 28), (32, 14, 14), (64, 7, 7)],
    "resnet-4x2": [(8, 28, 28)] * 3 + [(16, 14, 14)] * 2 + [(32, 7, 7)] * 2 + [(64, 4, 4)] * 2,
    "convnet-[4]": [(4, 28, 28)],
    "convnet-[8, 16, 32]": [(8, 28, 28), (16, 14, 14), (32, 7, 7)],
    "convnet-[2, 4, 8, 16]": [(2, 28, 28), (4, 14, 14), (8, 7, 7), (16, 3, 3)],
}
CONV_MODELS = [name for name in MODELS if FEATURE_MAPS[name] is not None]


def make(name: str) -> torch.nn.Module:
    """The model as run.py builds it (``hydra.utils.instantiate``), seeded."""
    target, kwargs = MODELS[name]
    torch.manual_seed(0)
    return build_model(target, kwargs, IN_SHAPE, NUM_CLASSES)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name", MODELS)
def test_output_is_log_probabilities(name, train):
    model = make(name).train(train)
    x = torch.randn(5, *IN_SHAPE).contiguous(memory_format=torch.channels_last)
    out = model(x)
    assert out.shape == (5, NUM_CLASSES) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.exp().sum(dim=1), torch.ones(5))


@pytest.mark.parametrize("name", MODELS)
def test_gradients_reach_every_parameter(name):
    model = make(name).train()
    loss = F.nll_loss(model(torch.randn(16, *IN_SHAPE)), torch.arange(16) % NUM_CLASSES)
    loss.backward()
    for param_name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), param_name
        assert p.grad.abs().sum() > 0, f"no gradient reaches {param_name}"


@pytest.mark.parametrize("name", CONV_MODELS)
def test_feature_maps_and_conv_weights(name):
    model = make(name).eval()
    x = torch.randn(3, *IN_SHAPE)
    maps = model.feature_maps(x)
    assert [tuple(m.shape[1:]) for m in maps] == FEATURE_MAPS[name]
    assert all(m.shape[0] == 3 and m.dtype == torch.float32 and not m.requires_grad
               for m in maps)
    params = list(model.parameters())
    pairs = model.conv_weights()
    assert pairs, "a model with feature maps lists its conv weights"
    for weight, bias in pairs:
        assert weight.dim() == 4 and bias.shape == (weight.shape[0],)
        assert any(weight is p for p in params) and any(bias is p for p in params), "live tensors"
    assert pairs[0][0].shape[:2] == (maps[0].shape[1], IN_SHAPE[0]), "the first conv comes first"


def test_feature_maps_are_taken_after_the_relu():
    maps = make("convnet-[2, 4, 8, 16]").feature_maps(torch.rand(2, *IN_SHAPE))
    assert all((m >= 0).all() for m in maps)


def test_the_seed_network_matches_the_protocol():
    model = make("convnet")
    convs = [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in model.convs]
    assert convs == [(1, 4, (5, 5), (2, 2)), (4, 8, (5, 5), (2, 2))]
    assert (model.fc.in_features, model.fc.out_features) == (8 * 7 * 7, 512)
    assert model.dropout.p == 0.5 and model.out.out_features == 10


def test_pool_before_relu_equals_the_seed_order():
    """forward pools before the ReLU; the seed did ReLU then pool: same values."""
    model = make("convnet").eval()
    x = torch.rand(4, *IN_SHAPE)
    h = x
    for conv in model.convs:
        h = F.max_pool2d(F.relu(conv(h)), 2)
    seed_order = F.log_softmax(model.out(F.relu(model.fc(h.flatten(1)))), dim=1)
    torch.testing.assert_close(model(x), seed_order, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["mlp", "mlp-logistic"])
def test_mlp_has_no_convolutions(name):
    model = make(name)
    assert not any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert not hasattr(model, "feature_maps") and not hasattr(model, "conv_weights")


BAD_VALUES = [
    (ConvNet, {"depth": []}, "model.depth"),
    (ConvNet, {"depth": [4, 0]}, "model.depth"),
    (ConvNet, {"depth": [1] * 5}, "model.depth"),  # 28 allows 4 blocks: 28 14 7 3 1
    (ConvNet, {"kernel_size": 4}, "model.kernel_size"),
    (ConvNet, {"dropout": 1.0}, "model.dropout"),
    (MLP, {"hidden": [256, 0]}, "model.hidden"),
    (MLP, {"dropout": 1.0}, "model.dropout"),
    (MLP, {"dropout": -0.1}, "model.dropout"),
    (LeNet5, {}, "model", (1, 24, 24)),
    (LeNet5, {}, "model", (1, 32, 32)),  # 28x28 by design
    (ResNet, {"widths": []}, "model.widths"),
    (ResNet, {"widths": [16, -1]}, "model.widths"),
    (ResNet, {"widths": [1] * 7}, "model.widths"),  # 28 allows 6 stages: 28 14 7 4 2 1
    (ResNet, {"blocks": 0}, "model.blocks"),
]


@pytest.mark.parametrize("bad", BAD_VALUES, ids=lambda b: f"{b[0].__name__}-{b[1]}-{b[3:]}")
def test_the_constructor_refuses_bad_values_in_one_line(bad):
    cls, kwargs, key, *in_shape = bad
    shape = in_shape[0] if in_shape else IN_SHAPE
    with pytest.raises(ConfigError) as refused:
        cls(shape, NUM_CLASSES, **kwargs)  # the constructor checks first
    assert refused.value.key == key
    message = str(refused.value)
    assert message.startswith(f"Invalid config value {key}=") and "\n" not in message


def test_resnet_accepts_the_most_stages_an_input_allows():
    assert ResNet(IN_SHAPE, NUM_CLASSES, widths=[2] * 6).feature_maps(
        torch.randn(2, *IN_SHAPE))[-1].shape == (2, 2, 1, 1)


@pytest.mark.parametrize("name", OURS + ["convnet"])
def test_model_yaml_restates_none_of_the_constructors_defaults(name):
    """conf/model/<name>.yaml extends the schema, which is derived from the constructor:
    each default is written once, in the class's signature."""
    module = importlib.import_module(f"mnist_lab.models.{name}")
    node = OmegaConf.load(CONF / "model" / f"{name}.yaml")
    assert list(node.pop("defaults")) == [f"/schema/model/{name}@_here_", "_self_"]
    assert OmegaConf.to_container(node) == {}
    (schema,) = module.SCHEMAS.values()
    cls = getattr(module, schema._target_.rpartition(".")[2])
    defaults = {k: list(p.default) if isinstance(p.default, tuple) else p.default
                for k, p in inspect.signature(cls).parameters.items()
                if k not in ("in_shape", "num_classes")}
    target, kwargs = MODELS[name]
    assert (target, kwargs) == (schema._target_, defaults)
    assert type(make(name)).__name__ == target.rsplit(".", 1)[1]


def test_parameter_counts():
    """The counts the docstrings and the README state, from the built models."""
    assert n_params(make("mlp")) == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10 == 235_146
    assert n_params(make("resnet")) == 77_738
    assert n_params(make("mlp-logistic")) == 7_850


def test_lenet5_layers_have_the_papers_trainable_parameters():
    """LeCun et al. 1998, section II.B: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164."""
    model = make("lenet5")
    trainable = {name: sum(int((p != 0).sum()) if name == "c3" else p.numel()
                           for p in layer.parameters())
                 for name, layer in model.named_children()}
    assert trainable == {"c1": 156, "s2": 12, "c3": 1_516, "s4": 32, "c5": 48_120,
                         "f6": 10_164, "out": 850}
    assert sum(len(maps) for maps in C3_TABLE) == 60 and len(set(C3_TABLE)) == 16
    # Table I, row by row: the C3 maps that S2 map 0 (then 1) feeds.
    fed_by = [[m for m, maps in enumerate(C3_TABLE) if s2 in maps] for s2 in (0, 1)]
    assert fed_by == [[0, 4, 5, 6, 9, 10, 11, 12, 14, 15], [0, 1, 5, 6, 7, 10, 11, 12, 13, 15]]


def test_lenet5_unconnected_c3_weights_stay_zero_while_training():
    model = make("lenet5").train()
    unconnected = model.c3_mask.expand_as(model.c3.weight) == 0
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(3):
        loss = F.nll_loss(model(torch.randn(16, *IN_SHAPE)), torch.arange(16) % NUM_CLASSES)
        optimizer.zero_grad()
        loss.backward()
        assert model.c3.weight.grad[unconnected].abs().max() == 0
        optimizer.step()
    assert int(unconnected.sum()) == 16 * 6 * 25 - 60 * 25
    assert (model.c3.weight[unconnected] == 0).all() and (model.c3.weight[~unconnected] != 0).all()


def test_lenet5_squashing_function_is_the_papers():
    """Appendix A: f(a) = 1.7159 tanh(2a/3), chosen so that f(+-1) = +-1."""
    a = torch.tensor([-1.0, 0.0, 1.0, 100.0])
    torch.testing.assert_close(scaled_tanh(a), torch.tensor([-1.0, 0.0, 1.0, 1.7159]),
                               atol=1e-4, rtol=0)


def test_lenet5_starts_from_the_papers_initialisation():
    """Section II.B: weights uniform in +-2.4/F_i, F_i the fan-in (C3: its Table I inputs)."""
    model = make("lenet5")
    bounds = {"c1": 2.4 / 25, "s2": 2.4 / 4, "s4": 2.4 / 4, "c5": 2.4 / 400, "f6": 2.4 / 120,
              "out": 2.4 / 84}
    for name, bound in bounds.items():
        weight = getattr(model, name).weight.detach()
        assert weight.abs().max() <= bound and weight.abs().max() > 0.8 * bound, name
    c3_bounds = torch.tensor([2.4 / (25 * len(maps)) for maps in C3_TABLE])
    c3_max = model.c3.weight.detach().abs().amax(dim=(1, 2, 3))
    assert (c3_max <= c3_bounds).all() and (c3_max > 0.8 * c3_bounds).all()


@pytest.mark.parametrize("name", OURS)
def test_preset_composes_with_its_model_and_optimizer_settings(name):
    cfg = compose_config([f"experiment={name}"])
    node = OmegaConf.load(CONF / "experiment" / f"{name}.yaml")
    assert cfg.model._target_ == MODELS[name][0]
    assert cfg.scheduler == compose_config([f"scheduler={node.defaults[1]['override /scheduler']}"]
                                           ).scheduler
    assert cfg.optimizer.lr == node.optimizer.lr and cfg.data.normalize is True
    model = instantiate(cfg.model, in_shape=IN_SHAPE, num_classes=NUM_CLASSES)
    assert type(model) is type(make(name))


@pytest.mark.parametrize("name, override", [("mlp", "model.hidden=abc"),
                                            ("mlp", "model.dropout=high"),
                                            ("lenet5", "model.c3_table=maybe"),
                                            ("resnet", "model.blocks=1.5")])
def test_wrong_types_fail_at_composition(name, override):
    with pytest.raises(ConfigCompositionException, match=override.split("=")[0]):
        compose_config([f"model={name}", override])


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO)
def test_trains_200_steps_and_its_checkpoint_serves_evaluate_and_predict(name, data_root,
                                                                         tmp_path, capsys):
    """Each model option, with its preset: 200 real steps, then rebuilt from checkpoint.pt."""
    run_dir = tmp_path / "run"
    run_training(run_dir, [*PRESETS[name], "trainer.max_steps=200", "trainer.eval_every=100",
                           "trainer.progress=false", "logger=none"])
    summary = RunRecord(run_dir).read_summary()
    rows = RunRecord(run_dir).read_metrics()
    assert summary["status"] == "completed" and [r["step"] for r in rows] == [100, 200]
    assert summary["config"]["model"]["_target_"] == MODELS[name][0]
    # Learning, well past chance (0.9); lenet5's small initial weights start slowest (0.24).
    assert rows[-1]["train/error"] < rows[0]["train/error"], rows
    assert rows[-1]["val/error"] < 0.3 and summary["test/error"] < 0.3, (rows, summary)
    loaded = load_model(run_dir)
    assert type(loaded.model) is type(make(name)) and not loaded.model.training
    assert evaluate_run(run_dir, data_root).error == summary["test/error"]
    images, _ = load_mnist_test(data_root)
    paths = make_user_style_files(images[5000:5003], tmp_path / "digits", ("png",))
    assert predict_main([str(run_dir), *map(str, paths), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["file"] for r in rows] == list(map(str, paths))
    assert all(r["digit"] in "0123456789" and 0 < float(r["probability"]) <= 1 for r in rows)
