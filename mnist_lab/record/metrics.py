"""The format of ``metrics.csv``: one row per evaluation, read and written here.

The file is read by column name. :data:`METRIC_COLUMNS` are required (a minimum):
a file with more columns, a new metric or one an older or newer mnist_lab wrote,
still reads, resumes and compares; a row keeps every column its file has. Error
rates are fractions, ``elapsed_s`` seconds, ``lr`` the learning rate of the step
before the row. Rows are appended one at a time (a crash keeps them); a row whose
keys the header lacks rewrites the file once with the wider header.
:class:`~mnist_lab.record.folder.RunRecord` names the file.
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Callable

from ..errors import UserError
from .atomic import replace_atomically

log = logging.getLogger(__name__)
METRIC_COLUMNS = (
    "step", "epoch", "train/error", "train/loss", "val/error", "val/loss", "lr", "elapsed_s",
)


def _columns(rows: list[dict[str, float]], header: list[str] = ()) -> list[str]:
    """The required columns, then ``header``'s others, then any new key, in order seen."""
    seen = dict.fromkeys([*METRIC_COLUMNS, *header, *(k for r in rows for k in r)])
    return list(seen)


def write_rows(path: Path, rows: list[dict[str, float]],
               guard: Callable[[], None] | None = None) -> None:
    """Write ``path`` anew (atomically): the header, then ``rows``.

    ``guard``: called right before the file is replaced (see
    :func:`~mnist_lab.record.atomic.replace_atomically`).
    """
    columns = _columns(rows)

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, write, guard)


def _header(path: Path) -> list[str]:
    with open(path, newline="") as f:
        return next(csv.reader(f), [])


def append_row(path: Path, row: dict[str, float]) -> None:
    """Append one row (its keys: at least :data:`METRIC_COLUMNS`).

    A key the file's header lacks rewrites the file once with that column added
    (older rows get an empty cell).
    """
    header = _header(path) if path.is_file() else []
    if not set(row) <= set(header):
        write_rows(path, [*read_rows(path), row])
        return
    with open(path, "a", newline="") as f:
        csv.DictWriter(f, header, restval="").writerow(row)


def _parse(line: dict[str, str | None]) -> dict[str, float]:
    """A row's values: ``step`` int, the others float (an empty extra cell: NaN).

    Raises:
        ValueError, TypeError: a required value is missing or not a number.
    """
    row: dict[str, float] = {"step": int(line["step"])}
    for key, text in line.items():
        if key is None or key == "step":
            continue
        if key in METRIC_COLUMNS or text:
            row[key] = float(text)
        else:
            row[key] = math.nan
    return row


def read_rows(path: Path) -> list[dict[str, float]]:
    """The rows of ``path`` in file order; [] if there is no file.

    A last row cut short (the run was killed while writing it) is left out
    silently; a row before it that cannot be read is dropped with one warning that
    names its line.

    Raises:
        UserError: the header lacks a required column (not a mnist_lab metrics file).
    """
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in METRIC_COLUMNS if c not in (reader.fieldnames or METRIC_COLUMNS)]
        if missing:
            raise UserError(f"'{path}' lacks the columns {missing} (it has "
                            f"{reader.fieldnames}): it is not a mnist_lab metrics file.")
        lines = list(reader)
    rows = []
    for number, line in enumerate(lines, start=2):
        try:
            rows.append(_parse(line))
        except (TypeError, ValueError):
            if number - 1 < len(lines):
                log.warning("'%s', line %d, cannot be read and is left out: %s", path, number,
                            ",".join(str(v) for v in line.values())[:200])
    return rows
