"""Accuracy of a run's model on photos of MNIST test digits in hard conditions, per
condition, and how much of each digit the preparation kept.

    python experiments/recogniser/hard_conditions.py RUN_DIR --split test --n 1000 \\
        --before 90f9aef --cache /tmp/hard_test

The photos come from ``tests/hard_images.py`` (its ``CONDITIONS``). ``--split val``
takes digits from the validation half (test images 0..4999: tune there), ``--split
test`` from the test half (5000..9999: report there); the first ``--n`` of the half, in
every condition (``long_stems`` draws only the 1s, 4s and 7s among them). Each file is
read and prepared as ``python -m mnist_lab.predict`` does
(``mnist_lab.recognise.predict.prepare_all``) and recognised by the run's model.

Prints the command and a Markdown table, per condition: the photos, the accuracy, the
files that could not be prepared, the images with a preparation warning, the unsure
predictions (p < 0.8), and what the preparation kept of the true digit
(``hard_images.truth``): stroke recall (``hard_images.stroke_recall``; a file that could
not be prepared counts 0) as its mean and its worst 1 % (the 1st percentile), and the
mean IoU (``hard_images.iou``). The last rows: the same digits' accuracy as 28x28 arrays
(no preparation), as MNIST wrote them and as the thin pen redrew them (the true digits
of the thin-pen conditions). With ``--before REV`` every figure is given as "before / after": the
files are also prepared by the preparation of git revision ``REV`` (its ``mnist_lab``
package, in a subprocess), and recognised by the same model. ``--cache DIR`` keeps the
photos (they are deterministic) for a later run.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from hard_images import (CONDITIONS, drawn, iou, make_hard_files, parse_name,  # noqa: E402
                         stroke_recall, truth)
from user_images import load_mnist_test  # noqa: E402

from mnist_lab.recognise.images import ImageError  # noqa: E402
from mnist_lab.recognise.predict import prepare_all  # noqa: E402

HALVES = {"val": 0, "test": 5000}
UNSURE = 0.8  # top-1 probability under which a prediction is unsure (as predict's note)


def photos(digits: np.ndarray, labels: np.ndarray, first: int, cache: Path) -> list[Path]:
    """The photos of ``digits`` (test indices from ``first``), made once into ``cache``."""
    chosen = {c: drawn(c, labels, len(digits)) for c in CONDITIONS}
    wanted = [cache / f"{first + n:05d}_{c}.jpg" for n in range(len(digits)) for c in CONDITIONS
              if chosen[c][n]]
    if all(p.is_file() for p in wanted):
        return wanted
    return make_hard_files(digits, cache, first_index=first, labels=labels)


def prepared_arrays(paths: list[Path], workers: int) -> dict[str, np.ndarray]:
    """Prepare every file: ``images`` (N, 28, 28) uint8 (zeros where it failed), ``ok``
    and ``warned`` (N,) bool."""
    out = prepare_all([str(p) for p in paths], workers)
    ok = np.array([not isinstance(p, ImageError) for p in out], bool)
    images = np.stack([p.image if good else np.zeros((28, 28), np.uint8)
                       for p, good in zip(out, ok)])
    warned = np.array([good and bool(p.warnings) for p, good in zip(out, ok)], bool)
    return {"images": images, "ok": ok, "warned": warned}


def prepared_by(rev: str, paths: list[Path], workers: int) -> dict[str, np.ndarray]:
    """:func:`prepared_arrays` with the ``mnist_lab`` package of git revision ``rev``."""
    with tempfile.TemporaryDirectory() as tree:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev,
                                  "mnist_lab"], check=True, capture_output=True).stdout
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tree, filter="data")
        listing, result = Path(tree) / "paths.txt", Path(tree) / "prepared.npz"
        listing.write_text("\n".join(map(str, paths)))
        env = {**os.environ, "PYTHONPATH": tree}
        subprocess.run([sys.executable, __file__, "--prepare-only", str(listing), str(result),
                        "--workers", str(workers), "--expect-package", tree], env=env,
                       check=True)
        with np.load(result) as saved:
            return dict(saved)


def scores(prep: dict[str, np.ndarray], truths: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Per file: stroke recall (0 where the preparation failed) and IoU."""
    recall = np.array([stroke_recall(im, t) if ok else 0.0
                       for im, t, ok in zip(prep["images"], truths, prep["ok"])])
    overlap = np.array([iou(im, t) if ok else 0.0
                        for im, t, ok in zip(prep["images"], truths, prep["ok"])])
    return recall, overlap


