"""Are two run folders the same run? ``python benchmarks/same_run.py RUN_A RUN_B``

Compares ``metrics.csv`` (every column but ``elapsed_s``, by column name) and every
tensor of the final weights in ``checkpoint.pt`` (``torch.equal``). Prints what
differs; exit code 0 when both are equal, 1 otherwise. Used to check that a change
of the code changes no result (e.g. ``python run.py trainer.max_steps=300
trainer.num_threads=1 logger=none`` before and after).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import torch


def metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in csv.DictReader(f)]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["model_state"]


def main(a: str, b: str) -> int:
    ma, mb = metrics(Path(a)), metrics(Path(b))
    wa, wb = weights(Path(a)), weights(Path(b))
    same_rows = ma == mb
    differing = [k for k in wa.keys() | wb.keys()
                 if k not in wa or k not in wb or not torch.equal(wa[k], wb[k])]
    print(f"metrics.csv: {len(ma)} and {len(mb)} rows, "
          f"{'identical' if same_rows else 'DIFFERENT'} (elapsed_s aside)")
    print(f"weights: {len(wa)} tensors, " + ("all equal (torch.equal)" if not differing
                                             else f"DIFFERENT: {', '.join(sorted(differing))}"))
    return 0 if same_rows and not differing else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.splitlines()[0])
    sys.exit(main(*sys.argv[1:]))
