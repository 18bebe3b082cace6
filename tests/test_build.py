"""Building models from a recorded ``_target_``: imported code is checked, errors are clear."""

import pytest

from mnist_lab.models.build import build_model, load_model, model_class
from mnist_lab.record.checkpoint import Checkpoint
from mnist_lab.errors import ConfigError, UserError
from mnist_lab.models.convnet import ConvNet


def test_mnist_labs_own_models_load_as_they_are():
    assert model_class("mnist_lab.models.convnet.ConvNet") is ConvNet


@pytest.mark.parametrize("target,message", [
    ("collections.OrderedDict", "is not a torch.nn.Module subclass"),
    ("no_such_module_here.Model", "no module 'no_such_module_here' on the Python path"),
    ("mnist_lab.models.convnet.NoSuchClass", "cannot be imported"),
])
def test_a_target_that_is_not_a_model_is_refused(target, message):
    with pytest.raises(UserError, match=message):
        model_class(target)


def test_constructor_errors_name_the_class_and_model_checks_keep_their_message():
    with pytest.raises(UserError, match=r"model torch.nn.Linear with \{\}: TypeError"):
        build_model("torch.nn.Linear", {}, (1, 28, 28), 10)
    with pytest.raises(ConfigError, match=r"model.depth=\[\]: must be a non-empty list"):
        build_model("mnist_lab.models.convnet.ConvNet", {"depth": []}, (1, 28, 28), 10)


def test_an_outside_model_logs_the_module_it_imports(tmp_path, monkeypatch, caplog):
    (tmp_path / "outside_models.py").write_text(
        "import torch\n\nclass Net(torch.nn.Module):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    caplog.set_level("INFO")
    assert model_class("outside_models.Net").__name__ == "Net"
    assert f"Importing model class outside_models.Net from {tmp_path / 'outside_models.py'}" \
        in caplog.text


def test_a_target_nested_in_the_arguments_is_never_called(tmp_path):
    """A saved file's arguments are data: a nested ``_target_`` must not run code."""
    planted = {"_target_": "os.makedirs", "name": str(tmp_path / "made_by_a_saved_file")}
    with pytest.raises(UserError, match="unexpected keyword argument 'extra'"):
        build_model("mnist_lab.models.convnet.ConvNet", {"depth": [4, 8], "extra": planted},
                    (1, 28, 28), 10)
    assert not (tmp_path / "made_by_a_saved_file").exists()


def test_load_model_refuses_unknown_weights(tmp_path):
    with pytest.raises(ValueError, match="weights='last': choose one of final, best"):
        load_model(tmp_path, weights="last")


def test_a_file_that_is_not_a_complete_checkpoint_gets_one_line():
    with pytest.raises(UserError, match=r"x\.pt is not a complete mnist_lab checkpoint "
                                        r"\(format 2; KeyError: 'saved_at'\)"):
        Checkpoint.from_dict({"format_version": 2, "step": 3}, "x.pt")


@pytest.mark.parametrize("data", [b"hello world", b"", b"PK\x03\x04 not a zip", b"\x00" * 100])
def test_a_damaged_checkpoint_gets_one_plain_line(tmp_path, data):
    (tmp_path / "checkpoint.pt").write_bytes(data)
    with pytest.raises(UserError) as info:
        load_model(tmp_path)
    message = str(info.value)
    assert message.startswith(f"'{tmp_path / 'checkpoint.pt'}' cannot be read as a mnist_lab "
                              "checkpoint.pt (") and message.endswith("truncated or damaged.")
    reason = message.split("(", 1)[1].rsplit(")", 1)[0]
    assert not reason.isdigit() and "weights_only` set to `False" not in message
