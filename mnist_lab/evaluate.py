"""``python -m mnist_lab.evaluate RUN_DIR``: the test error of a finished run's weights.

Rebuilds the model of a run from its checkpoint (:func:`mnist_lab.models.build.load_model`)
and reports its test error on the run's test split, which equals the one in the
run's ``summary.json``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from .data.mnist import Split, load_mnist, split_test
from .errors import UserError
from .models.build import WEIGHTS, load_model
from .record.folder import RunRecord
from .training.evaluation import EvalResult, evaluate
from .training.runtime import resolve_device

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
