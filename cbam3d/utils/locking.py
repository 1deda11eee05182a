"""One process at a time in a folder: :func:`folder_lock` holds ``FOLDER/.lock`` for the life of a block.

The lock is ``flock`` on an open file, so the kernel drops it when its process ends in any way (``kill -9``
included): a lock left by a dead process is free again, with no stale-lock clean-up. The file holds the pid of
its last holder, for the message of whoever finds the folder busy. Where ``fcntl`` does not exist (Windows) the
block runs without a lock.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ["LOCK_FILE", "FolderBusyError", "folder_lock"]

LOCK_FILE = ".lock"


class FolderBusyError(RuntimeError):
    """Another process holds the folder's lock; ``str()`` is a one-line message naming the folder and the pid."""


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, *, what: str = "process") -> Iterator[None]:
    """Hold the lock of ``folder`` (created if needed) for the block.

    Args:
        folder: the folder to own.
        what: how the message names the holder, e.g. ``"training run"``.

    Raises:
        FolderBusyError: another process holds it (at once: never waits).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise FolderBusyError(
                f"{folder} is in use by another {what} (pid {holder}); wait for it to end, or use another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the file drops the lock
