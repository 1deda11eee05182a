"""Which frames make up a clip: random clips for training, evenly spaced clips for evaluation, and one clip
that shows a whole video (for drawing attention over it).

A clip is ``frames`` frame indices, ``sampling_rate`` frames apart, so it spans
``(frames - 1) * sampling_rate + 1`` frames of the video. A video (or time window) shorter than that span is
covered by one clip spread evenly over all of it: the indices stay in time order and repeat frames where the
video has fewer frames than the clip, so motion keeps its direction (no jump back as with looping).
"""

from __future__ import annotations

import math

import torch

__all__ = ["clip_span", "eval_clip_indices", "overview_clip_indices", "train_clip_indices"]


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def clip_span(frames: int, sampling_rate: int) -> int:
    """Number of video frames from a clip's first frame to its last, both included."""
    _check_positive(frames=frames, sampling_rate=sampling_rate)
    return (frames - 1) * sampling_rate + 1


def _round(value: float) -> int:
    """Round half up (Python's round() goes to even, which would space clips unevenly)."""
    return int(math.floor(value + 0.5))


def _spread(num_frames: int, frames: int, offset: int) -> list[int]:
    """``frames`` indices spread evenly (in order) over ``num_frames`` frames starting at ``offset``."""
    if frames == 1:
        return [offset + (num_frames - 1) // 2]
    step = (num_frames - 1) / (frames - 1)
    return [offset + _round(k * step) for k in range(frames)]


def _strided(start: int, frames: int, sampling_rate: int) -> list[int]:
    return [start + k * sampling_rate for k in range(frames)]


def train_clip_indices(
    num_frames: int,
    frames: int,
    sampling_rate: int,
    *,
    offset: int = 0,
    generator: torch.Generator | None = None,
) -> list[int]:
    """Frame indices of one random clip, drawn uniformly among all clip positions.

    Args:
        num_frames: frames in the video (or in the time window that holds the action).
        frames, sampling_rate: clip length and the step between its frames.
        offset: index of the window's first frame in the file (0 for the whole file).
        generator: torch random generator; the global one when None (DataLoader seeds it per worker).

    Returns:
        ``frames`` indices in ``[offset, offset + num_frames)``, non-decreasing.
    """
    _check_positive(num_frames=num_frames)
    span = clip_span(frames, sampling_rate)
    if num_frames < span:
        return _spread(num_frames, frames, offset)
    start = int(torch.randint(num_frames - span + 1, (1,), generator=generator))
    return _strided(offset + start, frames, sampling_rate)


def eval_clip_indices(
    num_frames: int, frames: int, sampling_rate: int, num_clips: int, *, offset: int = 0
) -> list[list[int]]:
    """Frame indices of ``num_clips`` evenly spaced clips (deterministic).

    Clip ``i`` is centred at fraction ``(i + 0.5) / num_clips`` of the range of possible clip starts, so one
    clip is the centre clip and ten clips tile the video symmetrically.

    Returns:
        ``num_clips`` lists of ``frames`` indices each, in ``[offset, offset + num_frames)``.
    """
    _check_positive(num_frames=num_frames, num_clips=num_clips)
    span = clip_span(frames, sampling_rate)
    if num_frames < span:
        return [_spread(num_frames, frames, offset) for _ in range(num_clips)]
    free = num_frames - span
    starts = [_round(free * (i + 0.5) / num_clips) for i in range(num_clips)]
    return [_strided(offset + start, frames, sampling_rate) for start in starts]


def overview_clip_indices(num_frames: int, frames: int) -> list[int]:
    """The middle frame of each of ``frames`` equal segments of the video: one clip that shows all of it.

    Frames repeat (in order) when the video has fewer than ``frames`` frames.

    Returns:
        ``frames`` indices in ``[0, num_frames)``, non-decreasing.
    """
    _check_positive(num_frames=num_frames, frames=frames)
    return [int((k + 0.5) * num_frames / frames) for k in range(frames)]
