"""Crash-safe file writing: a file is either its old complete self or its new complete self, never half of one.

The content goes to a temporary file in the target's own folder (so the final rename stays on one file
system), is flushed and ``fsync``-ed, and then ``os.replace``-d onto the target, which POSIX and Windows
make atomic. A failure at any point removes the temporary file and leaves the target untouched, and an ``OSError``
out of a write names the target (not the temporary file): a full disk reads "no space left on device" with the
path the user asked for. A process killed mid-write leaves its temporary file (``.NAME.XXXXXXXX.tmp``) behind;
:func:`remove_temporaries` clears them where no other process writes.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

__all__ = [
    "atomic_torch_save",
    "atomic_write",
    "atomic_write_json",
    "check_output_folder",
    "no_space_message",
    "remove_temporaries",
]

# The errors of a write that found no room, in words
_NO_SPACE = {
    errno.ENOSPC: "no space left on device",
    errno.EFBIG: "the file size limit (ulimit -f) is reached",
    errno.EDQUOT: "the disk quota is exceeded",
}

_TEMPORARY_SUFFIX = ".tmp"


class _RecordingFileIO(io.FileIO):
    """A raw file whose first failed ``write`` is kept in :attr:`error`: writers such as ``torch.save`` replace the
    ``OSError`` of a full disk by their own ``RuntimeError`` ("unexpected pos"), which would hide the cause. (A
    subclass, not a wrapper: writers such as ``torch.export.save`` check that they were given an ``io.IOBase``.)"""

    error: OSError | None = None

    def write(self, data: Any) -> int | None:
        try:
            return super().write(data)
        except OSError as error:
            self.error = self.error or error
            raise


def atomic_write(
    path: str | os.PathLike, write: Callable[[IO[bytes]], Any], *, check: Callable[[Path], Any] | None = None
) -> Path:
    """Call ``write(file)`` on a temporary binary file and atomically move it to ``path``; ``check``, when given,
    is called with the temporary file's path once it is written and synced, before the move: an exception from
    it leaves ``path`` as it was.

    Returns:
        The target path.

    Raises:
        OSError: the first failed write (even one that ``write`` turned into another exception), its
            ``filename`` the target ``path`` (:func:`no_space_message` tells a full disk).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TEMPORARY_SUFFIX, dir=path.parent)
    raw = _RecordingFileIO(fd, "wb")
    try:
        with io.BufferedWriter(raw) as file:  # what open(path, "wb") gives
            write(file)
            file.flush()
            os.fsync(file.fileno())
        if check is not None:
            check(Path(tmp_name))
        os.chmod(tmp_name, _mode_for(path))
        os.replace(tmp_name, path)
    except BaseException as failure:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        cause = raw.error if raw.error is not None else failure
        if isinstance(cause, OSError) and cause.errno is not None:  # OSError(errno, ...) picks the subclass
            raise OSError(cause.errno, cause.strerror, str(path)) from failure
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


def no_space_message(error: BaseException) -> str | None:
    """ "no space left on device while writing PATH" (or the file-size limit, or the quota) when ``error`` is a
    write that found no room, else None."""
    if not isinstance(error, OSError) or error.errno not in _NO_SPACE:
        return None
    return _NO_SPACE[error.errno] + (f" while writing {error.filename}" if error.filename else "")


def remove_temporaries(folder: str | os.PathLike, names: str = "*") -> list[Path]:
    """Remove the temporary files that writes of files named like the glob ``names`` left in ``folder``.

    Only for a folder that no other process writes to at the same time (a run folder under its lock): there,
    every such file is left over by a write that was killed. Files with other names are never touched.

    Returns:
        The files removed.
    """
    removed = []
    for candidate in Path(folder).glob(f".{names}.*{_TEMPORARY_SUFFIX}"):
        # mkstemp's part is 8 characters: ".NAME." + 8 + ".tmp"
        if candidate.is_file() and len(candidate.name.rsplit(".", 2)[-2]) == 8:
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
                removed.append(candidate)
    return removed


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
