"""End-to-end speed of recognising 640x480 photos: read, prepare, recognise.

    python benchmarks/bench_predict.py RUN_DIR [--images 400] [--workers 2] [--repeat 3]

Writes realistic 640x480 JPEG photos of MNIST test digits (see bench_prepare.py)
into a temp dir, then times ``mnist_lab.recognise.predict.predict`` on them with the run's
model (as ``python -m mnist_lab.predict`` does, without printing), and prints
images/s (best of ``--repeat`` passes) and the accuracy on those photos.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_prepare import make_photos  # noqa: E402

from mnist_lab.models.build import load_model  # noqa: E402
from mnist_lab.recognise.predict import predict  # noqa: E402


def _labels(n: int) -> np.ndarray:
    import os

    raw = Path(os.environ.get("MNIST_LAB_DATA", "data")) / "MNIST" / "raw"
    return np.fromfile(raw / "t10k-labels-idx1-ubyte", np.uint8, offset=8)[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2, help="threads reading and preparing")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.workers)
    loaded = load_model(args.run_dir)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(p) for p in make_photos(Path(tmp), args.images)]
        predict(loaded, paths[:20], workers=args.workers)  # warm-up
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            results = predict(loaded, paths, workers=args.workers)
            best = min(best, time.perf_counter() - start)
    correct = np.mean([r.digit == str(y) for r, y in zip(results, _labels(args.images))])
    print(f"read+prepare+recognise, {len(paths)} 640x480 JPEG photos, {args.workers} workers: "
          f"{len(paths) / best:.0f} images/s ({1e3 * best / len(paths):.2f} ms per image); "
          f"accuracy on these photos {100 * correct:.1f}%")


if __name__ == "__main__":
    main()
