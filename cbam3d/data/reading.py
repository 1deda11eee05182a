"""One way to open a video, whether a file (:class:`~cbam3d.data.decoding.VideoReader`) or a folder of frames
(:class:`~cbam3d.data.frames.FrameFolderReader`): both give ``info`` and ``read(indices)``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from .decoding import VideoDecodeError, VideoReader
from .frames import FrameFolderReader

__all__ = ["decode_error", "open_video", "read_clip"]


def open_video(path: str | Path, *, fps: float | None = None, threads: int = 1) -> VideoReader | FrameFolderReader:
    """A reader of ``path``: a frame folder's (at ``fps`` frames a second, None: the default) for a folder, else a
    video file's (``threads`` FFmpeg threads; it states its own rate). Use as a context manager.

    Raises:
        VideoDecodeError: the file or folder cannot be read as a video.
    """
    path = Path(path)
    if path.is_dir():
        return FrameFolderReader(path, fps=fps)
    return VideoReader(path, threads=threads)


def read_clip(path: str | Path, indices: Sequence[int], *, threads: int = 1, fps: float | None = None) -> torch.Tensor:
    """Open ``path`` (a video file or frame folder), read the frames at ``indices`` as uint8 (T, C, H, W), close it."""
    with open_video(path, fps=fps, threads=threads) as reader:
        return reader.read(indices)


def decode_error(path: str | Path) -> str | None:
    """Why the first frame of ``path`` (a video file or frame folder) cannot be decoded, or None when it can."""
    try:
        read_clip(path, [0])
    except VideoDecodeError as error:
        return str(error)
    return None
