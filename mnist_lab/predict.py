"""Recognise the digits in people's own images: ``python -m mnist_lab.predict RUN_DIR PATH...``.

Each image (a file, every image in a folder, recursively, or a glob) is prepared
like MNIST (:mod:`mnist_lab.recognise.prepare`) and classified by the run's model, rebuilt
from its checkpoint (:func:`~mnist_lab.models.build.load_model`), which also fixes
the input normalisation. Per image: the predicted digit, its probability and
the top 3; under a probability of 0.8, a warning that the model is unsure
between the digit and the runner-up. A bad file gets a one-line error and the
others go on; so does a ``--save-preprocessed`` folder that cannot be written: the predictions are
printed all the same. The exit code is 1 when any file failed or the folder
could not be written (2 for a bad run directory or option).
"""

from __future__ import annotations

import argparse
import logging
import csv
import io
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from .config.trust import Trust, add_trust_option, forget_working_directory
from .errors import UserError
from .models.build import load_model, require_digits
from .recognise.predict import Prediction, PreprocessedFolder, expand, predict
from .training.runtime import resolve_device


def render(results: list[Prediction], fmt: str) -> str:
    """Results as an aligned table, JSON (a list of objects) or CSV."""
    if fmt == "json":
        return json.dumps([asdict(r) for r in results], indent=2) + "\n"
    rows = [[r.path, r.digit or "", "" if r.probability is None else f"{r.probability:.4f}",
             " ".join(f"{d}:{p:.3f}" for d, p in r.top),
             "; ".join(([r.unsure] if r.unsure else []) + r.warnings), r.error or ""]
            for r in results]
    header = ["file", "digit", "probability", "top3", "warning", "error"]
    if fmt == "csv":
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([header, *rows])
        return out.getvalue()
    rows = [r[:5] for r in rows if not r[5]]  # errors go to stderr in the table format
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header[:5])]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header[:5]), *map(line, rows)]) + "\n"


def _positive_int(text: str) -> int:
    value = int(text) if text.strip().lstrip("-").isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def main(argv: list[str] | None = None) -> int:
    """Command line; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m mnist_lab.predict",
        description="Recognise handwritten digits in image files with a trained run's model.")
    parser.add_argument("run_dir", help="a run directory holding checkpoint.pt")
    parser.add_argument("paths", nargs="+", help="image files, folders (recursive) or globs")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    parser.add_argument("--save-preprocessed", metavar="DIR", type=Path,
                        help="write the 28x28 image the model saw for each file here")
    parser.add_argument("--device", default="cpu",
                        help="cpu (default), auto (a GPU if there is one), cuda or cuda:N")
    parser.add_argument("--workers", type=_positive_int, default=min(4, os.cpu_count() or 1),
                        help="threads reading and preparing images (default: cores, at most 4)")
    add_trust_option(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # e.g. which model module
    try:
        args.device = resolve_device(args.device, key="--device")
        loaded = load_model(args.run_dir, args.device, trust=Trust.from_env(args.trust))
        require_digits(loaded, args.run_dir)
    except UserError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    inputs = list(expand(args.paths))
    folder = PreprocessedFolder(args.save_preprocessed) if args.save_preprocessed else None
    found = iter(predict(loaded, [p for p, err in inputs if err is None], args.device,
                         args.workers, folder))
    results = [Prediction(p, error=err) if err else next(found) for p, err in inputs]
    print(render(results, args.format), end="")
    return report_problems(results, folder)


def report_problems(results: list[Prediction], folder: PreprocessedFolder | None) -> int:
    """Print each error and warning as one line on stderr; the exit code: 1 on any error."""
    failures = [r.error for r in results if r.error]
    if folder is not None and folder.failure():
        failures.append(folder.failure())
    for message in failures:
        print(f"error: {message}", file=sys.stderr)
    for r in results:
        for warning in ([r.unsure] if r.unsure else []) + r.warnings:
            print(f"warning: {r.path}: {warning}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    forget_working_directory()
    sys.exit(main())
