"""Reading the frames of one clip from a video file with PyAV.

Why PyAV directly rather than pytorchvideo's ``EncodedVideo``: a clip here is a list of frame indices, and
:class:`VideoReader` seeks to the key frame before the first index, decodes forward only until the last one, skips
the frames before the clip that no other frame refers to (``skip_frame="NONREF"``: the B-frames of a typical H.264
file, about half of the frames from the key frame to the clip), and converts to RGB only the frames the clip keeps,
scaled in the same libswscale pass when a short side is asked for. Memory is bounded by one clip, whatever the
file's length; :meth:`VideoReader.frames` streams through a whole file one frame at a time (sliding-window
prediction). (``EncodedVideo`` works in seconds, converts every decoded frame and, with its default settings,
decodes the whole file up front.) Errors from FFmpeg become :class:`VideoDecodeError`, naming the file.
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
from av.video.reformatter import VideoReformatter

__all__ = ["VideoDecodeError", "VideoInfo", "VideoReader", "frame_indices", "scaled_size"]


class VideoDecodeError(RuntimeError):
    """A video file could not be opened or decoded."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about its first video stream."""

    num_frames: int
    fps: float
    height: int
    width: int


def frame_indices(indices: Sequence[int]) -> list[int]:
    """``indices`` as ints, checked the way every reader's ``read`` checks them.

    Raises:
        ValueError: no index, or a negative one.
    """
    checked = [int(i) for i in indices]
    if not checked:
        raise ValueError("indices must name at least one frame")
    if min(checked) < 0:
        raise ValueError(f"frame indices must be >= 0, got {min(checked)}")
    return checked


