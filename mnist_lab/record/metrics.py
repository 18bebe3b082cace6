"""The format of ``metrics.csv``: one row per evaluation, read and written here.

Its columns are :data:`METRIC_COLUMNS`; the header is the format, checked when
read. Error rates are fractions, ``elapsed_s`` seconds, ``lr`` the learning rate
of the step before the row. Rows are appended one at a time (a crash keeps them);
:class:`~mnist_lab.record.folder.RunRecord` names the file.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .atomic import replace_atomically
from ..errors import UserError

METRIC_COLUMNS = (
    "step", "epoch", "train/error", "train/loss", "val/error", "val/loss", "lr", "elapsed_s",
)


def write_rows(path: Path, rows: list[dict[str, float]]) -> None:
    """Write ``path`` anew (atomically): the header, then ``rows``."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, METRIC_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, write)


def append_row(path: Path, row: dict[str, float]) -> None:
    """Append one row (its keys: at least :data:`METRIC_COLUMNS`)."""
    with open(path, "a", newline="") as f:
        csv.DictWriter(f, METRIC_COLUMNS).writerow({k: row[k] for k in METRIC_COLUMNS})


def read_rows(path: Path) -> list[dict[str, float]]:
    """The rows of ``path``: ``step`` as int, the rest as float; [] if there is no file.

    A last row cut short (the run was killed while writing it) is left out.

    Raises:
        UserError: the header is not :data:`METRIC_COLUMNS` (not this format), or a
            row before the last one cannot be read.
    """
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is not None and tuple(reader.fieldnames) != METRIC_COLUMNS:
            raise UserError(f"'{path}' has the columns {reader.fieldnames}, not "
                            f"{list(METRIC_COLUMNS)}: it is not a mnist_lab metrics file.")
        lines = list(reader)
    rows = []
    for number, line in enumerate(lines, start=2):
        try:
            rows.append({k: int(line[k]) if k == "step" else float(line[k])
                         for k in METRIC_COLUMNS})
        except (TypeError, ValueError):
            if number - 1 < len(lines):
                raise UserError(f"'{path}', line {number}, cannot be read: {line}") from None
    return rows