def row(prep: dict, probs: np.ndarray, labels: np.ndarray, truths: list,
        rows: np.ndarray) -> list[str]:
    """The table's figures for the files ``rows`` of one preparation."""
    recall, overlap = scores({k: v[rows] for k, v in prep.items()}, [truths[i] for i in rows])
    p = probs[rows]
    right = (p.argmax(1) == labels[rows]) & prep["ok"][rows]
    unsure = (p.max(1) < UNSURE) & prep["ok"][rows]
    return [f"{100 * right.mean():.2f} %", str(int((~prep["ok"][rows]).sum())),
            str(int(prep["warned"][rows].sum())), str(int(unsure.sum())),
            f"{recall.mean():.3f}", f"{np.percentile(recall, 1):.3f}", f"{overlap.mean():.3f}"]


def prepare_only(listing: Path, result: Path, workers: int, package: str) -> None:
    """Write :func:`prepared_arrays` of the files listed in ``listing`` to ``result``."""
    import mnist_lab

    if not Path(mnist_lab.__file__).resolve().is_relative_to(Path(package).resolve()):
        sys.exit(f"--prepare-only: mnist_lab came from {mnist_lab.__file__}, not {package}")
    paths = [Path(p) for p in listing.read_text().splitlines()]
    np.savez(result, **prepared_arrays(paths, workers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?")
    parser.add_argument("--split", choices=HALVES, default="test")
    parser.add_argument("--n", type=int, default=1000, help="digits of the half, from its start")
    parser.add_argument("--cache", type=Path, help="folder keeping the photos between runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--before", metavar="REV", help="also prepare with git revision REV's "
                        "preparation: figures as 'before / after'")
    parser.add_argument("--prepare-only", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--expect-package", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare_only:
        prepare_only(*args.prepare_only, args.workers, args.expect_package)
        return
    if args.run_dir is None:
        parser.error("RUN_DIR is required")
    from mnist_lab.models.build import load_model
    from mnist_lab.recognise.predict import classify

    first = HALVES[args.split]
    images, labels = load_mnist_test(os.environ.get("MNIST_LAB_DATA", "data"))
    digits, labels = images[first:first + args.n], labels[first:first + args.n]
    loaded = load_model(args.run_dir)
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp)
        start = time.perf_counter()
        paths = photos(digits, labels, first, cache)
        made = time.perf_counter() - start
        start = time.perf_counter()
        versions = [prepared_arrays(paths, args.workers)]
        took = time.perf_counter() - start
        if args.before:
            versions.insert(0, prepared_by(args.before, paths, args.workers))
    index = np.array([parse_name(p)[0] - first for p in paths])
    condition = np.array([parse_name(p)[1] for p in paths])
    truths = [truth(c, digits[i]) for i, c in zip(index, condition)]
    probs = [classify(loaded, v["images"]).numpy() for v in versions]
    arrays = 100 * float((classify(loaded, digits).argmax(1).numpy() == labels).mean())
    redrawn = np.stack([truth("thin_pen", d) for d in digits])
    thin = 100 * float((classify(loaded, redrawn).argmax(1).numpy() == labels).mean())
    print(f"$ {shlex.join(['python', *sys.argv])}\n")
    print(f"{args.n} digits of the {args.split} half (test images {first}..{first + args.n - 1})"
          f", run {args.run_dir}; {len(paths)} photos made in {made:.0f} s, prepared in "
          f"{took:.0f} s ({args.workers} workers)" + (f"; before: revision {args.before}"
                                                      if args.before else "") + "\n")
    print("| condition | photos | accuracy | not prepared | with a warning | unsure (p < 0.8) "
          "| stroke recall, mean | stroke recall, worst 1 % | IoU, mean |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for c in CONDITIONS:
        rows = np.flatnonzero(condition == c)
        cells = [row(v, p, labels[index], truths, rows) for v, p in zip(versions, probs)]
        print(f"| {c} | {len(rows)} | " + " | ".join(" / ".join(pair) for pair in zip(*cells))
              + " |")
    print(f"| (28x28 arrays, no preparation) | {len(digits)} | {arrays:.2f} % | | | | | | |")
    print(f"| (thin-pen drawings as 28x28 arrays) | {len(digits)} | {thin:.2f} % | | | | | | |")


if __name__ == "__main__":
    main()
