"""The one error type of the commands' bad input."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(ValueError):
    """Bad input from the user (a flag, a path, a data set): reported as one line, without a traceback."""
