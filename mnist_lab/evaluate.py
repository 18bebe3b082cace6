"""Evaluation: error rate, loss and confusion matrix of a model on a split.

Also the entry point ``python -m mnist_lab.evaluate RUN_DIR``, which rebuilds the
model of a finished run from its checkpoint (:func:`mnist_lab.build.load_model`) and reports its
test error, which equals the one in the run's ``summary.json``.
"""

from __future__ import annotations

import argparse
import logging
import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .build import WEIGHTS, load_model
from .data import Split, load_mnist, split_test
from .errors import UserError
from .inputs import Normalization
from .record import RunRecord
from .runtime import resolve_device

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


def evaluate_run(run_dir: str | Path, data_root: str | Path,
                 device: str | torch.device = "cpu", weights: str = "final") -> EvalResult:
    """Test error of a run's final (or best) weights on its test split (its config's val_size)."""
    loaded = load_model(run_dir, device, weights)
    _, test, _ = load_mnist(data_root, download=False)
    _, test = split_test(test, loaded.config["data"]["val_size"])
    test = Split(test.images.to(device), test.labels.to(device))
    return evaluate(loaded.model, test, loaded.norm)


def main(argv: list[str] | None = None) -> int:
    """``python -m mnist_lab.evaluate RUN_DIR [--data-root DIR] [--device cpu]``."""
    import os

    parser = argparse.ArgumentParser(
        prog="python -m mnist_lab.evaluate",
        description="Rebuild a run's model from checkpoint.pt and report its test error.",
    )
    parser.add_argument("run_dir", help="a run directory holding checkpoint.pt")
    parser.add_argument("--data-root", default=os.environ.get("MNIST_LAB_DATA", "data"),
                        help="folder holding MNIST/raw/ (default: $MNIST_LAB_DATA or ./data)")
    parser.add_argument("--device", default="cpu", help="cpu (default), auto, cuda or cuda:N")
    parser.add_argument("--weights", choices=WEIGHTS, default="final",
                        help="final (checkpoint.pt, default) or best (best.pt: lowest val/error)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # e.g. which model module
    try:
        device = resolve_device(args.device, key="--device")
        result = evaluate_run(args.run_dir, args.data_root, device, args.weights)
    except UserError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    summary = RunRecord(args.run_dir).read_summary() or {}
    key = "test/best_checkpoint_error" if args.weights == "best" else "test/final_error"
    recorded = summary.get(key, summary.get("test/error") if args.weights == "final" else None)
    print(f"test/error {100 * result.error:.2f}% ({result.num_images} images, {args.weights} "
          f"weights), test/loss {result.loss:.4f}")
    if recorded is not None:
        same = "equal" if abs(recorded - result.error) < 1e-12 else "DIFFERENT"
        print(f"summary.json {key} {100 * recorded:.2f}% ({same})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
