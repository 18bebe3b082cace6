"""``python -m mnist_lab.evaluate RUN_DIR``: the test error of a finished run's weights.

Rebuilds the model of a run from its checkpoint (:func:`mnist_lab.models.build.load_model`)
and reports its test error on the run's test split, which equals the one in the
run's ``summary.json``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import torch

from .config.trust import Trust, add_trust_option, forget_working_directory
from .data.integrity import missing_files
from .data.mnist import Split, load_mnist, split_test
from .errors import UserError
from .models.build import WEIGHTS, load_model
from .record.folder import RunRecord
from .training.evaluation import EvalResult, evaluate
from .training.runtime import resolve_device

def evaluate_run(run_dir: str | Path, data_root: str | Path,
                 device: str | torch.device = "cpu", weights: str = "final",
                 trust: Trust | None = None) -> EvalResult:
    """Test error of a run's final (or best) weights on its test split (its config's val_size).

    Raises:
        UserError: the run's model cannot be loaded (see
            :func:`~mnist_lab.models.build.load_model`), or the data is missing or damaged.
    """
    loaded = load_model(run_dir, device, weights, trust)
    _, test, _ = load_mnist(data_root, download=False)
    _, test = split_test(test, loaded.config["data"]["val_size"])
    test = Split(test.images.to(device), test.labels.to(device))
    return evaluate(loaded.model, test, loaded.norm)


def data_root_of(run_dir: str | Path, given: str | None) -> str:
    """The data root to evaluate on: ``--data-root`` when given, else the run's own
    (``data.root`` in its ``summary.json``) when it holds the files, else
    ``$MNIST_LAB_DATA``, else ``./data``."""
    if given:
        return given
    try:
        recorded = ((RunRecord(run_dir).read_summary() or {}).get("config") or {}).get(
            "data", {}).get("root")
    except (UserError, ValueError, OSError, AttributeError):
        recorded = None
    if isinstance(recorded, str) and not missing_files(recorded):
        return recorded
    return os.environ.get("MNIST_LAB_DATA", "data")


def recorded_error(run_dir: str | Path, weights: str) -> tuple[str, float | None, str | None]:
    """The test error ``summary.json`` recorded for these weights: (key, value, note).

    A summary that cannot be read gives a one-line note instead of a value.
    """
    key = "test/best_checkpoint_error" if weights == "best" else "test/final_error"
    try:
        summary = RunRecord(run_dir).read_summary() or {}
    except (UserError, ValueError, OSError) as error:
        return key, None, f"summary.json cannot be read ({' '.join(str(error).split())[:120]}): " \
                          "nothing to compare with."
    value = summary.get(key, summary.get("test/error") if weights == "final" else None)
    return key, value if isinstance(value, (int, float)) else None, None


def main(argv: list[str] | None = None) -> int:
    """``python -m mnist_lab.evaluate RUN_DIR [--data-root DIR] [--device cpu] [--trust P]``."""
    parser = argparse.ArgumentParser(
        prog="python -m mnist_lab.evaluate",
        description="Rebuild a run's model from checkpoint.pt and report its test error.",
    )
    parser.add_argument("run_dir", help="a run directory holding checkpoint.pt")
    parser.add_argument("--data-root", default=None,
                        help="folder holding MNIST/raw/ (default: the run's own data root, "
                             "else $MNIST_LAB_DATA, else ./data)")
    parser.add_argument("--device", default="cpu", help="cpu (default), auto, cuda or cuda:N")
    parser.add_argument("--weights", choices=WEIGHTS, default="final",
                        help="final (checkpoint.pt, default) or best (best.pt: lowest val/error)")
    add_trust_option(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # e.g. which model module
    try:
        device = resolve_device(args.device, key="--device")
        result = evaluate_run(args.run_dir, data_root_of(args.run_dir, args.data_root), device,
                              args.weights, Trust.from_env(args.trust))
    except UserError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    print(f"test/error {100 * result.error:.2f}% ({result.num_images} images, {args.weights} "
          f"weights), test/loss {result.loss:.4f}")
    key, recorded, note = recorded_error(args.run_dir, args.weights)
    if note:
        print(note, file=sys.stderr)
    elif recorded is not None:
        same = "equal" if abs(recorded - result.error) < 1e-12 else "DIFFERENT"
        print(f"summary.json {key} {100 * recorded:.2f}% ({same})")
    return 0


if __name__ == "__main__":
    forget_working_directory()
    sys.exit(main())
