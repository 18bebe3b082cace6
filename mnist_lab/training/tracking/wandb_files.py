"""Read back what wandb 0.31 wrote for a run (``run-<id>.wandb``); wandb ships no reader.

Used to learn which steps a resumed offline run already holds (see
:class:`~mnist_lab.training.tracking.wandb_tracker.WandbTracker`), and by the tests.

Format (checked on wandb 0.31.0 files and wandb-core's writer ``core/pkg/leveldb``):
header ``b":W&B"`` + 0xBEE1 (uint16 LE) + version 0, then LevelDB log framing in
32 KiB blocks counted from offset 0 (the header is in block 0).  Chunk = crc
(uint32 LE), length (uint16 LE), type (1 full, 2 first, 3 middle, 4 last),
payload; a block tail under 7 bytes is zero padding.  The crc is plain unmasked
IEEE crc32 (``zlib.crc32``) of type byte + payload, not LevelDB's masked crc32c.
Payloads are ``wandb_internal_pb2.Record``; history/summary/config items name
their key path in ``nested_key`` (a few in ``key``): ``"val/error"`` is one key,
a logged dict or ``wandb.Image`` gives paths like ``["examples", "_type"]``.

Read after ``wandb.teardown()``: ``run.finish()`` returns before wandb-core has
written the tail (exit record...) of the file, teardown waits for wandb-core
to exit.  Flushes happen every 15 s and at close: a SIGKILLed run may leave just
the header (exit_code None); an uncaught exception records exit code 1.  The run
record is rewritten in full when name/tags/notes change (per field, the last
non-empty value wins); summary/config records are incremental, applied in order.
Resuming offline (``init(id=..., resume="allow", mode="offline")``) never
appends: wandb makes a new folder ``offline-run-<YYYYmmdd_HHMMSS>-<id>`` (plus
``-1``, ``-2`` if that second is taken) with a new ``run-<id>.wandb`` whose run
record has ``resume=True`` (``resumed`` stays False offline), step 0 and only
the config given to that ``init``.  ``read_runs(find_run_files(dir, id))``
merges sessions: config/summary updated in order, history rows concatenated (a
step logged in two sessions appears twice), exit code from the last session.
"""

from __future__ import annotations

import glob
import json
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from google.protobuf.json_format import MessageToDict
from wandb.proto import wandb_internal_pb2

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK_SIZE = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class WandbFileError(ValueError):
    """The file is not a wandb run file, or it is corrupt."""


@dataclass
class WandbRun:
    """A run as recorded in ``.wandb`` files; ``files`` are relative to ``<run dir>/files``."""

    run_id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    project: str = ""
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None
    resumed: bool = False
    files: list[str] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)

    def file_path(self, relpath: str) -> Path | None:
        """Where a recorded file (e.g. an image's ``path``) is, newest session first."""
        hits = [p.parent / "files" / relpath for p in reversed(self.paths)]
        return next((h for h in hits if h.exists()), None)


def read_records(path: str | Path, strict: bool = True) -> list[wandb_internal_pb2.Record]:
    """Parse all records of a ``.wandb`` file, checking header, framing and crc.

    A record cut off at the end (run still writing, or killed) is dropped.

    Raises:
        WandbFileError: a bad header or a bad chunk, with ``strict``. Without it
            the records before the damage are returned: a killed session's
            garbled tail counts as not written.
    """
    data = Path(path).read_bytes()
    if data[:7] != HEADER:
        if not strict:
            return []
        raise WandbFileError(f"{path}: bad header {data[:7]!r}")
    records, parts, off = [], None, len(HEADER)
    while off + 7 <= len(data):
        room = BLOCK_SIZE - off % BLOCK_SIZE
        if room < 7 or data[off:off + 7] == bytes(7):  # padding, zeroed block tail
            off += room
            continue
        crc, length, kind = struct.unpack_from("<IHB", data, off)
        payload, end = data[off + 7:off + 7 + length], off + 7 + length
        if end > len(data) and length <= room - 7:  # cut off; a chunk past its block is damage
            break
        bad_type = not FULL <= kind <= LAST or (kind in (FULL, FIRST)) != (parts is None)
        if length > room - 7 or zlib.crc32(bytes([kind]) + payload) != crc or bad_type:
            if not strict:
                break
            raise WandbFileError(f"{path}: bad chunk (crc, length or type {kind}) at offset {off}")
        parts = (parts or []) + [payload]
        if kind in (FULL, LAST):
            records.append(wandb_internal_pb2.Record.FromString(b"".join(parts)))
            parts = None
        off = end
    return records


def _value(item: Any) -> Any:
    which = item.WhichOneof("value") if "value" in item.DESCRIPTOR.oneofs_by_name else None
    if item.value_json or which == "json":  # wandb-core always writes value_json
        return json.loads(item.value_json or item.json)
    return None if which in (None, "none") else getattr(item, which)


