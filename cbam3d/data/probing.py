"""Which videos of a data set cannot be opened, found before training by reading their headers only.

Opening a file reads its container header and stream parameters, no frame: about a millisecond for a real
video, less for an empty or truncated one, so checking every file of a split up front is cheap; the files are
opened by a few threads at once (FFmpeg releases the GIL while it reads).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .decoding import VideoDecodeError, VideoReader

__all__ = ["unopenable_videos"]

_MAX_THREADS = 8


def _open_error(path: Path) -> str | None:
    try:
        with VideoReader(path):
            return None
    except VideoDecodeError as error:
        return str(error)


def unopenable_videos(paths: Sequence[str | os.PathLike], *, threads: int | None = None) -> dict[Path, str]:
    """The files among ``paths`` that cannot be opened as a video, with why, in the order given.

    Args:
        paths: video files.
        threads: files opened at once; None for the CPU count, at most 8.
    """
    paths = [Path(p) for p in paths]
    threads = threads or min(_MAX_THREADS, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        errors = list(pool.map(_open_error, paths))
    return {path: error for path, error in zip(paths, errors) if error is not None}
