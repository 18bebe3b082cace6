"""What the app shows for an input, without Gradio: plain functions the page's events call.

Three steps, so that moving the history slider or picking another model does not
prepare the image again: an input (the canvas, an uploaded file, a webcam frame)
becomes a :class:`~.prepare.Prepared` 28x28 image or a one-line message
(:func:`from_canvas`, :func:`from_file`, :func:`from_camera`); :func:`answer` gives
every model's verdict on it; :func:`inside` the chosen model's feature maps and
first-layer filters at one position of its training history.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .figures import feature_maps_image, filters_image, seen_image
from .runs import AppRun
from ..recognise.images import ImageError
from ..recognise.predict import unsure_note
from ..recognise.prepare import Prepared, prepare_colour, prepare_image

MAX_UPLOAD_MB = 25
DRAW = "Draw a digit on the canvas."


def from_canvas(value) -> Prepared | str:
    """The Sketchpad's value (a dict whose ``composite`` is (H, W, 4) uint8, or an array).

    An empty canvas (nothing drawn, or nothing that stands out) gives :data:`DRAW`.
    """
    image = value.get("composite") if isinstance(value, dict) else value
    if image is None or np.ptp(np.asarray(image)) == 0:  # nothing drawn: one colour
        return DRAW
    try:
        return prepare_colour(np.asarray(image), source="canvas")
    except ImageError:
        return DRAW


def from_file(path: str | Path | None, name: str | None = None) -> Prepared | str:
    """An uploaded file; a one-line message when it is not a readable image or too large."""
    if not path:
        return "Upload a photo or an image of one handwritten digit."
    path, name = Path(path), name or Path(path).name
    size_mb = path.stat().st_size / 2**20
    if size_mb > MAX_UPLOAD_MB:
        return (f"{name}: {size_mb:.0f} MB is too large: the app reads images up to "
                f"{MAX_UPLOAD_MB} MB; crop or shrink the photo.")
    try:
        return prepare_image(path)
    except ImageError as error:
        return str(error).replace(str(path), name, 1)
    except Exception as error:  # noqa: BLE001 - a page must answer every input in one line
        return f"{name}: cannot prepare: {type(error).__name__}: {error}"


def from_camera(frame: np.ndarray | None) -> Prepared | str:
    """A webcam frame, (H, W, 3) uint8; a message when there is none or no digit in it."""
    if frame is None:
        return "Take a photo of a handwritten digit with the webcam."
    try:
        return prepare_colour(np.asarray(frame), source="webcam photo")
    except ImageError as error:
        return str(error)


@dataclass
class Answer:
    """What the page shows for one input and the chosen model.

    ``probabilities``: class name -> probability in [0, 1] (None without an image);
    ``seen``: uint8 (224, 224) enlarged 28x28 image the model saw; texts in Markdown.
    """

    verdict: str
    probabilities: dict[str, float] | None = None
    seen: np.ndarray | None = None
    notes: str = ""
    comparison: str = ""


def verdict(classes: tuple, probs: np.ndarray) -> str:
    """'**7** (probability 98.1 %)', and the unsure note with the runner-up under 0.8."""
    order = np.argsort(-probs)
    top = [(str(classes[i]), float(probs[i])) for i in order[:2]]
    text = f"Prediction: **{top[0][0]}** (probability {100 * top[0][1]:.1f} %)"
    note = unsure_note(top)
    return text + (f"  \nThe model is {note}." if note else "")


def answer(runs: list[AppRun], chosen: int, prepared: Prepared | str | None) -> Answer:
    """Verdict, probabilities and notes of run ``chosen``, and every run's answer."""
    if not isinstance(prepared, Prepared):
        return Answer(prepared or DRAW)
    run = runs[chosen]
    probs = run.probabilities(prepared.image)
    notes = "\n".join(f"- {w}" for w in prepared.warnings) or "No warnings."
    rows = []
    for i, other in enumerate(runs):
        p = probs if i == chosen else other.probabilities(prepared.image)
        first, second = np.argsort(-p)[:2]
        classes = other.loaded.classes
        rows.append(f"| {'**' if i == chosen else ''}{other.label}{'**' if i == chosen else ''} "
                    f"| {classes[first]} | {100 * p[first]:.1f} % | {classes[second]} "
                    f"({100 * p[second]:.1f} %) |")
    comparison = ("| model | answer | probability | runner-up |\n| --- | --- | --- | --- |\n"
                  + "\n".join(rows)) if len(runs) > 1 else ""
    return Answer(verdict(run.loaded.classes, probs),
                  {str(c): float(v) for c, v in zip(run.loaded.classes, probs)},
                  seen_image(prepared.image), notes, comparison)


@dataclass
class Inside:
    """The chosen model's insides at one history position: RGB pictures and their words."""

    maps: np.ndarray | None
    maps_note: str
    filters: np.ndarray | None
    history_note: str


def history_text(run: AppRun, position: int) -> str:
    """'Step 1,200 of 5,628: validation error 0.84 %' (and the run's note on its history)."""
    if not run.history:
        return run.history_note
    snap, last = run.history[position], run.history[-1]
    error = "not recorded" if snap.val_error is None else f"{100 * snap.val_error:.2f} %"
    which = "the final weights" if snap.convs is None else "snapshot"
    text = f"Step {snap.step:,} of {last.step:,} ({which}): validation error {error}."
    return text + (f"  \n{run.history_note}" if run.history_note else "")


def inside(run: AppRun, prepared: Prepared | str | None, position: int) -> Inside:
    """Feature maps of the input and conv1's filters with the weights at ``position``."""
    if not run.has_maps:
        return Inside(None, run.no_maps_note(), None, run.no_maps_note())
    position = min(max(int(position), 0), max(len(run.history) - 1, 0))
    step = run.history[position].step if run.history else run.loaded.step
    if position not in run.filter_pictures:  # drawn once: they change with the slider only
        run.filter_pictures[position] = filters_image(run.first_filters(position), step)
    filters = run.filter_pictures[position]
    if not isinstance(prepared, Prepared):
        return Inside(None, "Feature maps appear once there is a digit.", filters,
                      history_text(run, position))
    maps, scales = feature_maps_image(run.feature_maps(prepared.image, position))
    return Inside(maps, f"Feature maps at step {step:,}, each layer on one scale: {scales}.",
                  filters, history_text(run, position))
