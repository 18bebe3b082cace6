"""Files that readers never see half-written."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any


def replace_atomically(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)``, then rename the temp file over ``path``.

    Readers see the old file or the new one, never half of one.
    """
    tmp = path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")  # NFS: per host
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
