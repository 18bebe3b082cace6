"""The app's pictures as RGB arrays: feature maps, filters, the 28x28 image the model saw.

Feature maps and filters reuse :mod:`mnist_lab.plots`: every layer (or snapshot) on one
shared colour scale, drawn as a colour bar and stated in the title, so a weak map looks
weak and two snapshots' filters can be compared by their scales.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from .. import plots

SEEN_ZOOM = 8  # the 28x28 image is shown 224x224, each pixel a square


def seen_image(image: np.ndarray) -> np.ndarray:
    """uint8 (28, 28) -> uint8 (224, 224): each pixel an 8x8 square (no smoothing)."""
    return np.kron(image, np.ones((SEEN_ZOOM, SEEN_ZOOM), np.uint8))


def feature_maps_image(maps: list[torch.Tensor]) -> tuple[np.ndarray, str]:
    """Per conv layer float32 (C_i, H_i, W_i) maps -> (uint8 (H, W, 3) picture, scale words).

    The words list each layer's shared scale: ``"conv1: shared scale 0 to 1.2; ..."``.
    """
    fig = plots.feature_maps(maps)
    scales = [f"conv{i + 1}: {plots.scale_text(plots.shared_range(m[:plots.MAX_CHANNELS]))}"
              for i, m in enumerate(maps)]
    return plots.to_rgb(fig), "; ".join(scales)


def filters_image(weights: torch.Tensor, step: int) -> np.ndarray:
    """First conv layer's weights (C_out, C_in, k, k) at ``step`` -> uint8 (H, W, 3) RGB.

    One scale for all the filters, symmetric about 0 (weights are signed), stated in the
    title.
    """
    filters = weights.reshape(-1, *weights.shape[-2:])[:plots.MAX_CHANNELS * 2]
    value_range = plots.shared_range(filters, signed=True)
    fig = Figure(figsize=(4.2, 3.6), layout="constrained")
    ax = fig.add_subplot()
    plots.scaled_panel(fig, ax, filters, value_range, "coolwarm")
    ax.set_title(f"conv1 filters at step {step}\n{plots.scale_text(value_range)}",
                 fontsize="medium")
    return plots.to_rgb(fig)
