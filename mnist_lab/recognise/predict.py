"""Classify people's image files with a run's model: prepare each like MNIST, then predict.

Each image (a file, every image in a folder, recursively, or a glob) is prepared
like MNIST (:mod:`.prepare`) and classified by the run's model, rebuilt from its
checkpoint (:func:`~mnist_lab.models.build.load_model`), which also fixes the input
normalisation. Per image: the predicted digit, its probability and the top 3; a
bad file carries its one-line error instead.
"""

from __future__ import annotations

import glob
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from PIL import Image

from ..models.build import LoadedModel
from .images import ImageError
from .prepare import Prepared, prepare_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
BATCH = 256
TOP = 3
UNSURE_BELOW = 0.8  # top-1 probability under which the runner-up is named


def unsure_note(top: list[tuple[str, float]]) -> str | None:
    """'unsure between 4 (55 %) and 9 (41 %)' when the top probability is under
    :data:`UNSURE_BELOW`; None otherwise. ``top``: (class, probability) best first."""
    if len(top) < 2 or top[0][1] >= UNSURE_BELOW:
        return None
    (a, pa), (b, pb) = top[:2]
    return f"unsure between {a} ({100 * pa:.0f} %) and {b} ({100 * pb:.0f} %)"


@dataclass
class Prediction:
    """The result for one input: a prediction, or the error that stopped it.

    ``probability`` and the ``top`` probabilities are in [0, 1]; ``unsure`` (a note
    naming the runner-up) when the probability is under :data:`UNSURE_BELOW`.
    """

    path: str
    digit: str | None = None
    probability: float | None = None
    top: list[tuple[str, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    unsure: str | None = None


def expand(paths: Iterable[str]) -> Iterator[tuple[str, str | None]]:
    """(path, error) for every input: files as given, folders' images, glob matches.

    A name that neither exists nor matches anything yields an error, in order.
    """
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                yield name, f"{name}: no image files in this folder"
            yield from ((str(p), None) for p in found)
        elif path.exists() or not glob.has_magic(name):
            yield name, None if path.exists() else f"{name}: no such file or directory"
        else:
            matches = sorted(glob.glob(name, recursive=True))
            if not matches:
                yield name, f"{name}: no files match this pattern"
            yield from ((m, None) for m in matches if Path(m).is_file())


def _prepare(path: str) -> Prepared | ImageError:
    try:
        return prepare_image(path)
    except ImageError as error:
        return error


def prepare_all(paths: list[str], workers: int) -> list[Prepared | ImageError]:
    """Read and prepare every image; threads overlap the decoding (Pillow frees the GIL)."""
    if workers <= 1:
        return [_prepare(p) for p in paths]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(_prepare, paths, chunksize=8))


@torch.inference_mode()
def classify(loaded: LoadedModel, images: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """uint8 (N, 28, 28) prepared images → float32 (N, C) class probabilities."""
    probs = []
    for begin in range(0, len(images), BATCH):
        x = torch.from_numpy(images[begin : begin + BATCH]).unsqueeze(1).to(device)
        probs.append(loaded.model(loaded.norm.apply(x)).exp().cpu())
    return torch.cat(probs) if probs else torch.empty(0, len(loaded.classes))


def predict(loaded: LoadedModel, paths: list[str], device: str = "cpu", workers: int = 2,
            save_to: PreprocessedFolder | None = None) -> list[Prediction]:
    """Predictions for image files, in order; bad files carry their error.

    With ``save_to``, each readable image is also written there as the model saw
    it; a folder that cannot be written is recorded in ``save_to.problem`` and
    never costs a prediction.
    """
    prepared = prepare_all(paths, workers)
    good = [i for i, p in enumerate(prepared) if isinstance(p, Prepared)]
    images = (np.stack([prepared[i].image for i in good]) if good
              else np.empty((0, 28, 28), np.uint8))
    probs = classify(loaded, images, device)
    results = [Prediction(path, error=str(p)) if isinstance(p, ImageError) else Prediction(path)
               for path, p in zip(paths, prepared)]
    for row, i in enumerate(good):
        values, indices = probs[row].topk(min(TOP, probs.shape[1]))
        top = [(loaded.classes[j], round(float(v), 4)) for v, j in zip(values, indices.tolist())]
        results[i].digit, results[i].probability = top[0]
        results[i].top, results[i].warnings = top, list(prepared[i].warnings)
        results[i].unsure = unsure_note(top)
        if save_to is not None:
            save_to.save(prepared[i].image, i, paths[i])
    return results


class PreprocessedFolder:
    """The folder of ``--save-preprocessed``: the 28x28 images the model saw.

    It is created on the first image. The first write that fails (the path is a
    file or lies below one, no permission, a read-only or full disk) stops the
    saving; ``problem`` then says why in a few words, and :meth:`failure` gives
    the one-line error for the user.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.wanted = self.saved = 0
        self.problem: str | None = None

    def save(self, image: np.ndarray, index: int, source: str) -> None:
        """Write uint8 (28, 28) ``image`` as ``<index>_<source's stem>.png``.

        Does nothing once a write has failed (see ``problem``).
        """
        self.wanted += 1
        if self.problem is not None:
            return
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            out = self.path / f"{index:04d}_{Path(source).stem}.png"
            Image.fromarray(image, mode="L").save(out)
            self.saved += 1
        except OSError as error:
            self.problem = self._reason(error)

    def _reason(self, error: OSError) -> str:
        existing = next((p for p in (self.path, *self.path.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            return f"{existing} is a file, not a folder"
        return f"cannot be created or written ({error.strerror or error})"

    def failure(self) -> str | None:
        """One line for stderr when some image was not saved, else None."""
        if self.problem is None:
            return None
        return (f"--save-preprocessed {self.path}: {self.problem}; the predictions were printed, "
                f"but {self.saved} of {self.wanted} preprocessed images were saved")