def _set(d: dict, item: Any, remove: bool = False) -> None:
    *parents, last = list(item.nested_key) or [item.key]
    for k in parents:
        if not isinstance(d.get(k), dict):
            if remove:
                return
            d[k] = {}
        d = d[k]
    if remove:
        d.pop(last, None)
    else:
        d[last] = _value(item)


def _apply(d: dict, updates: Iterable[Any], removes: Iterable[Any] = ()) -> None:
    for item in updates:
        _set(d, item)
    for item in removes:
        _set(d, item, remove=True)


def read_runs(paths: Iterable[str | Path], strict: bool = True) -> WandbRun:
    """Merge the ``.wandb`` files of one run's sessions, oldest first (module doc).

    Raises:
        WandbFileError: a damaged file, with ``strict`` (see :func:`read_records`).
    """
    run = WandbRun(paths=[Path(p) for p in paths])
    for path in run.paths:
        run.exit_code = None  # only the last session's exit record counts
        for rec in read_records(path, strict):
            kind = rec.WhichOneof("record_type")
            if kind == "run":
                r = rec.run
                for attr, src in [("run_id", r.run_id), ("name", r.display_name), ("tags", r.tags),
                                  ("group", r.run_group), ("job_type", r.job_type),
                                  ("notes", r.notes), ("project", r.project)]:
                    setattr(run, attr, (list(src) if attr == "tags" else src) or getattr(run, attr))
                run.resumed = run.resumed or r.resume or r.resumed
                _apply(run.config, r.config.update, r.config.remove)
            elif kind in ("config", "summary"):
                items = getattr(rec, kind)
                _apply(run.config if kind == "config" else run.summary, items.update, items.remove)
            elif kind == "history":
                run.history.append(row := {})
                _apply(row, rec.history.item)
                row["_step"] = int(row.get("_step", rec.history.step.num))
            elif kind == "files":
                run.files += [f.path for f in rec.files.files if f.path not in run.files]
            elif kind == "metric":
                run.metrics.append(MessageToDict(rec.metric, preserving_proto_field_name=True))
            elif kind == "artifact":
                a = rec.artifact
                run.artifacts.append({"name": a.name, "type": a.type, "aliases": list(a.aliases),
                                      "metadata": json.loads(a.metadata or "{}"),
                                      "files": [e.path for e in a.manifest.contents]})
            elif kind == "exit":
                run.exit_code = rec.exit.exit_code
    run.run_id = run.run_id or (run.paths[-1].stem[4:] if run.paths else "")  # killed run
    run.config.pop("_wandb", None)  # wandb's own bookkeeping
    run.summary.pop("_wandb", None)
    return run


def read_run(run_dir_or_wandb_file: str | Path) -> WandbRun:
    """Read one session: a ``run-<id>.wandb`` file or the run folder holding it."""
    p = Path(run_dir_or_wandb_file)
    found = sorted(p.glob("run-*.wandb")) if p.is_dir() else [p]
    if len(found) != 1:
        raise FileNotFoundError(f"expected one run-*.wandb in {p}, found {found}")
    return read_runs(found)


def find_run_files(wandb_dir: str | Path, run_id: str) -> list[Path]:
    """All ``run-<run_id>.wandb`` under ``wandb_dir`` (``init(dir=...)`` or its
    ``wandb/``), oldest session first (folder timestamp, then ``-N`` suffix)."""
    root, found = Path(wandb_dir), {}
    for base in (root, root / "wandb", root / ".wandb"):
        for f in base.glob(f"*run-*/run-{glob.escape(run_id)}.wandb"):
            if not f.parent.is_symlink():  # skip wandb/latest-run
                found.setdefault(f.resolve(), f)

    def key(f: Path) -> tuple:
        m = re.search(rf"run-(\d{{8}}_\d{{6}})-{re.escape(run_id)}(?:-(\d+))?$", f.parent.name)
        return (m[1], int(m[2] or 0)) if m else ("", 0), f.stat().st_mtime_ns

    return sorted(found.values(), key=key)


def history_values(run: WandbRun, key: str) -> list[tuple[int, Any]]:
    """``(step, value)`` for every history row that has ``key``, in logged order."""
    return [(row["_step"], row[key]) for row in run.history if key in row]


def logged_steps(wandb_dir: str | Path, run_id: str, key: str) -> set[int]:
    """The steps of the history rows holding ``key``, over every session of a run.

    Only what is on disk counts: the unwritten or damaged tail of a killed
    session's file is not there.
    """
    run = read_runs(find_run_files(wandb_dir, run_id), strict=False)
    return {step for step, _ in history_values(run, key)}
