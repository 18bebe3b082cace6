"""The history of the conv weights: snapshots taken at evaluation steps.

The seed experiment keeps this history to show how the filters evolve. Memory is
capped: when the snapshots would pass ``max_bytes``, every other one is dropped
and snapshots are taken half as often from then on, so the history stays evenly
spread over the whole run (the first snapshot is always kept).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

log = logging.getLogger(__name__)


class WeightsHistory:
    """Snapshots of each conv layer's (weight, bias) at training steps.

    Args:
        max_bytes: cap on the memory the snapshots take.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.stride = 1  # keep every stride-th offered snapshot
        self.offered = 0
        self.steps: list[int] = []
        self.snapshots: list[list[torch.Tensor]] = []  # per snapshot: w0, b0, w1, b1, ...

    @property
    def nbytes(self) -> int:
        """Memory the snapshots take (all snapshots have the same size)."""
        per_snapshot = sum(t.numel() * t.element_size() for t in self.snapshots[0]) \
            if self.snapshots else 0
        return len(self.snapshots) * per_snapshot

    def offer(self, step: int, conv_weights: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Take a snapshot (CPU copies) at ``step`` unless thinning skips this one.

        ``conv_weights``: per conv layer, its weight (C_out, C_in, k, k) and bias (C_out,).
        """
        self.offered += 1
        if (self.offered - 1) % self.stride:
            return
        snap = [t.detach().to("cpu", copy=True) for pair in conv_weights for t in pair]
        self.steps.append(step)
        self.snapshots.append(snap)
        if self.nbytes > self.max_bytes and len(self.snapshots) > 1:
            self._thin()

    def _thin(self) -> None:
        self.steps, self.snapshots = self.steps[::2], self.snapshots[::2]
        self.stride *= 2
        log.warning(
            "Conv-weight history passed %.0f MB: keeping every %d-th evaluation's snapshot "
            "(%d kept).", self.max_bytes / 2**20, self.stride, len(self.steps),
        )

    def state_dict(self) -> dict[str, Any]:
        """Plain containers: ``steps`` (S,) int64; ``weights`` and ``biases``: one
        (S, ...) tensor per layer."""
        layers = len(self.snapshots[0]) // 2 if self.snapshots else 0
        stack = lambda i: torch.stack([s[i] for s in self.snapshots])  # noqa: E731
        return {
            "steps": torch.tensor(self.steps, dtype=torch.int64),
            "weights": [stack(2 * i) for i in range(layers)],
            "biases": [stack(2 * i + 1) for i in range(layers)],
            "stride": self.stride,
        }

    def load_state_dict(self, state: dict[str, Any], until_step: int, offered: int) -> None:
        """Restore the snapshots taken up to ``until_step`` (resuming a run).

        ``offered``: evaluations up to ``until_step`` (snapshots offered so far).
        """
        steps = state["steps"].tolist()
        keep = [i for i, step in enumerate(steps) if step <= until_step]
        self.steps = [steps[i] for i in keep]
        self.snapshots = [
            [t for w, b in zip(state["weights"], state["biases"]) for t in (w[i], b[i])]
            for i in keep
        ]
        self.stride = int(state["stride"])
        self.offered = offered


def history_mismatch(layers: list, snapshots: int,
                     convs: list[tuple[torch.Tensor, torch.Tensor]]) -> str | None:
    """Why a saved history does not fit a model; None when it does.

    Args:
        layers: per conv layer, the saved (weights (S, C_out, C_in, k, k), biases (S, C_out)).
        snapshots: S, the number of snapshots.
        convs: the model's ``conv_weights()``: (weight, bias) per conv layer.
    """
    if len(layers) != len(convs):
        return f"{len(layers)} conv layers, the model has {len(convs)}"
    for i, ((w, b), (mw, mb)) in enumerate(zip(layers, convs), start=1):
        if tuple(w.shape) != (snapshots, *mw.shape) or tuple(b.shape) != (snapshots, *mb.shape):
            return f"conv{i} weights {tuple(w.shape[1:])}, the model's {tuple(mw.shape)}"
    return None