def scaled_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """``(height, width)`` with the short side set to ``short_side`` and the aspect ratio kept, the long side
    rounded down as ``torchvision.transforms.v2.Resize(short_side)`` rounds it."""
    if isinstance(short_side, bool) or not isinstance(short_side, int) or short_side < 1:
        raise ValueError(f"short_side must be a positive int, got {short_side!r}")
    if height <= width:
        return short_side, max(int(short_side * width / height), 1)
    return max(int(short_side * height / width), 1), short_side


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
            # One libswscale context for the file: a frame's own to_ndarray builds a new one for every frame,
            # which cost three times the conversion itself (0.72 against 0.19 ms a 212x160 frame).
            self._reformatter = VideoReformatter()
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
            num_frames = int(round(self._stated_seconds() * fps))
        if num_frames <= 0:
            num_frames = self._count_frames()
        codec = stream.codec_context
        return VideoInfo(num_frames=num_frames, fps=fps, height=codec.height, width=codec.width)

    def _stated_seconds(self) -> float:
        """How long the video stream lasts by what the container says; 0 when it does not say."""
        stream = self._stream
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        # matroska / webm state the ends of their streams and timeline, which starts at 0, not at the first frame
        start = self._container.start_time or 0
        tagged = _tag_seconds(stream.metadata.get("DURATION"))
        if tagged is not None:  # matroska / webm written by FFmpeg or mkvmerge: this stream's own end
            return tagged - start / av.time_base
        # The container's duration is that of its longest stream: an audio track that runs on past the last
        # frame (camera and YouTube files) would add frames that are not there, so trust it for a lone stream only.
        if self._container.duration is not None and len(self._container.streams) == 1:
            return (self._container.duration - start) / av.time_base
        return 0.0

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

    def _shown(self, frames: Iterator[av.VideoFrame], size: tuple[int, int] | None) -> Iterator[_ShownFrame]:
        """Each decoded frame with when it is shown: by its timestamp, or by its place in display order (counted
        from the stream's first frame, so the caller decodes from the start) where timestamps are those of the
        decode order. ``size``: the (H, W) of its RGB array; None: the file's."""
        convert = self._rgb_of(size)
        if self._display_order:
            fps = self.info.fps
            for ordinal, frame in enumerate(frames):
                yield _ShownFrame(frame, ordinal / fps, convert)
            return
        time_base, start_pts = self._stream.time_base, self._stream.start_time or 0
        for frame in frames:
            yield _ShownFrame(frame, self._seconds(frame, start_pts, time_base), convert)

    def _rgb_of(self, size: tuple[int, int] | None) -> Callable[[av.VideoFrame], np.ndarray]:
        """A frame's (H, W, 3) RGB array of (H, W) = ``size`` (None: the file's), converted and scaled in one
        libswscale pass."""
        height, width = size if size is not None else (None, None)

        def rgb(frame: av.VideoFrame) -> np.ndarray:
            # Area averaging: the filter for shrinking (no aliasing at any factor), and half the time of
            # libswscale's bilinear one (0.11 against 0.26 ms a frame, 212x160 to 192x144).
            return self._reformatter.reformat(
                frame, width=width, height=height, format="rgb24", interpolation="AREA"
            ).to_ndarray()

        return rgb

    def _decode(
        self, wanted: list[int], *, seek: bool, size: tuple[int, int] | None, skip: bool
    ) -> dict[int, np.ndarray]:
        """Frame index -> RGB array ((H, W) = ``size`` when given) for the sorted ``wanted`` indices, chosen by
        timestamp.

        Index ``i`` stands for the time ``i / fps`` after the stream's start and gets the frame whose timestamp
        is nearest to it, so variable-frame-rate files (phones write them) decode as well as constant-rate
        ones, whose frame ``i`` is shown at exactly that time (an AVI with B-frames: frame ``i`` in display order,
        decoded from the start). Empty when seeking landed more than half a frame after the first wanted time.

        With ``skip``, packets shown more than two frames before the first wanted time are decoded with
        ``skip_frame="NONREF"``: a frame no other frame refers to cannot be part of the clip or shape a frame
        that is, so it need not be decoded at all.
        """
        stream = self._stream
        context = stream.codec_context
        fps = self.info.fps
        # In display order every frame from the start is counted, so none may be skipped or sought past.
        seek = seek and not self._display_order
        skip = skip and not self._display_order
        start_pts = stream.start_time or 0
        if seek:
            target = start_pts + int(math.floor(wanted[0] / fps / stream.time_base))
            self._container.seek(target, stream=stream, backward=True, any_frame=False)
        else:
            self._container.seek(0)
        preroll_end = start_pts + (wanted[0] - 2) / fps / stream.time_base if skip else -math.inf

        def decoded() -> Iterator[av.VideoFrame]:
            for packet in self._container.demux(stream):
                before_clip = packet.pts is not None and packet.pts < preroll_end
                context.skip_frame = "NONREF" if before_clip else "DEFAULT"
                yield from context.decode(packet)

        pending = deque(wanted)
        arrays: dict[int, np.ndarray] = {}
        previous: _ShownFrame | None = None
        try:
            for current in self._shown(decoded(), size):
                if previous is None and seek and current.seconds > pending[0] / fps + 0.5 / fps:
                    return {}
                while pending and current.seconds >= pending[0] / fps:
                    target = pending.popleft()
                    arrays[target] = current.nearer(previous, target / fps).rgb()
                if not pending:
                    return arrays
                previous = current
        finally:
            context.skip_frame = "DEFAULT"
        if previous is not None:  # indices past the last decodable frame get the last one
            while pending:
                arrays[pending.popleft()] = previous.rgb()
        return arrays

    def read(
        self, indices: Sequence[int], *, short_side: int | None = None, skip_unreferenced: bool = True
    ) -> torch.Tensor:
        """Frames at the given 0-based indices (any order, repeats allowed), scaled by libswscale in the RGB
        conversion to a short side of ``short_side`` pixels (aspect ratio kept, see :func:`scaled_size`) when
        it is given. ``skip_unreferenced=False`` decodes every frame from the key frame on (the same frames,
        more slowly; kept to be measured against).

        Returns:
            uint8 tensor of shape (T, C, H, W) with C = 3 (RGB), T = ``len(indices)``, (H, W) the file's or
            ``scaled_size(height, width, short_side)``.
            Index ``i`` is the frame shown nearest to the time ``i / fps`` (frame ``i`` of a constant-rate
            file). An index past the last decodable frame (containers sometimes overstate the frame count)
            gets the last decoded frame.

        Raises:
            VideoDecodeError: FFmpeg fails, or no frame at all can be decoded.
        """
        indices = frame_indices(indices)
        ordered = sorted(set(indices))
        first, last = ordered[0], ordered[-1]
        size = None if short_side is None else scaled_size(self.info.height, self.info.width, short_side)
        try:
            arrays = self._decode(ordered, seek=first > 0, size=size, skip=skip_unreferenced)
            if not arrays and first > 0:  # seeking failed on this file: decode from the start instead
                arrays = self._decode(ordered, seek=False, size=size, skip=skip_unreferenced)
        except av.FFmpegError as error:
            raise VideoDecodeError(f"cannot decode {self.path}: {error}") from error
        if not arrays:
            raise VideoDecodeError(f"no frame of {self.path} between indices {first} and {last} could be decoded")
        frames = [arrays[i] for i in indices]
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
            for shown in self._shown(self._container.decode(self._stream), None):
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


def _tag_seconds(text: str | None) -> float | None:
    """Seconds of a Matroska ``DURATION`` tag such as ``"00:00:05.280000000"``; None when absent or unreadable."""
    if not text:
        return None
    try:
        hours, minutes, seconds = text.strip().split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


class _ShownFrame:
    """A decoded frame, its time in seconds from the stream's start, and its RGB array (by ``convert``) once
    asked for."""

    def __init__(self, frame: av.VideoFrame, seconds: float, convert: Callable[[av.VideoFrame], np.ndarray]) -> None:
        self.frame, self.seconds, self._convert = frame, seconds, convert
        self._rgb: np.ndarray | None = None

    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            self._rgb = self._convert(self.frame)
        return self._rgb

    def nearer(self, previous: _ShownFrame | None, seconds: float) -> _ShownFrame:
        """This frame or ``previous`` (shown before it), whichever is closer in time to ``seconds``."""
        if previous is not None and seconds - previous.seconds <= self.seconds - seconds:
            return previous
        return self
