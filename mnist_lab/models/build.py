"""Building models: from a run's config for training, from a saved file for inference.

Models are built with Hydra's ``hydra.utils.instantiate`` from their ``_target_``
and keyword arguments; the data supplies ``in_shape`` and ``num_classes``. A
saved file names its model class, which is code that gets imported, so its name
must be trusted first (:mod:`mnist_lab.config.trust`: mnist_lab's own models, the
command's own config, or a prefix the user trusts), then the class must be an
``nn.Module`` subclass (:func:`~mnist_lab.config.parts.import_class`), and weights
that hold NaN or infinities are refused.

Torch and Hydra only (no torchvision): predict and the app load fast.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..record.checkpoint import ModelSpec
from ..config.parts import build, import_class
from ..config.trust import Trust
from ..errors import UserError
from ..data.normalization import Normalization
from ..record.folder import BEST, CHECKPOINT, RunRecord

log = logging.getLogger(__name__)
WEIGHTS = ("final", "best")  # checkpoint.pt, best.pt


def model_class(target: str) -> type[nn.Module]:
    """Import the model class ``target`` names (``module.Class``); it must be an ``nn.Module``.

    Only for a trusted target (the command's own config, or one checked with
    :class:`~mnist_lab.config.trust.Trust`): importing runs the module's code.

    Raises:
        UserError: it cannot be imported, or it is not an ``nn.Module`` subclass.
    """
    return import_class(target, "model")


def build_model(target: str, kwargs: dict[str, Any], in_shape: Sequence[int],
                num_classes: int) -> nn.Module:
    """A new model: ``Class(in_shape=..., num_classes=..., **kwargs)`` via ``instantiate``.

    ``kwargs`` are plain values: a ``_target_`` nested in them is passed on as a dict,
    never called, so a saved file can name no code but the model class, which is
    checked first (:func:`mnist_lab.config.parts.build`).

    Raises:
        ConfigError: the model's own value checks refused an argument.
        UserError: the class cannot be imported, or its constructor refused the
            arguments (the message names the class and the error).
    """
    return build({"_target_": target, **kwargs}, "model", in_shape=tuple(in_shape),
                 num_classes=num_classes)


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
               weights: str = "final", trust: Trust | None = None) -> LoadedModel:
    """Rebuild the model of a run from its ``checkpoint.pt`` (or ``best.pt``) alone.

    Args:
        weights: ``final`` (``checkpoint.pt``, the latest weights) or ``best``
            (``best.pt``, the weights with the lowest validation error).
        trust: the model classes that may be imported besides mnist_lab's own
            (default: ``MNIST_LAB_TRUST``'s prefixes, :meth:`Trust.from_env`).

    Raises:
        ValueError: ``weights`` is not one of :data:`WEIGHTS`.
        UserError: ``run_dir`` has no such file, or it is damaged, or its model
            class is not trusted or cannot be loaded, or its weights are not finite.
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
    source = f"'{record.dir / (BEST if weights == 'best' else CHECKPOINT)}'"
    (trust or Trust.from_env()).check(saved.model.target, "model", source)
    refuse_non_finite(saved.model_state, source)
    model = build_saved(saved.model)
    try:
        model.load_state_dict(saved.model_state)
    except (RuntimeError, TypeError, AttributeError) as error:
        raise UserError(f"{source} holds weights that do not fit its model "
                        f"{saved.model.target} ({str(error).splitlines()[0][:160]}): the file "
                        "is damaged or was altered.") from None
    model.to(device=device, memory_format=torch.channels_last).eval()
    spec = saved.model
    return LoadedModel(model, Normalization(spec.mean, spec.std), spec.classes, spec.in_shape,
                       saved.step, saved.config)


def refuse_non_finite(state: dict[str, Any], source: str) -> None:
    """Refuse a ``state_dict`` whose floating-point tensors hold NaN or infinities.

    Raises:
        UserError: naming the first such tensor and ``source``.
    """
    for name, tensor in state.items():
        if torch.is_tensor(tensor) and tensor.is_floating_point() and \
                not torch.isfinite(tensor).all():
            raise UserError(f"{source} holds weights that are not finite ({name} has NaN or "
                            "infinite values): the run diverged before they were saved, so "
                            "they cannot recognise anything. Use an earlier checkpoint or "
                            "train again with a lower optimizer.lr.")


DIGITS = tuple("0123456789")


def require_digits(loaded: LoadedModel, run_dir: str | Path) -> None:
    """Refuse a model that does not read MNIST-like digits (for predict and the app,
    which prepare people's images as 28x28 grey digits).

    Raises:
        UserError: the run was trained on other classes or another input shape.
    """
    if tuple(loaded.classes) != DIGITS or tuple(loaded.in_shape) != (1, 28, 28):
        shown = ", ".join(map(str, loaded.classes[:5])) + (", ..." if len(loaded.classes) > 5
                                                          else "")
        raise UserError(f"'{run_dir}' was trained on {'x'.join(map(str, loaded.in_shape))} "
                        f"images of the classes {shown}: predict and the app read handwritten "
                        "digits, prepared as MNIST's 1x28x28 grey images. Evaluate this run "
                        "with python -m mnist_lab.evaluate.")
