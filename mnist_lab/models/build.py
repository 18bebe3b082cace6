"""Building models: from a run's config for training, from a saved file for inference.

Models are built with Hydra's ``hydra.utils.instantiate`` from their ``_target_``
and keyword arguments; the data supplies ``in_shape`` and ``num_classes``. A
saved file names its model class, which is code that gets imported, so: the
classes of ``mnist_lab`` load as they are; a class from elsewhere loads only if
it is an ``nn.Module`` subclass, and the module it comes from is logged before
it is imported.

Torch and Hydra only (no torchvision): predict and the app load fast.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from hydra.utils import get_class, instantiate
from torch import nn

from ..record.checkpoint import ModelSpec
from ..errors import ConfigError, UserError
from ..data.normalization import Normalization
from ..record.folder import BEST, CHECKPOINT, RunRecord

log = logging.getLogger(__name__)
WEIGHTS = ("final", "best")  # checkpoint.pt, best.pt


@functools.cache
def _log_import(target: str, origin: str | None) -> None:
    """Say once per process which file an outside model class is imported from."""
    log.info("Importing model class %s from %s", target, origin)


def model_class(target: str) -> type[nn.Module]:
    """Import the class ``target`` names (``module.Class``) and check it is a model.

    Raises:
        UserError: it cannot be imported, or it is not an ``nn.Module`` subclass.
    """
    module = target.rpartition(".")[0]
    if not target.startswith("mnist_lab."):
        spec = importlib.util.find_spec(module) if module else None
        if spec is None:
            raise UserError(f"model class {target!r}: no module {module!r} on the Python path. "
                            "Install it or add its folder to PYTHONPATH.")
        _log_import(target, spec.origin)
    try:
        cls = get_class(target)
    except Exception as error:  # ImportError, AttributeError, or an error in the module
        raise UserError(f"model class {target!r} cannot be imported: "
                        f"{' '.join(str(error).split())}") from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise UserError(f"{target!r} is not a torch.nn.Module subclass, so it is not loaded as "
                        "a model. Point _target_ at your model class.")
    return cls


def build_model(target: str, kwargs: dict[str, Any], in_shape: Sequence[int],
                num_classes: int) -> nn.Module:
    """A new model: ``Class(in_shape=..., num_classes=..., **kwargs)`` via ``instantiate``.

    ``kwargs`` are plain values: a ``_target_`` nested in them is passed on as a dict,
    never called (``_recursive_=False``), so a saved file can name no code but the
    model class, which :func:`model_class` checks.

    Raises:
        ConfigError: the model's own value checks refused an argument.
        UserError: the class cannot be imported, or its constructor refused the
            arguments (the message names the class and the error).
    """
    model_class(target)
    try:
        return instantiate({"_target_": target, **kwargs}, in_shape=tuple(in_shape),
                           num_classes=num_classes, _convert_="all", _recursive_=False)
    except Exception as error:
        cause = error.__cause__ or error  # instantiate wraps the constructor's error
        if isinstance(cause, ConfigError):
            raise cause from None
        raise UserError(f"model {target} with {kwargs}: {type(cause).__name__}: "
                        f"{' '.join(str(cause).split())}") from None


def build_saved(spec: ModelSpec) -> nn.Module:
    """The model a :class:`~mnist_lab.record.checkpoint.ModelSpec` describes (untrained weights)."""
    return build_model(spec.target, spec.kwargs, spec.in_shape, spec.num_classes)


@dataclass(frozen=True)
class LoadedModel:
    """A trained model rebuilt from a saved file, ready for inference.

    Attributes:
        model: in eval mode on the requested device; returns log-probabilities.
        norm: the input normalisation the model was trained with.
        classes: class names, index = output index ("0".."9" for MNIST).
        in_shape: (C, H, W) the model expects.
        step: training steps the weights had when saved.
        config: the run's resolved config (plain containers).
    """

    model: nn.Module
    norm: Normalization
    classes: tuple
    in_shape: tuple
    step: int
    config: dict


def load_model(run_dir: str | Path, device: str | torch.device = "cpu",
               weights: str = "final") -> LoadedModel:
    """Rebuild the model of a run from its ``checkpoint.pt`` (or ``best.pt``) alone.

    Args:
        weights: ``final`` (``checkpoint.pt``, the latest weights) or ``best``
            (``best.pt``, the weights with the lowest validation error).

    Raises:
        ValueError: ``weights`` is not one of :data:`WEIGHTS`.
        UserError: ``run_dir`` has no such file, or it is damaged, or its model
            class cannot be loaded.
    """
    if weights not in WEIGHTS:
        raise ValueError(f"weights={weights!r}: choose one of {', '.join(WEIGHTS)}")
    record = RunRecord(run_dir)
    found = record.has_best() if weights == "best" else record.has_checkpoint()
    if not found:
        name = BEST if weights == "best" else CHECKPOINT
        raise UserError(
            f"No {name} in '{run_dir}': give the directory of a run that trained "
            "(e.g. outputs/2026-11-29/10-15-02_123456)"
            + (" and evaluated at least once." if weights == "best" else ".")
        )
    saved = (record.load_best(map_location=device) if weights == "best"
             else record.load_checkpoint(map_location=device))
    model = build_saved(saved.model)
    model.load_state_dict(saved.model_state)
    model.to(device=device, memory_format=torch.channels_last).eval()
    spec = saved.model
    return LoadedModel(model, Normalization(spec.mean, spec.std), spec.classes, spec.in_shape,
                       saved.step, saved.config)
