"""One way to open a video, whether a file or a folder of frames, and the decoders that read files, by name.

A folder of frames is read by :class:`~cbam3d.data.frames.FrameFolderReader` whatever the decoder.

``"pyav"`` (:class:`~cbam3d.data.decoding.VideoReader`) is the default and always present. ``"decord"`` reads
through decord's ``VideoReader`` when the ``decord`` wheel is installed; it is measured against PyAV by
``cbam3d benchmark --data`` (see docs/benchmark.md). Every decoder gives the same frame for the same index of a
constant-rate file (up to the scaling filter when a short side is asked for) and the same :class:`VideoInfo`
(read by PyAV, so that clip positions do not depend on the decoder).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import torch

from .decoding import VideoDecodeError, VideoInfo, VideoReader, frame_indices, scaled_size
from .frames import FrameFolderReader

__all__ = [
    "DECODERS",
    "DecordReader",
    "available_decoders",
    "check_decoder",
    "decode_error",
    "open_video",
    "read_clip",
]

#: Decoder names, the default first.
DECODERS: tuple[str, ...] = ("pyav", "decord")


def _installed(decoder: str) -> bool:
    return decoder == "pyav" or importlib.util.find_spec(decoder) is not None


def available_decoders() -> list[str]:
    """The names of :data:`DECODERS` whose package is installed."""
    return [name for name in DECODERS if _installed(name)]


def check_decoder(decoder: str) -> None:
    """Raise ValueError (one line) unless ``decoder`` names an installed decoder."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    if not _installed(decoder):
        raise ValueError(f"decoder {decoder!r} needs the {decoder} package, which is not installed")


class DecordReader:
    """A video file read with decord, with the interface of :class:`~cbam3d.data.decoding.VideoReader`'s
    ``info`` and ``read``; use as a context manager.

    decord builds its frame index when it opens a file and scales while decoding at a size fixed then, so the
    file is opened by :meth:`read`, at the size asked for.
    """

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        self.path, self.threads = Path(path), threads
        with VideoReader(self.path, threads=1) as probe:
            self.info: VideoInfo = probe.info

    def read(
        self, indices: Sequence[int], *, short_side: int | None = None, skip_unreferenced: bool = True
    ) -> torch.Tensor:
        """Frames at the given 0-based indices (any order, repeats allowed, each frame decoded once) as uint8
        (T, C, H, W), like :meth:`~cbam3d.data.decoding.VideoReader.read`; an index past the last frame gets the
        last one.
        ``skip_unreferenced`` is accepted for the common interface: decord chooses what it decodes itself."""
        # Deferred: decord is an optional backend, imported only when chosen.
        import decord

        indices = frame_indices(indices)
        height, width = (-1, -1) if short_side is None else scaled_size(self.info.height, self.info.width, short_side)
        try:
            reader = decord.VideoReader(
                str(self.path), ctx=decord.cpu(0), width=width, height=height, num_threads=self.threads
            )
            last = len(reader) - 1
            clipped = [min(i, last) for i in indices]
            distinct = sorted(set(clipped))
            decoded = reader.get_batch(distinct).asnumpy()
        except decord.DECORDError as error:
            raise VideoDecodeError(f"cannot decode {self.path}: {error}") from error
        row_of = {index: row for row, index in enumerate(distinct)}
        return torch.from_numpy(decoded[[row_of[i] for i in clipped]]).permute(0, 3, 1, 2)

    def close(self) -> None:
        """Nothing stays open between reads."""

    def __enter__(self) -> DecordReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_video(
    path: str | Path, *, decoder: str = "pyav", fps: float | None = None, threads: int = 1
) -> VideoReader | DecordReader | FrameFolderReader:
    """A reader of ``path``: a frame folder's (at ``fps`` frames a second, None: the default) for a folder, else
    the video file's, decoded with ``decoder`` (one of :func:`available_decoders`; ``threads`` FFmpeg threads; a
    file states its own rate). All give ``info`` and ``read(indices, *, short_side=None)``; use as a context
    manager.

    Raises:
        ValueError: an unknown decoder, or one whose package is not installed.
        VideoDecodeError: the file or folder cannot be read as a video.
    """
    check_decoder(decoder)
    path = Path(path)
    if path.is_dir():
        return FrameFolderReader(path, fps=fps)
    if decoder == "decord":
        return DecordReader(path, threads=threads)
    return VideoReader(path, threads=threads)


def read_clip(
    path: str | Path,
    indices: Sequence[int],
    *,
    threads: int = 1,
    fps: float | None = None,
    short_side: int | None = None,
) -> torch.Tensor:
    """Open ``path`` (a video file or frame folder), read the frames at ``indices`` as uint8 (T, C, H, W) (scaled
    to a short side of ``short_side`` when given), close it."""
    with open_video(path, fps=fps, threads=threads) as reader:
        return reader.read(indices, short_side=short_side)


def decode_error(path: str | Path) -> str | None:
    """Why the first frame of ``path`` (a video file or frame folder) cannot be decoded, or None when it can."""
    try:
        read_clip(path, [0])
    except VideoDecodeError as error:
        return str(error)
    return None
