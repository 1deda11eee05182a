"""One clip of a video file, read twice over: as the network's input and as frames to draw on.

Both are the same square region of the same frames: the short side resized and the centre cropped, as in
evaluation, once to the network's ``size`` (then normalised) and once to ``display_size`` for the figures.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import v2

from cbam3d.attention.dims import check_positive_int
from cbam3d.data import (
    KINETICS_MEAN,
    KINETICS_STD,
    eval_clip_indices,
    eval_transform,
    open_video,
    overview_clip_indices,
)
from cbam3d.data.transforms import ShortSideCrop

__all__ = ["CLIP_MODES", "VisualClip", "clip_indices", "read_visual_clip"]

#: How a clip's frames are picked: ``"spread"`` over the whole video, or evaluation's ``"centre"`` clip.
CLIP_MODES: tuple[str, ...] = ("spread", "centre")


@dataclass(frozen=True)
class VisualClip:
    """A clip ready for the network and for drawing.

    Attributes:
        input: float32 (1, 3, T, size, size), normalised: the network's input.
        frames: uint8 (T, D, D, 3) RGB, D = display size: the same frames, to draw the maps on.
        indices: the T frame indices in the video file (0-based).
        fps: the video's frame rate.
    """

    input: torch.Tensor
    frames: np.ndarray
    indices: list[int]
    fps: float


def clip_indices(num_frames: int, frames: int, sampling_rate: int = 1, mode: str = "spread") -> list[int]:
    """The frame indices of the clip to show, non-decreasing, in ``[0, num_frames)``.

    Args:
        num_frames: frames in the video.
        frames: T, the clip length the network takes.
        sampling_rate: the step between frames the network was trained with (used by ``"centre"``).
        mode: ``"spread"``: the middle frame of each of T equal segments of the whole video, so the clip
            shows all of it (frames repeat when the video is shorter than T); ``"centre"``: the centre clip
            of evaluation, T frames ``sampling_rate`` apart, the exact input ``cbam3d evaluate`` scores.
    """
    if mode == "centre":
        return eval_clip_indices(num_frames, frames, sampling_rate, num_clips=1)[0]
    if mode == "spread":
        return overview_clip_indices(num_frames, frames)
    raise ValueError(f"unknown clip mode {mode!r}: expected one of {CLIP_MODES}")


def read_visual_clip(
    path: str | os.PathLike,
    *,
    frames: int,
    size: int,
    sampling_rate: int = 1,
    mode: str = "spread",
    mean: Sequence[float] = KINETICS_MEAN,
    std: Sequence[float] = KINETICS_STD,
    eval_resize: int | None = None,
    display_size: int | None = None,
) -> VisualClip:
    """Decode one clip of any video file PyAV reads, of any frame size and length.

    Args:
        path: the video file.
        frames, sampling_rate, mode: which frames (see :func:`clip_indices`).
        size: the network's frame height and width: the short side is resized (to ``eval_resize``) and the centre
            cropped to it.
        mean, std: the network's per-channel normalisation (RGB, on a [0, 1] scale).
        eval_resize: the short side before the centre crop, as in evaluation (``ClipSpec.eval_resize``);
            ``size`` when None.
        display_size: height and width of the frames to draw on; default ``max(size, 224)``.

    Raises:
        cbam3d.data.VideoDecodeError: the file cannot be opened or decoded.
        TypeError, ValueError: a setting is not a positive int, or ``mode`` is unknown.
    """
    check_positive_int(size, "size")
    display_size = max(size, 224) if display_size is None else display_size
    check_positive_int(display_size, "display_size")
    with open_video(Path(path)) as reader:
        indices = clip_indices(reader.info.num_frames, frames, sampling_rate, mode)
        raw = reader.read(indices)  # uint8 (T, 3, H, W)
        fps = reader.info.fps
    network_input = eval_transform(size, resize=eval_resize, mean=mean, std=std)(raw).unsqueeze(0)
    display = v2.Compose([v2.Resize(display_size, antialias=True), ShortSideCrop(display_size)])(raw)
    return VisualClip(network_input, display.permute(0, 2, 3, 1).contiguous().numpy(), indices, fps)
