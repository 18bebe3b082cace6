"""The saved-model formats: ``checkpoint.pt`` and ``best.pt`` as typed structures.

:class:`Checkpoint` is what a run saves (``to_dict``) and reads back
(``from_dict``); :class:`ModelSpec` is the part that rebuilds the model from the
file alone: the class's import path (Hydra's ``_target_``), its keyword
arguments, what the data supplied (input shape, classes) and the input
normalisation. Files hold plain containers and tensors, so
``torch.load(..., weights_only=True)`` reads them.

Format 3 records the input normalisation per channel (datasets of any channel
count); format 2 recorded one mean and one std; format 1 (written before models
were built from ``_target_``) named a model of a fixed registry (``convnet``) and an
optimizer (``sgd``). :func:`Checkpoint.from_dict` reads all three, so older runs
still load in predict, evaluate and resume (their saved configs are upgraded by
:func:`mnist_lab.config.settings.upgrade`).

Torch-free at import (only the loaded values are tensors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UserError

FORMAT_VERSION = 3
READABLE = (1, 2, 3)
# Format 1's fixed registries, as the code that wrote them had them.
V1_MODELS = {"convnet": "mnist_lab.models.convnet.ConvNet"}
V1_OPTIMIZERS = {"sgd": "torch.optim.SGD"}


@dataclass(frozen=True)
class ModelSpec:
    """What rebuilds a trained model from a file alone.

    Attributes:
        target: import path of the ``nn.Module`` class (Hydra's ``_target_``).
        kwargs: the constructor's own keyword arguments.
        in_shape: (C, H, W) of one input, from the data. num_classes: outputs.
        classes: class names, index = output index ("0".."9" for MNIST).
        mean, std: per channel, input = (pixel / 255 - mean[c]) / std[c] (format 2 held
            one number each, read as one channel's).
    """

    target: str
    kwargs: dict[str, Any]
    in_shape: tuple[int, ...]
    num_classes: int
    classes: tuple[str, ...]
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "kwargs": dict(self.kwargs),
                "in_shape": list(self.in_shape), "num_classes": self.num_classes,
                "classes": list(self.classes), "mean": [float(m) for m in self.mean],
                "std": [float(s) for s in self.std]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelSpec":
        per_channel = lambda v: (float(v),) if isinstance(v, (int, float)) else tuple(  # noqa
            float(x) for x in v)
        return cls(d["target"], dict(d["kwargs"]), tuple(int(s) for s in d["in_shape"]),
                   int(d["num_classes"]), tuple(str(c) for c in d["classes"]),
                   per_channel(d["mean"]), per_channel(d["std"]))


@dataclass
class Checkpoint:
    """A saved model: weights and description; for ``checkpoint.pt`` also what resumes it.

    Attributes:
        step: training steps the weights had. saved_at: ISO 8601 time.
        model: :class:`ModelSpec`. model_state: the model's ``state_dict``.
        config: the run's resolved config, as plain containers.
        optimizer_state, scheduler_state, rng, loop: resuming state (``checkpoint.pt``
            only; None in ``best.pt``).
        val_error: validation error (fraction) of these weights (``best.pt`` only).
    """

    step: int
    saved_at: str
    model: ModelSpec
    model_state: dict[str, Any]
    config: dict[str, Any]
    optimizer_state: dict[str, Any] | None = None
    scheduler_state: dict[str, Any] | None = None
    rng: dict[str, Any] | None = None
    loop: dict[str, Any] | None = None
    val_error: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain containers and tensors, with ``format_version``."""
        d = {"format_version": FORMAT_VERSION, "step": self.step, "saved_at": self.saved_at,
             "model": self.model.to_dict(), "model_state": self.model_state,
             "config": self.config}
        optional = {"optimizer_state": self.optimizer_state, "scheduler_state":
                    self.scheduler_state, "rng": self.rng, "loop": self.loop,
                    "val/error": self.val_error}
        return {**d, **{k: v for k, v in optional.items() if v is not None}}

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "checkpoint") -> "Checkpoint":
        """Read formats 2 and 3, or upgrade format 1.

        Raises:
            UserError: a format this version does not know (a newer mnist_lab's), or a
                file that lacks what its format holds (not a mnist_lab checkpoint).
        """
        version = d.get("format_version")
        if version not in READABLE:
            raise UserError(f"{source} has format version {version!r}; this mnist_lab reads "
                            f"versions {', '.join(map(str, READABLE))}. Use the mnist_lab that "
                            "wrote it.")
        try:
            d = upgrade_v1(d) if version == 1 else d
            return cls(int(d["step"]), d["saved_at"], ModelSpec.from_dict(d["model"]),
                       d["model_state"], d["config"], d.get("optimizer_state"),
                       d.get("scheduler_state"), d.get("rng"), d.get("loop"),
                       d.get("val/error"))
        except (KeyError, TypeError, ValueError) as error:
            raise UserError(f"{source} is not a complete mnist_lab checkpoint (format "
                            f"{version}; {type(error).__name__}: {error}).") from None


def upgrade_v1(d: dict[str, Any]) -> dict[str, Any]:
    """A format-1 file's contents in format 2 (model and optimizer by ``_target_``), which
    :meth:`Checkpoint.from_dict` reads."""
    model, inputs = d["model"], d["input"]
    spec = {"target": V1_MODELS[model["name"]], "kwargs": model["kwargs"],
            "in_shape": model["in_shape"], "num_classes": model["num_classes"],
            "classes": d["classes"], "mean": inputs["mean"], "std": inputs["std"]}
    return {**d, "format_version": 2, "model": spec, "config": upgrade_v1_config(d["config"])}


def upgrade_v1_config(config: dict[str, Any]) -> dict[str, Any]:
    """A format-1 run config: ``model.name``/``optimizer.name`` become ``_target_``."""
    model = {k: v for k, v in config["model"].items() if k != "name"}
    optimizer = {k: v for k, v in config["optimizer"].items() if k != "name"}
    return {**config, "model": {"_target_": V1_MODELS[config["model"]["name"]], **model},
            "optimizer": {"_target_": V1_OPTIMIZERS[config["optimizer"]["name"]], **optimizer}}
