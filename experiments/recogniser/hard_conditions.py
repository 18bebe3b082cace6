"""Accuracy of a run's model on photos of MNIST test digits in hard conditions, per condition.

    python experiments/recogniser/hard_conditions.py RUN_DIR --split test --n 1000

The photos come from ``tests/hard_images.py`` (conditions: plain, blue_ink, red_ink,
ruled, squared, vignette, small, ruled_small_vignette). ``--split val`` takes digits
from the validation half (test images 0..4999: tune there), ``--split test`` from the
test half (5000..9999: report there); the first ``--n`` of the half, every condition.
Each file goes through ``mnist_lab.recognise.predict.predict`` (read, prepare,
recognise) as ``python -m mnist_lab.predict`` does. Prints a Markdown table: per
condition the accuracy, the files that could not be prepared, the images with a
warning, and the same digits' accuracy as 28x28 arrays (no preparation) for reference.
``--cache DIR`` keeps the photos (they are deterministic) for a later run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parents[2] / "tests"
sys.path.insert(0, str(TESTS))
from hard_images import CONDITIONS, make_hard_files  # noqa: E402
from user_images import load_mnist_test  # noqa: E402

try:
    from mnist_lab.models.build import load_model  # noqa: E402
except ImportError:  # the code before issue 9, for the "before" figures
    from mnist_lab.evaluate import load_model  # noqa: E402
from mnist_lab.recognise.predict import classify, predict  # noqa: E402

HALVES = {"val": 0, "test": 5000}


def photos(digits: np.ndarray, first: int, cache: Path) -> list[Path]:
    """The photos of ``digits`` (test indices from ``first``), made once into ``cache``."""
    wanted = [cache / f"{first + i:05d}_{c}.jpg" for i in range(len(digits)) for c in CONDITIONS]
    if all(p.is_file() for p in wanted):
        return wanted
    return make_hard_files(digits, cache, first_index=first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--split", choices=HALVES, default="test")
    parser.add_argument("--n", type=int, default=1000, help="digits of the half, from its start")
    parser.add_argument("--cache", type=Path, help="folder keeping the photos between runs")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    first = HALVES[args.split]
    images, labels = load_mnist_test(os.environ.get("MNIST_LAB_DATA", "data"))
    digits, labels = images[first:first + args.n], labels[first:first + args.n]
    loaded = load_model(args.run_dir)
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp)
        start = time.perf_counter()
        paths = photos(digits, first, cache)
        made = time.perf_counter() - start
        start = time.perf_counter()
        results = predict(loaded, [str(p) for p in paths], workers=args.workers)
        took = time.perf_counter() - start
    arrays = 100 * float((classify(loaded, digits).argmax(1).numpy() == labels).mean())
    print(f"{args.n} digits of the {args.split} half (test images {first}..{first + args.n - 1})"
          f", run {args.run_dir}; photos made in {made:.0f} s, recognised in {took:.0f} s\n")
    print("| condition | accuracy | not prepared | with a warning | unsure (p < 0.8) |\n"
          "| --- | --- | --- | --- | --- |")
    k = len(CONDITIONS)
    for j, condition in enumerate(CONDITIONS):
        rows = results[j::k]
        right = sum(r.digit == str(y) for r, y in zip(rows, labels))
        failed = sum(r.error is not None for r in rows)
        warned = sum(bool(r.warnings) for r in rows)
        unsure = sum(r.probability is not None and r.probability < 0.8 for r in rows)
        print(f"| {condition} | {100 * right / len(rows):.2f} % | {failed} | {warned} | {unsure} |")
    print(f"| (28x28 arrays, no preparation) | {arrays:.2f} % | | | |")


if __name__ == "__main__":
    main()
