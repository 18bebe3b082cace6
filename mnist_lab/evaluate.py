"""``python -m mnist_lab.evaluate RUN_DIR``: the test error of a finished run's weights.

Rebuilds the model of a run from its checkpoint (:func:`mnist_lab.models.build.load_model`)
and its dataset from its saved config (both names trusted first), and reports the
test error on the run's test split, which equals the one in the run's
``summary.json``. ``--on qmnist`` evaluates an MNIST-trained run on QMNIST's 50,000
extra test digits instead (:class:`mnist_lab.data.datasets.QMNIST50k`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import torch

from .config.settings import upgrade
from .config.trust import Trust, add_trust_option, forget_working_directory
from .data.datasets import MNIST, QMNIST50k, dataset_of
from .data.splits import Split
from .errors import UserError
from .models.build import WEIGHTS, LoadedModel, load_model
from .record.folder import RunRecord
from .training.evaluation import EvalResult, evaluate
from .training.runtime import resolve_device

EVALUATION_SETS = ("test", "qmnist")
MNIST_TARGET = f"{MNIST.__module__}.{MNIST.__name__}"


def evaluate_run(run_dir: str | Path, data_root: str | Path | None = None,
                 device: str | torch.device = "cpu", weights: str = "final",
                 trust: Trust | None = None, on: str = "test") -> EvalResult:
    """Error of a run's final (or best) weights on its test split, or on QMNIST's 50,000.

    Args:
        data_root: where the data is (None: the run's own root, see :func:`data_root_of`).
        on: ``test`` (the run's test split, its config's ``val_size``) or ``qmnist``.

    Raises:
        UserError: the run's model or dataset cannot be loaded or is not trusted (see
            :func:`~mnist_lab.models.build.load_model`), the data is missing or damaged,
            or ``qmnist`` for a run not trained on MNIST.
    """
    trust = trust or Trust.from_env()
    loaded = load_model(run_dir, device, weights, trust)
    node = dict(upgrade(loaded.config)["data"])
    source = f"'{Path(run_dir) / 'checkpoint.pt'}' (data._target_)"
    trust.check(node.get("_target_"), "data", source)
    root = data_root_of(run_dir, data_root, node)
    if on == "qmnist":
        test = qmnist_for(loaded, node, root)
    else:
        here = {k: v for k, v in (("root", root), ("download", False)) if k in node}
        _, _, test = dataset_of({**node, **here}).splits()
    return evaluate(loaded.model, test.to(device), loaded.norm)


def qmnist_for(loaded: LoadedModel, node: dict, root: str) -> Split:
    """QMNIST's 50,000 extra test digits, for a model trained on MNIST only.

    Raises:
        UserError: the run was trained on another dataset; the QMNIST files are missing.
    """
    if node.get("_target_") != MNIST_TARGET:
        raise UserError(f"--on qmnist evaluates models trained on MNIST; this run was "
                        f"trained on {node.get('_target_')}.")
    return QMNIST50k(root).read()


def data_root_of(run_dir: str | Path, given: str | None, node: dict | None = None) -> str:
    """The data root to evaluate on: ``--data-root`` when given, else the run's own
    (``data.root`` of its saved config) when it exists, else ``$MNIST_LAB_DATA``,
    else ``./data``."""
    if given:
        return str(given)
    recorded = (node or {}).get("root")
    if isinstance(recorded, str) and Path(recorded).is_dir():
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
    parser.add_argument("--on", choices=EVALUATION_SETS, default="test",
                        help="test (the run's test split, default) or qmnist (QMNIST's 50,000 "
                             "extra test digits, in <data root>/QMNIST/raw/; MNIST runs only)")
    add_trust_option(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # e.g. which model module
    try:
        device = resolve_device(args.device, key="--device")
        result = evaluate_run(args.run_dir, args.data_root, device, args.weights,
                              Trust.from_env(args.trust), args.on)
    except UserError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    name = "test" if args.on == "test" else "qmnist"
    print(f"{name}/error {100 * result.error:.2f}% ({result.num_images} images, "
          f"{args.weights} weights), {name}/loss {result.loss:.4f}")
    if args.on != "test":
        return 0
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
