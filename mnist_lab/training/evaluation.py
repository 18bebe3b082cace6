"""Evaluation: error rate, loss and confusion matrix of a model on a split.

The library half of evaluation, used by the training loop, the trackers and the
``python -m mnist_lab.evaluate`` command (:mod:`mnist_lab.evaluate`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..data.splits import Split
from ..data.normalization import Normalization

EVAL_BATCH = 1000


@dataclass(frozen=True)
class EvalResult:
    """Scores of a model on a split.

    Attributes:
        error: fraction of misclassified images, in [0, 1].
        loss: mean negative log-likelihood per image (nats).
        num_images: images evaluated (exactly the split's).
        predictions: int64 (N,) predicted classes, when asked for.
        probabilities: float32 (N,) probability of the predicted class, when asked for.
    """

    error: float
    loss: float
    num_images: int
    predictions: torch.Tensor | None = None
    probabilities: torch.Tensor | None = None


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Dropout off, batch-norm statistics frozen, no autograd; the mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield model
    finally:
        model.train(was_training)


def evaluate(model: nn.Module, split: Split, norm: Normalization,
             keep_predictions: bool = False, batch_size: int = EVAL_BATCH) -> EvalResult:
    """Error rate and mean loss of ``model`` on every image of ``split``.

    No side effects on training: no RNG draws, no gradients, no state left changed.
    """
    errors = torch.zeros((), dtype=torch.int64, device=split.labels.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=split.labels.device)
    predictions, probabilities = [], []
    with eval_mode(model):
        for begin in range(0, len(split), batch_size):
            x = norm.apply(split.images[begin : begin + batch_size])
            y = split.labels[begin : begin + batch_size]
            log_probs = model(x)
            loss_sum += F.nll_loss(log_probs, y, reduction="sum").double()
            best_log_prob, predicted = log_probs.max(dim=1)
            errors += (predicted != y).sum()
            if keep_predictions:
                predictions.append(predicted)
                probabilities.append(best_log_prob.exp())
    n = len(split)
    return EvalResult(
        error=errors.item() / n,
        loss=loss_sum.item() / n,
        num_images=n,
        predictions=torch.cat(predictions).cpu() if keep_predictions else None,
        probabilities=torch.cat(probabilities).cpu() if keep_predictions else None,
    )


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor,
                     num_classes: int) -> torch.Tensor:
    """int64 (num_classes, num_classes): row = true class, column = predicted class."""
    index = labels.cpu().to(torch.int64) * num_classes + predictions.cpu().to(torch.int64)
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)
