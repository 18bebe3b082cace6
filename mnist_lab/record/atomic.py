"""Files that readers never see half-written, and files that only one process creates.

Both work on NFS (v3 and later), where SLURM jobs write their records: a rename
replaces a file atomically, and ``O_CREAT | O_EXCL`` creates one atomically.
Temporary names carry the host and pid, so writers on several hosts never share one.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Callable


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")


def replace_atomically(path: Path, write: Any, guard: Callable[[], None] | None = None) -> None:
    """Call ``write(tmp_path)``, then rename the temp file over ``path``.

    Readers see the old file or the new one, never half of one. ``guard``, when
    given, is called between the two, right before the rename (a run checks that it
    still holds its folder's lock), so the window between check and write is a
    single rename.

    Raises:
        OSError: the file could not be written (a full disk, a read-only folder);
            ``path`` is then unchanged.
    """
    tmp = _temporary(path)
    try:
        write(tmp)
        if guard is not None:
            guard()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def create_exclusively(path: Path, text: str) -> bool:
    """Create ``path`` holding ``text`` unless it exists; True when this call created it.

    The text is written under a temporary name and hard-linked into place: the link
    fails when the file exists, atomically (also on NFS), and no reader ever sees an
    empty or half-written file. Of several processes that try at once, one wins.

    Raises:
        OSError: the folder cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    tmp.write_text(text)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # a filesystem without hard links: O_EXCL, atomic too, briefly empty
        return _create_with_o_excl(path, text)
    finally:
        tmp.unlink(missing_ok=True)


def _create_with_o_excl(path: Path, text: str) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return True
