"""Throughput of read + prepare for 640x480 JPEG photos of a digit (one process, one thread).

    python benchmarks/bench_prepare.py [--images 200] [--repeat 3] [--against REV]

Makes realistic photos in a temp dir: an MNIST test digit (from $MNIST_LAB_DATA, default
./data; a drawn ring if that is missing) scaled up to 180..330 px, dark ink
on light paper, placed off-centre, a 25..45 % lighting gradient, sensor noise, JPEG
quality 85. Prints images/s and ms per image for `mnist_lab.recognise.prepare.prepare_image`
(the best of ``--repeat`` timed passes over all the photos, after a warm-up on 10).

With ``--against REV`` the same photos are also prepared by git revision REV's
``mnist_lab`` (extracted to a temp dir, run in a subprocess), its passes alternating with
this code's, so that both see the same load; it prints both and the ratio, this code's
time over REV's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO))  # after PYTHONPATH: --against runs another tree's mnist_lab
from mnist_lab.recognise import prepare  # noqa: E402
from mnist_lab.recognise.prepare import prepare_image  # noqa: E402


def _digits(n: int) -> np.ndarray:
    """(n, 28, 28) uint8 light-on-black digits: MNIST test images, or drawn rings."""
    raw = Path(os.environ.get("MNIST_LAB_DATA", "data")) / "MNIST" / "raw"
    path = raw / "t10k-images-idx3-ubyte"
    if path.exists():
        return np.fromfile(path, np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    ring = Image.new("L", (28, 28))
    ImageDraw.Draw(ring).ellipse((8, 4, 20, 24), outline=255, width=3)
    return np.repeat(np.asarray(ring)[None], n, axis=0)


def make_photos(out_dir: Path, n: int, seed: int = 0) -> list[Path]:
    """Write n 640x480 RGB JPEG photos of digits; return their paths."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    paths = []
    for i, digit in enumerate(_digits(n)):
        side = int(rng.integers(180, 331))
        big = Image.fromarray(digit.astype(np.float32) / 255, mode="F")
        ink = np.zeros((480, 640), np.float32)
        top, left = int(rng.integers(0, 480 - side)), int(rng.integers(0, 640 - side))
        ink[top:top + side, left:left + side] = np.clip(
            np.asarray(big.resize((side, side), Image.Resampling.BICUBIC)), 0, 1)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * xx / 640 + np.sin(angle) * yy / 480 + 1.5) / 3
        light = 1 - rng.uniform(0.25, 0.45) * ramp
        paper, pen = rng.uniform(0.75, 0.95), rng.uniform(0.05, 0.25)
        grey = light * (paper + (pen - paper) * ink)
        rgb = grey[..., None] * np.array([1.0, 0.96, 0.9]) + rng.normal(0, 0.02, (480, 640, 3))
        path = out_dir / f"photo_{i:04d}.jpg"
        Image.fromarray(np.uint8(np.clip(rgb, 0, 1) * 255 + 0.5)).save(path, quality=85)
        paths.append(path)
    return paths


def one_pass(paths: list[Path]) -> float:
    """Seconds to read and prepare every photo once."""
    start = time.perf_counter()
    for path in paths:
        prepare_image(path)
    return time.perf_counter() - start


def extracted(rev: str, into: Path) -> Path:
    """``git archive REV mnist_lab`` extracted into ``into``; returns ``into``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev,
                              "mnist_lab"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="timed passes; the best is reported")
    parser.add_argument("--against", metavar="REV", help="also time git revision REV's "
                        "preparation, its passes alternating with these")
    parser.add_argument("--pass-over", type=Path, help=argparse.SUPPRESS)  # one timed pass
    args = parser.parse_args()
    if args.pass_over:
        paths = sorted(args.pass_over.glob("photo_*.jpg"))
        for path in paths[:10]:  # warm-up (imports, caches)
            prepare_image(path)
        print(one_pass(paths), prepare.__file__)
        return
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        paths = make_photos(photos, args.images)
        for path in paths[:10]:  # warm-up (imports, caches)
            prepare_image(path)
        if args.against:
            tree = extracted(args.against, Path(tmp) / "against")
            env = {**os.environ, "PYTHONPATH": str(tree)}
        best, best_against = float("inf"), float("inf")
        for _ in range(args.repeat):
            best = min(best, one_pass(paths))
            if args.against:
                seconds, source = subprocess.run(
                    [sys.executable, __file__, "--pass-over", str(photos)], env=env, check=True,
                    capture_output=True, text=True).stdout.split()[-2:]
                if not Path(source).resolve().is_relative_to(tree.resolve()):
                    sys.exit(f"--against {args.against}: its preparation came from {source}")
                best_against = min(best_against, float(seconds))
    print(f"read+prepare, {len(paths)} 640x480 JPEG photos, 1 process: "
          f"{len(paths) / best:.0f} images/s ({1e3 * best / len(paths):.2f} ms per image)")
    if args.against:
        print(f"revision {args.against}, passes alternating with these: "
              f"{len(paths) / best_against:.0f} images/s "
              f"({1e3 * best_against / len(paths):.2f} ms per image); "
              f"time per image, this code / {args.against}: {best / best_against:.2f}")


if __name__ == "__main__":
    main()
