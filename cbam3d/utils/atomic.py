"""Crash-safe file writing: a file is either its old complete self or its new complete self, never half of one.

The content goes to a temporary file in the target's own folder (so the final rename stays on one file
system), is flushed and ``fsync``-ed, and then ``os.replace``-d onto the target, which POSIX and Windows
make atomic. A failure at any point removes the temporary file and leaves the target untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

__all__ = ["atomic_torch_save", "atomic_write", "atomic_write_json", "check_output_folder"]


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(file)`` on a temporary binary file and atomically move it to ``path``.

    Returns:
        The target path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp_name, _mode_for(path))
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(path.parent)
    return path


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)``, atomically."""
    return atomic_write(path, lambda file: torch.save(obj, file))


def atomic_write_json(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    return atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def check_output_folder(folder: str | os.PathLike) -> None:
    """Raise ValueError (one line) unless ``folder`` is a folder that exists or can be created, and is writable.

    Meant for the start of a command, so that a bad output path fails before hours of work rather than after.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file, not a folder: give a new or existing folder")
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    if not existing.is_dir():
        raise ValueError(f"{folder} cannot be created: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{folder} cannot be written: {existing} is not writable")


def _mode_for(path: Path) -> int:
    """The mode a plain ``open(path, "wb")`` would leave (mkstemp's own is 0600): the existing file's, else
    0666 less the umask."""
    with contextlib.suppress(FileNotFoundError):
        return stat.S_IMODE(path.stat().st_mode)
    mask = os.umask(0o022)  # os.umask sets and returns the mask: the only portable way to read it
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_directory(folder: Path) -> None:
    """Make the rename itself durable (where the platform lets a folder be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
