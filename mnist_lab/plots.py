"""Matplotlib figures shared by the local record, W&B and run comparisons.

Figures are made with ``matplotlib.figure.Figure`` (no pyplot state, no display
needed). Error rates arrive as fractions and are shown as percentages. Image
grids are laid out with ``torchvision.utils.make_grid``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, PercentFormatter
from torchvision.utils import make_grid

MAX_CHANNELS = 16  # feature maps shown per conv layer


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` (the format from the suffix, e.g. PNG at 100 dpi); return the path.

    Raises:
        ValueError: a suffix matplotlib cannot write.
    """
    path = Path(path)
    if path.suffix.lstrip(".").lower() not in fig.canvas.get_supported_filetypes():
        raise ValueError(f"cannot write a figure as '{path}': use .png, .pdf or .svg")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def to_rgb(fig: Figure) -> np.ndarray:
    """Render ``fig`` to a uint8 (H, W, 3) RGB array (for W&B images)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _error_axes(fig: Figure, title: str):
    ax = fig.add_subplot()
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=1))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("step")
    ax.set_ylabel("error rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    return ax


def _marker(rows: Sequence) -> str | None:
    """Dots where a curve has few points (a single point draws no line)."""
    return "o" if len(rows) < 20 else None


def error_curves(rows: Sequence[dict[str, float]], title: str = "Error rates") -> Figure:
    """``train/error`` and ``val/error`` (in %) against the training step."""
    fig = Figure(figsize=(7, 4.5))
    ax = _error_axes(fig, title)
    steps = [r["step"] for r in rows]
    for key in ("train/error", "val/error"):
        ax.plot(steps, [100 * r[key] for r in rows], label=key, marker=_marker(rows))
    ax.legend()
    return fig


def val_error_overlay(runs: dict[str, Sequence[dict[str, float]]],
                      title: str = "val/error of each run") -> Figure:
    """The ``val/error`` curve (in %) of several runs on one figure, labelled by run."""
    fig = Figure(figsize=(8, 5))
    ax = _error_axes(fig, title)
    for label, rows in runs.items():
        if rows:
            ax.plot([r["step"] for r in rows], [100 * r["val/error"] for r in rows], label=label,
                    marker=_marker(rows))
    if runs:
        ax.legend(fontsize="small")
    return fig


def uint8_grid(images: torch.Tensor, nrow: int = 8, padding: int = 1) -> np.ndarray:
    """Images (N, H, W) or (N, 1, H, W), any float range → one uint8 (H', W') grid.

    Each image is scaled to 0..255 on its own (min → 0, max → 255), so weak
    feature maps stay visible; a constant image becomes 0. Used for W&B images,
    which wandb 0.31 no longer rescales.
    """
    x = images.detach().float().cpu()
    x = x.unsqueeze(1) if x.dim() == 3 else x
    grid = make_grid(x, nrow=nrow, padding=padding, normalize=True, scale_each=True, pad_value=1)
    return (grid[0] * 255).round().to(torch.uint8).numpy()


def feature_maps(maps: Sequence[torch.Tensor], max_channels: int = MAX_CHANNELS) -> Figure:
    """One panel per conv layer: its first ``max_channels`` maps for one image.

    Args:
        maps: per layer a float tensor (C_i, H_i, W_i) (after ReLU, before pooling).
    """
    fig = Figure(figsize=(3.2 * len(maps), 3.6))
    for i, m in enumerate(maps):
        shown = m[:max_channels]
        ax = fig.add_subplot(1, len(maps), i + 1)
        ax.imshow(uint8_grid(shown, nrow=int(np.ceil(np.sqrt(len(shown))))), cmap="gray")
        ax.set_title(f"conv{i + 1}: {len(shown)} of {m.shape[0]} maps, {m.shape[1]}x{m.shape[2]}")
        ax.axis("off")
    return fig


def filter_evolution(history, points: int = 5) -> Figure:
    """The first conv layer's filters at ``points`` snapshots spread over training.

    Args:
        history: a :class:`~mnist_lab.snapshots.WeightsHistory` with snapshots.
    """
    state = history.state_dict()
    steps, weights = state["steps"].tolist(), state["weights"][0]  # (S, C_out, C_in, k, k)
    picks = sorted(set(np.linspace(0, len(steps) - 1, min(points, len(steps))).round().astype(int)))
    fig = Figure(figsize=(2.6 * len(picks), 3))
    for col, i in enumerate(picks):
        w = weights[i]
        filters = w.reshape(-1, 1, *w.shape[-2:])[:MAX_CHANNELS]
        ax = fig.add_subplot(1, len(picks), col + 1)
        ax.imshow(uint8_grid(filters, nrow=int(np.ceil(np.sqrt(len(filters))))), cmap="gray")
        ax.set_title(f"step {steps[i]}")
        ax.axis("off")
    fig.suptitle("conv1 filters during training")
    return fig


def confusion(matrix: torch.Tensor, classes: Sequence[str]) -> Figure:
    """Confusion matrix counts (rows: true class, columns: predicted class)."""
    m = matrix.cpu().numpy()
    fig = Figure(figsize=(6, 5.5))
    ax = fig.add_subplot()
    ax.imshow(np.log1p(m), cmap="Blues")
    for (i, j), count in np.ndenumerate(m):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                    color="white" if i == j else "black")
    ticks = range(len(classes))
    ax.set_xticks(ticks, classes)
    ax.set_yticks(ticks, classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    errors = int(m.sum() - np.trace(m))
    ax.set_title(f"test confusion matrix: {errors} of {int(m.sum())} wrong")
    return fig
