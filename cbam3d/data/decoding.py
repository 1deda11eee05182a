"""Reading the frames of one clip from a video file with PyAV.

Why PyAV directly rather than pytorchvideo's ``EncodedVideo``: a clip here is a list of frame indices, and
:class:`VideoReader` seeks to the key frame before the first index, decodes forward only until the last one,
and converts to RGB only the frames the clip keeps. Memory is bounded by one clip, whatever the file's length;
:meth:`VideoReader.frames` streams through a whole file one frame at a time (sliding-window prediction).
(``EncodedVideo`` works in seconds, converts every decoded frame and, with its default settings, decodes the
whole file up front.) Errors from FFmpeg become :class:`VideoDecodeError`, naming the file.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

__all__ = ["VideoDecodeError", "VideoInfo", "VideoReader", "decode_error", "read_clip"]


class VideoDecodeError(RuntimeError):
    """A video file could not be opened or decoded."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about its first video stream."""

    num_frames: int
    fps: float
    height: int
    width: int


class VideoReader:
    """An open video file; use as a context manager.

    Args:
        path: the video file.
        threads: FFmpeg decoding threads for this file (0 = FFmpeg chooses). 1 is the right choice inside
            DataLoader workers, which already run in parallel.

    Raises:
        VideoDecodeError: the file is missing, is not a video, or has no video stream.
    """

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        self.path = Path(path)
        try:
            self._container = av.open(str(self.path), mode="r")
        except (av.FFmpegError, OSError, ValueError) as error:
            raise VideoDecodeError(f"cannot open video {self.path}: {error}") from error
        try:
            if not self._container.streams.video:
                raise VideoDecodeError(f"{self.path} has no video stream")
            self._stream = self._container.streams.video[0]
            # AVI stores no presentation timestamps: FFmpeg guesses them from the decode order, which is not the
            # display order once B-frames reorder the stream. There the display order itself is the timeline.
            self._display_order = self._container.format.name == "avi" and bool(self._stream.codec_context.has_b_frames)
            self._stream.thread_count = threads
            if threads != 1:
                self._stream.thread_type = "AUTO"
            self.info = self._probe()
        except BaseException:
            self._container.close()
            raise

    def _probe(self) -> VideoInfo:
        stream = self._stream
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            raise VideoDecodeError(f"{self.path} does not state a frame rate")
        fps = float(rate)
        num_frames = stream.frames
        if num_frames <= 0:  # containers such as webm / some avi leave the count out: use the duration
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif self._container.duration is not None:
                # matroska / webm state the end of their timeline, which starts at 0, not at the first frame
                start = self._container.start_time or 0
                seconds = (self._container.duration - start) / av.time_base
            else:
                seconds = 0.0
            num_frames = int(round(seconds * fps))
        if num_frames <= 0:
            num_frames = self._count_frames()
        codec = stream.codec_context
        return VideoInfo(num_frames=num_frames, fps=fps, height=codec.height, width=codec.width)

    def _count_frames(self) -> int:
        try:
            count = sum(1 for _ in self._container.decode(self._stream))
            self._container.seek(0)
        except av.FFmpegError as error:
            raise VideoDecodeError(f"cannot decode {self.path}: {error}") from error
        if count == 0:
            raise VideoDecodeError(f"{self.path} holds no decodable frames")
        return count

    def _seconds(self, frame: av.VideoFrame, start_pts: int, time_base: Fraction) -> float:
        """When ``frame`` is shown, in seconds from the stream's start."""
        if frame.pts is None:
            raise VideoDecodeError(f"{self.path}: a decoded frame has no timestamp")
        return float((frame.pts - start_pts) * time_base)

    def _shown(self, frames: Iterator[av.VideoFrame]) -> Iterator[_ShownFrame]:
        """Each decoded frame with when it is shown: by its timestamp, or by its place in display order (counted
        from the stream's first frame, so the caller decodes from the start) where timestamps are those of the
        decode order."""
        if self._display_order:
            fps = self.info.fps
            for ordinal, frame in enumerate(frames):
                yield _ShownFrame(frame, ordinal / fps)
            return
        time_base, start_pts = self._stream.time_base, self._stream.start_time or 0
        for frame in frames:
            yield _ShownFrame(frame, self._seconds(frame, start_pts, time_base))

    def _decode(self, wanted: list[int], *, seek: bool) -> dict[int, np.ndarray]:
        """Frame index -> RGB array for the sorted ``wanted`` indices, chosen by timestamp.

        Index ``i`` stands for the time ``i / fps`` after the stream's start and gets the frame whose timestamp
        is nearest to it, so variable-frame-rate files (phones write them) decode as well as constant-rate
        ones, whose frame ``i`` is shown at exactly that time (an AVI with B-frames: frame ``i`` in display order,
        decoded from the start). Empty when seeking landed more than half a frame
        after the first wanted time.
        """
        stream = self._stream
        fps = self.info.fps
        seek = seek and not self._display_order
        if seek:
            target = (stream.start_time or 0) + int(math.floor(wanted[0] / fps / stream.time_base))
            self._container.seek(target, stream=stream, backward=True, any_frame=False)
        else:
            self._container.seek(0)
        pending = deque(wanted)
        arrays: dict[int, np.ndarray] = {}
        previous: _ShownFrame | None = None
        for current in self._shown(self._container.decode(stream)):
            if previous is None and seek and current.seconds > pending[0] / fps + 0.5 / fps:
                return {}
            while pending and current.seconds >= pending[0] / fps:
                target = pending.popleft()
                arrays[target] = current.nearer(previous, target / fps).rgb()
            if not pending:
                break
            previous = current
        if previous is not None:  # indices past the last decodable frame get the last one
            while pending:
                arrays[pending.popleft()] = previous.rgb()
        return arrays

    def read(self, indices: Sequence[int]) -> torch.Tensor:
        """Frames at the given 0-based indices (any order, repeats allowed).

        Returns:
            uint8 tensor of shape (T, C, H, W) with C = 3 (RGB), T = ``len(indices)``.
            Index ``i`` is the frame shown nearest to the time ``i / fps`` (frame ``i`` of a constant-rate
            file). An index past the last decodable frame (containers sometimes overstate the frame count)
            gets the last decoded frame.

        Raises:
            VideoDecodeError: FFmpeg fails, or no frame at all can be decoded.
        """
        if len(indices) == 0:
            raise ValueError("indices must name at least one frame")
        wanted = {int(i) for i in indices}
        if min(wanted) < 0:
            raise ValueError(f"frame indices must be >= 0, got {min(wanted)}")
        ordered = sorted(wanted)
        first, last = ordered[0], ordered[-1]
        try:
            arrays = self._decode(ordered, seek=first > 0)
            if not arrays and first > 0:  # seeking failed on this file: decode from the start instead
                arrays = self._decode(ordered, seek=False)
        except av.FFmpegError as error:
            raise VideoDecodeError(f"cannot decode {self.path}: {error}") from error
        if not arrays:
            raise VideoDecodeError(f"no frame of {self.path} between indices {first} and {last} could be decoded")
        frames = [arrays[int(i)] for i in indices]
        return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)

    def frames(self, *, keep: Callable[[int], bool] | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """Decode the file from its start, one frame at a time: ``(index, uint8 (C, H, W) RGB frame)`` for every
        0-based frame index for which ``keep(index)`` is true (every frame when ``keep`` is None).

        Only the kept frames are converted to RGB, and none is held once yielded: memory does not grow with
        the file's length. Indices come from the timestamps, so they are increasing but may skip where the
        file has gaps.

        Raises:
            VideoDecodeError: FFmpeg fails.
        """
        try:
            self._container.seek(0)
            for shown in self._shown(self._container.decode(self._stream)):
                index = int(round(shown.seconds * self.info.fps))
                if keep is None or keep(index):
                    yield index, torch.from_numpy(shown.rgb()).permute(2, 0, 1)
        except av.FFmpegError as error:
            raise VideoDecodeError(f"cannot decode {self.path}: {error}") from error

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _ShownFrame:
    """A decoded frame, its time in seconds from the stream's start, and its RGB array once asked for."""

    def __init__(self, frame: av.VideoFrame, seconds: float) -> None:
        self.frame, self.seconds = frame, seconds
        self._rgb: np.ndarray | None = None

    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            self._rgb = self.frame.to_ndarray(format="rgb24")
        return self._rgb

    def nearer(self, previous: _ShownFrame | None, seconds: float) -> _ShownFrame:
        """This frame or ``previous`` (shown before it), whichever is closer in time to ``seconds``."""
        if previous is not None and seconds - previous.seconds <= self.seconds - seconds:
            return previous
        return self


def read_clip(path: str | Path, indices: Sequence[int], *, threads: int = 1) -> torch.Tensor:
    """Open ``path``, read the frames at ``indices`` as uint8 (T, C, H, W), close it."""
    with VideoReader(path, threads=threads) as reader:
        return reader.read(indices)


def decode_error(path: str | Path) -> str | None:
    """Why the first frame of ``path`` cannot be decoded, or None when it can."""
    try:
        read_clip(path, [0])
    except VideoDecodeError as error:
        return str(error)
    return None
