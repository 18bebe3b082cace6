"""Where a result came from: package versions and the git commit of the code."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "torchvision", "hydra-core", "omegaconf", "wandb", "numpy", "mnist_lab")


def versions() -> dict[str, str]:
    """Python's and each installed package's version ("absent" when not installed)."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def git_commit() -> dict[str, object] | None:
    """The commit of the mnist_lab source tree and whether it had local changes.

    None when the code does not run from a git checkout (e.g. an installed wheel).
    """
    source = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=source, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}
