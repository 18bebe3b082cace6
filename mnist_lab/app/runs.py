"""The runs the app shows: models rebuilt from run folders, with their conv-weight history.

A run folder must hold ``checkpoint.pt``; a sweep folder stands for every run inside it
that does. The history (``weights_history.pt``: each conv layer's weight and bias at
evaluation steps, see :mod:`mnist_lab.training.snapshots`) is read without changing the run
folder, and joined with ``metrics.csv`` for the validation error at each step.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config.trust import Trust
from ..errors import UserError
from ..models.build import LoadedModel, load_model, require_digits
from ..record.folder import CHECKPOINT, HISTORY, RunRecord
from ..training.snapshots import history_mismatch

BN_NOTE = ("This model normalises each conv layer with batch normalisation; the snapshots "
           "hold conv weights and biases only, so past feature maps use today's "
           "normalisation statistics.")


@dataclass
class Snapshot:
    """One position of the history slider: a training step and that step's conv weights.

    ``convs`` holds (weight (C_out, C_in, k, k), bias (C_out,)) float32 per conv layer,
    or None for the run's final weights (the checkpoint); ``val_error`` is a fraction.
    """

    step: int
    val_error: float | None
    convs: list[tuple[torch.Tensor, torch.Tensor]] | None


@dataclass
class AppRun:
    """A run the app can show: its model, and its history (empty when there is none).

    ``key``: its folder, relative to the working directory when below it (the value
    API clients pass); ``label``: the key and a description of the model.
    ``history_note`` says why there is no history or what to bear in mind with it.
    """

    key: str
    label: str
    path: Path
    loaded: LoadedModel
    history: list[Snapshot] = field(default_factory=list)
    history_note: str = ""
    filter_pictures: dict[int, np.ndarray] = field(default_factory=dict)  # by position
    _past: torch.nn.Module | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def has_maps(self) -> bool:
        """Whether the model has conv layers to show (``feature_maps`` and ``conv_weights``)."""
        model = self.loaded.model
        return hasattr(model, "feature_maps") and hasattr(model, "conv_weights")

    def no_maps_note(self) -> str:
        """Why a model without convolutions shows no maps or filters."""
        return (f"{type(self.loaded.model).__name__} has no convolutional layers, so it has "
                "no feature maps or filters to show.")

    def inputs(self, image: np.ndarray) -> torch.Tensor:
        """uint8 (28, 28) prepared image -> float32 (1, 1, 28, 28) normalised model input."""
        device = next(self.loaded.model.parameters()).device
        return self.loaded.norm.apply(torch.from_numpy(image)[None, None].to(device))

    @torch.inference_mode()
    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """float32 (C,) class probabilities of a uint8 (28, 28) prepared image."""
        return self.loaded.model(self.inputs(image)).exp()[0].cpu().numpy()

    def feature_maps(self, image: np.ndarray, position: int) -> list[torch.Tensor]:
        """Per conv layer float32 (C_i, H_i, W_i), with the conv weights of ``position``.

        Only the conv weights and biases come from the snapshot; everything else (batch
        normalisation statistics included) is the final model's.
        """
        convs = self.history[position].convs if self.history else None
        if convs is None:
            return [m[0].cpu() for m in self.loaded.model.feature_maps(self.inputs(image))]
        with self._lock:  # one copy of the model per run, reloaded for each request
            if self._past is None:
                self._past = copy.deepcopy(self.loaded.model)
            with torch.no_grad():
                for (w, b), (sw, sb) in zip(self._past.conv_weights(), convs):
                    w.copy_(sw)
                    b.copy_(sb)
            return [m[0].cpu() for m in self._past.feature_maps(self.inputs(image))]

    def first_filters(self, position: int) -> torch.Tensor:
        """float32 (C_out, C_in, k, k): the first conv layer's weights at ``position``."""
        convs = self.history[position].convs if self.history else None
        if convs is None:
            return self.loaded.model.conv_weights()[0][0].detach().cpu()
        return convs[0][0]


def run_folders(paths: list[str | Path]) -> list[Path]:
    """The run folders to load: each path holding checkpoint.pt, or the runs in a sweep folder.

    Raises:
        UserError: a path does not exist, or holds no checkpoint.pt (at any depth).
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise UserError(f"Run folder '{path}' does not exist: give the folder of a run "
                            "(e.g. outputs/2026-11-29/10-15-02_123456) or of a sweep.")
        if (path / CHECKPOINT).is_file():
            found.append(path)
            continue
        inside = sorted(p.parent for p in path.rglob(CHECKPOINT) if p.is_file())
        if not inside:
            raise UserError(
                f"No {CHECKPOINT} in '{path}' (nor in any folder below it): the app needs a "
                "run that trained and saved a checkpoint. Give the folder of such a run, e.g. "
                "outputs/2026-11-29/10-15-02_123456, or a sweep folder holding them.")
        found.extend(inside)
    return list(dict.fromkeys(p.resolve() for p in found))


def read_history(run_dir: Path, loaded: LoadedModel) -> tuple[list[Snapshot], str]:
    """The slider positions of a run (snapshots, then the final weights) and a note.

    No history (no file, a damaged one, or a model without conv layers): ([], why).
    """
    path = run_dir / HISTORY
    if not path.is_file():
        return [], f"No {HISTORY} in this run: no training history to show."
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        steps = [int(s) for s in state["steps"]]
        layers = list(zip(state["weights"], state["biases"]))
    except Exception as error:  # noqa: BLE001 - a damaged file costs the slider only
        return [], f"{HISTORY} cannot be read ({' '.join(str(error).split())[:120]})."
    mismatch = history_mismatch(layers, len(steps), loaded.model.conv_weights())
    if mismatch:
        return [], f"{HISTORY} is not this model's history ({mismatch}): no history to show."
    record = RunRecord(run_dir)
    val = {int(r["step"]): r["val/error"] for r in record.read_metrics()}
    history = [Snapshot(s, val.get(s), [(w[i].float(), b[i].float()) for w, b in layers])
               for i, s in enumerate(steps) if s < loaded.step]
    history.append(Snapshot(loaded.step, val.get(loaded.step), None))
    norms = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)
    batch_norm = any(isinstance(m, norms) for m in loaded.model.modules())
    return history, BN_NOTE if batch_norm else ""


def describe(loaded: LoadedModel) -> str:
    """A few words on a model: its class, conv widths, parameters and training steps."""
    model = loaded.model
    widths = [w.shape[0] for w, _ in model.conv_weights()] if hasattr(model, "conv_weights") \
        else []
    params = sum(p.numel() for p in model.parameters())
    convs = f"conv {'-'.join(map(str, widths))}, " if widths else "no conv layers, "
    return f"{type(model).__name__}, {convs}{params:,} parameters, step {loaded.step}"


def _short(path: Path) -> str:
    """The path relative to the working directory when it lies below it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_runs(paths: list[str | Path], device: str = "cpu",
              trust: Trust | None = None) -> list[AppRun]:
    """Load every run of ``paths`` (see :func:`run_folders`) for the app.

    ``trust``: the model classes that may be imported besides mnist_lab's own
    (:func:`~mnist_lab.models.build.load_model`).

    Raises:
        UserError: a path without a checkpoint, or a damaged checkpoint.
    """
    runs = []
    for run_dir in run_folders(paths):
        loaded = load_model(run_dir, device, trust=trust)
        require_digits(loaded, run_dir)
        key = _short(run_dir)
        run = AppRun(key, f"{key}: {describe(loaded)}", run_dir, loaded)
        if run.has_maps:
            run.history, run.history_note = read_history(run_dir, loaded)
        runs.append(run)
    return runs
