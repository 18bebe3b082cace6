"""Matplotlib figures shared by the local record, W&B and run comparisons.

Figures are made with ``matplotlib.figure.Figure`` (no pyplot state, no display
needed). Error rates arrive as fractions and are shown as percentages. Image
grids are laid out as ``torchvision.utils.make_grid`` lays them out, in NumPy: torchvision
takes seconds to import, and the app draws these figures without it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import (FuncFormatter, Locator, LogLocator, MaxNLocator,
                               NullFormatter)

MAX_CHANNELS = 16  # feature maps shown per conv layer
PROBE_SHOWN = 4  # validation images whose feature maps the trackers log


class ErrorTicks(Locator):
    """Labelled ticks for a log-scale error axis in percent, readable at any range.

    Mantissas 1-2-3-5 per decade (1, 2, 3, 5, 10, 20 %...), or 1-2-5, or decades
    only, whichever is the densest whose closest labels stay 1.5 font heights
    apart (``axis.get_tick_space()`` counts labels two font heights apart); the
    ticks come from ``LogLocator``. Where that leaves fewer than 3 ticks in view
    (a range narrower than about half a decade, e.g. 5-9 %), ``AutoLocator``'s
    linear 1-2-2.5-5 steps instead (5, 5.5, 6 ... 9 %), as ``LogLocator`` itself
    does when it finds one tick or none; so narrow a log axis is nearly linear.
    """

    # Labelled mantissas per decade, densest first, and their closest gap in decades.
    MANTISSAS = (((1.0, 2.0, 3.0, 5.0), np.log10(3 / 2)), ((1.0, 2.0, 5.0), np.log10(2)),
                 ((1.0,), 1.0))

    def __call__(self):
        return self.tick_values(*self.axis.get_view_interval())

    def tick_values(self, vmin, vmax):
        vmin, vmax = sorted((vmin, vmax))
        decades = np.log10(vmax / vmin)
        room = max(self.axis.get_tick_space() if self.axis else 9, 2)
        # The axis is room * 2 font heights long: gap / decades of it >= 1.5 font heights.
        subs = next((subs for subs, gap in self.MANTISSAS if gap * room >= 0.75 * decades), (1.0,))
        ticks = LogLocator(subs=subs, numticks=room).tick_values(vmin, vmax)
        if ((vmin <= ticks) & (ticks <= vmax)).sum() >= 3:
            return ticks
        linear = MaxNLocator(nbins=9, steps=[1, 2, 2.5, 5, 10], min_n_ticks=3)  # AutoLocator's
        return linear.tick_values(vmin, vmax)


def percent(value: float, _pos=None) -> str:
    """A tick label in percent with the decimals it needs: 1%, 0.5%, 1.5%, 100%."""
    return f"{value:.6g}%"


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
    """Render ``fig`` to a uint8 (H, W, 3) RGB array (for W&B and the app), at 100 dpi.

    Cropped to every artist's extent (``bbox_inches="tight"``, as :func:`save`), so a
    colour bar's labels past the figure's edge are drawn whole, not cut off.
    """
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", pad_inches=0.05)
    return np.asarray(Image.open(buffer).convert("RGB"))


def _error_axes(fig: Figure, title: str):
    ax = fig.add_subplot()
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(ErrorTicks())
    ax.yaxis.set_major_formatter(FuncFormatter(percent))
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
                      title: str = "val/error of each run",
                      groups: dict[str, str] | None = None) -> Figure:
    """The ``val/error`` curve (in %) of several runs on one figure, labelled by run.

    ``groups``: run label -> group; the runs of one group (the seeds of one
    configuration) share a colour and differ in line style.
    """
    fig = Figure(figsize=(8, 5))
    ax = _error_axes(fig, title)
    colours: dict[str, str] = {}
    members: dict[str, int] = {}
    for label, rows in runs.items():
        group = (groups or {}).get(label, label)
        colour = colours.setdefault(group, f"C{len(colours) % 10}")
        members[group] = members.get(group, -1) + 1
        if rows:
            ax.plot([r["step"] for r in rows], [100 * r["val/error"] for r in rows], label=label,
                    marker=_marker(rows), color=colour,
                    linestyle=("-", "--", ":", "-.")[members[group] % 4])
    if any(runs.values()):
        ax.legend(fontsize="small")
    return fig


def shared_range(images: torch.Tensor, signed: bool = False) -> tuple[float, float]:
    """One value range for all of ``images``, so that tiles compare.

    Unsigned (feature maps after ReLU, >= 0): 0 to their maximum (down to their
    minimum, were any negative). ``signed`` (weights): -m to m, m their largest
    magnitude, so that 0 is the middle of the scale.
    """
    x = images.detach().float()
    if signed:
        return -float(x.abs().max()), float(x.abs().max())
    return min(float(x.min()), 0.0), float(x.max())


def scale_text(value_range: tuple[float, float]) -> str:
    """The words for a grid on one shared scale: ``"shared scale 0 to 0.015"``."""
    return f"shared scale {value_range[0]:.3g} to {value_range[1]:.3g}"


def _tiles(images: torch.Tensor) -> np.ndarray:
    """(N, H, W) or (N, 1, H, W) tensor -> float32 (N, H, W) array."""
    x = images.detach().float().cpu()
    return (x[:, 0] if x.dim() == 4 else x).numpy()


def _grid(tiles: np.ndarray, nrow: int, padding: int, pad_value: float) -> np.ndarray:
    """(N, H, W) -> (H', W') float32, ``nrow`` tiles a row, as ``make_grid`` lays them out."""
    n, h, w = tiles.shape
    if n == 1:  # make_grid returns a single tile unpadded
        return tiles[0]
    cols, p = min(nrow, n), padding
    grid = np.full((-(-n // cols) * (h + p) + p, cols * (w + p) + p), pad_value, np.float32)
    for k, tile in enumerate(tiles):
        top, left = p + (h + p) * (k // cols), p + (w + p) * (k % cols)
        grid[top:top + h, left:left + w] = tile
    return grid


def uint8_grid(images: torch.Tensor, value_range: tuple[float, float], nrow: int = 8,
               padding: int = 1) -> np.ndarray:
    """Images (N, H, W) or (N, 1, H, W), float → one uint8 (H', W') grid on one scale.

    ``value_range`` (low, high) maps to 0..255 for every tile alike (values
    outside are clipped), so a weak map stays dark; low == high gives 0. The
    padding is white. For W&B images, which wandb 0.31 no longer rescales.
    """
    low, high = map(float, value_range)
    tiles = (np.clip(_tiles(images), low, high) - low) / max(high - low, 1e-5)
    return np.round(_grid(tiles, nrow, padding, 1.0) * 255).astype(np.uint8)


def shared_scale_grid(images: torch.Tensor, nrow: int = 8,
                      signed: bool = False) -> tuple[np.ndarray, str]:
    """:func:`uint8_grid` on the :func:`shared_range` of ``images``, and its :func:`scale_text`."""
    value_range = shared_range(images, signed)
    return uint8_grid(images, value_range, nrow), scale_text(value_range)


def scaled_panel(fig: Figure, ax, images: torch.Tensor, value_range: tuple[float, float],
                 cmap) -> None:
    """Tiles (N, H, W) in a square grid, their true values on one colour scale with a bar.

    The padding is NaN, so it shows the background rather than a value.
    """
    tiles = _tiles(images)
    grid = _grid(tiles, int(np.ceil(np.sqrt(len(tiles)))), 1, float("nan"))
    shown = ax.imshow(grid, cmap=cmap, vmin=value_range[0], vmax=value_range[1])
    fig.colorbar(shown, ax=ax, shrink=0.8)
    ax.axis("off")


def feature_maps(maps: Sequence[torch.Tensor], max_channels: int = MAX_CHANNELS) -> Figure:
    """One panel per conv layer: its first ``max_channels`` maps for one image.

    Each layer's maps share one colour scale, 0 to their maximum, drawn as a
    colour bar and stated in the panel title: a weak map looks weak.

    Args:
        maps: per layer a float tensor (C_i, H_i, W_i) (after ReLU, before pooling).
    """
    fig = Figure(figsize=(4 * len(maps), 3.8), layout="constrained")
    for i, m in enumerate(maps):
        shown = m[:max_channels]
        value_range = shared_range(shown)
        ax = fig.add_subplot(1, len(maps), i + 1)
        scaled_panel(fig, ax, shown, value_range, "viridis")
        ax.set_title(f"conv{i + 1}: {len(shown)} of {m.shape[0]} maps, "
                     f"{m.shape[1]}x{m.shape[2]}\n{scale_text(value_range)}", fontsize="medium")
    fig.suptitle("feature maps of one image, one scale per layer")
    return fig


def filter_evolution(history, points: int = 5) -> Figure:
    """The first conv layer's filters at ``points`` snapshots spread over training.

    Each snapshot's filters share one scale, symmetric about 0 (weights are
    signed), drawn as a colour bar and stated in the panel title.

    Args:
        history: a :class:`~mnist_lab.training.snapshots.WeightsHistory` with snapshots.
    """
    state = history.state_dict()
    steps, weights = state["steps"].tolist(), state["weights"][0]  # (S, C_out, C_in, k, k)
    picks = sorted(set(np.linspace(0, len(steps) - 1, min(points, len(steps))).round().astype(int)))
    fig = Figure(figsize=(3 * len(picks), 3.2), layout="constrained")
    for col, i in enumerate(picks):
        w = weights[i]
        filters = w.reshape(-1, *w.shape[-2:])[:MAX_CHANNELS]
        value_range = shared_range(filters, signed=True)
        ax = fig.add_subplot(1, len(picks), col + 1)
        scaled_panel(fig, ax, filters, value_range, "coolwarm")
        ax.set_title(f"step {steps[i]}\n{scale_text(value_range)}", fontsize="medium")
    fig.suptitle("conv1 filters during training, one scale per snapshot, symmetric about 0")
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
