"""Sliding-window scores over a whole video, decoded in one streaming pass (``cbam3d predict --window``).

A window of ``window`` seconds starts every ``stride`` seconds; the last one ends at the video's end, so the
whole video is covered. Each window is scored like a short video: ``clips`` evenly spaced clips at the
checkpoint's sampling rate, centre-cropped, their probabilities averaged.

Why one streaming pass: seeking to each window would decode the frames from the key frame before it again
and again, and decoding the whole file up front would hold it in memory. Here the file is decoded once, in
order; each frame some window needs is resized, cropped and normalised on arrival and held only until the
last window that needs it has been scored, so memory is bounded by the frames of the windows that overlap,
whatever the file's length.
"""

from __future__ import annotations

import bisect
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from cbam3d.data import VideoDecodeError, eval_clip_indices, eval_transform, open_video
from cbam3d.utils.atomic import atomic_write
from cbam3d.utils.tables import csv_text

__all__ = ["LONG_VIDEO_SECONDS", "WindowScore", "score_windows", "window_frame_ranges", "write_windows_csv"]

#: Videos at least this long get a progress bar (on stderr) when ``progress`` is asked for.
LONG_VIDEO_SECONDS = 60.0


@dataclass(frozen=True)
class WindowScore:
    """One window: ``start`` and ``end`` in seconds from the video's start, and its (K,) class probabilities."""

    start: float
    end: float
    probabilities: torch.Tensor


def window_frame_ranges(num_frames: int, fps: float, *, window: float, stride: float) -> list[tuple[int, int]]:
    """``[first, stop)`` frame ranges of windows of ``window`` seconds every ``stride`` seconds.

    Windows start at the frames nearest to 0, stride, 2 stride ... seconds (at least a frame apart) while they
    end before the video does; one more window ends at the video's end (a video shorter than a window is one
    window). At least one frame each.
    """
    if num_frames < 1 or fps <= 0:
        raise ValueError(f"a video needs frames and a frame rate, got {num_frames} frames at {fps} fps")
    # in float first: a window of 1e308 s is longer than every video, not an integer overflow
    length = num_frames if window * fps >= num_frames else max(1, round(window * fps))
    if length >= num_frames:
        return [(0, num_frames)]
    # Each start is rounded on its own: a stride of no whole number of frames (1.5 s at 25 or 29.97 fps) rounded
    # once would push every later window further from its time, by seconds over an hour-long video.
    step = min(max(stride * fps, 1.0), num_frames)  # a stride past the video's end: one step to its last window
    last_start = num_frames - length
    starts = [math.floor(k * step + 0.5) for k in range(math.ceil(last_start / step))]
    ranges = [(start, start + length) for start in starts if start < last_start]
    ranges.append((last_start, num_frames))
    return ranges


def _nearest(available: list[int], index: int) -> int:
    """The largest available index <= ``index``, else the smallest one (frames the decoder did not deliver)."""
    position = bisect.bisect_right(available, index) - 1
    return available[max(position, 0)]


def score_windows(
    path: str | os.PathLike,
    score: Callable[[torch.Tensor], torch.Tensor],
    clip: dict[str, Any],
    *,
    window: float,
    stride: float,
    clips: int = 1,
    progress: bool = False,
) -> list[WindowScore]:
    """Score every window of a video file in one streaming decoding pass.

    Args:
        path: the video file.
        score: (N, C, T, H, W) clips -> (N, K) probabilities.
        clip: a checkpoint's ``info["clip"]`` (frames, sampling_rate, size, eval_resize, mean, std).
        window, stride: window length and the step between window starts, in seconds (> 0).
        clips: evenly spaced clips per window, their probabilities averaged.
        progress: show a progress bar on stderr for videos of :data:`LONG_VIDEO_SECONDS` or more.

    Raises:
        ValueError: window, stride or clips not positive.
        VideoDecodeError: the file cannot be opened or decoded.
    """
    if not 0 < window < math.inf or not 0 < stride < math.inf:
        raise ValueError(f"window and stride must be positive finite seconds, got window={window}, stride={stride}")
    if isinstance(clips, bool) or not isinstance(clips, int) or clips < 1:
        raise ValueError(f"clips must be a positive integer, got {clips!r}")
    transform = eval_transform(clip["size"], resize=clip["eval_resize"], mean=clip["mean"], std=clip["std"])
    with open_video(path) as reader:
        info = reader.info
        ranges = window_frame_ranges(info.num_frames, info.fps, window=window, stride=stride)
        wanted = [
            eval_clip_indices(stop - first, clip["frames"], clip["sampling_rate"], clips, offset=first)
            for first, stop in ranges
        ]
        last_user = {index: w for w, window_clips in enumerate(wanted) for indices in window_clips for index in indices}
        complete_at = [max(max(indices) for indices in window_clips) for window_clips in wanted]
        held: dict[int, torch.Tensor] = {}  # (C, 1, size, size) prepared frames still needed by some window
        results: list[WindowScore] = []

        def score_next_window() -> None:
            w = len(results)
            available = sorted(held)
            video = torch.stack(
                [torch.cat([held[_nearest(available, i)] for i in indices], dim=1) for indices in wanted[w]]
            )
            first, stop = ranges[w]
            results.append(WindowScore(first / info.fps, stop / info.fps, score(video).mean(dim=0)))
            for index in [i for i in held if last_user.get(i, -1) <= w and i != available[-1]]:
                del held[index]

        long_video = info.num_frames / info.fps >= LONG_VIDEO_SECONDS
        with tqdm(
            total=info.num_frames,
            unit="frame",
            desc=Path(path).name,
            file=sys.stderr,
            disable=not (progress and long_video),
        ) as bar:
            decoded = 0
            for index, frame in reader.frames(keep=last_user.__contains__):
                bar.update(max(0, index + 1 - decoded))
                decoded = max(decoded, index + 1)
                held[index] = transform(frame[None])
                while len(results) < len(ranges) and index >= complete_at[len(results)]:
                    score_next_window()
            if not held:
                raise VideoDecodeError(f"no frame of {path} could be decoded")
            while len(results) < len(ranges):  # the container overstated its length: use the last frames
                score_next_window()
    return results


def write_windows_csv(
    windows: Sequence[tuple[float, float, Sequence[tuple[str, float]]]], path: str | os.PathLike
) -> Path:
    """One row per window: ``start_seconds, end_seconds, label_1, probability_1, ... label_k, probability_k``,
    written atomically, spreadsheet-safe (:func:`~cbam3d.utils.tables.csv_text`). ``windows``: ``(start, end,
    top-k (name, probability) pairs)``."""
    k = max((len(top) for _, _, top in windows), default=0)
    header = [
        "start_seconds",
        "end_seconds",
        *[f"{field}_{i}" for i in range(1, k + 1) for field in ("label", "probability")],
    ]
    rows = [
        [f"{start:.3f}", f"{end:.3f}", *[value for name, p in top for value in (name, f"{p:.6f}")]]
        for start, end, top in windows
    ]
    text = csv_text(header, rows)
    return atomic_write(path, lambda file: file.write(text.encode("utf-8")))
