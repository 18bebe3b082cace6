"""The errors mnist_lab raises for bad input (not for bugs)."""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    """An error caused by the user's input (config, paths, files), not by a bug.

    Entry points print its message alone, without a traceback, and exit with
    status 2.
    """


class ConfigError(UserError):
    """A config value outside its allowed range.

    The message names the key, the bad value, what is allowed and how to fix it.
    """

    def __init__(self, key: str, value: Any, allowed: str, hint: str = "") -> None:
        message = f"Invalid config value {key}={value!r}: {allowed}."
        if hint:
            message += f" {hint}"
        super().__init__(message)
        self.key = key
        self.value = value


class RunError(Exception):
    """A run that started ended without its result, for a reason it states in one line
    (it diverged, or its record could not be written). Its record says so; ``run.py``
    prints the message alone and exits with status 1."""
