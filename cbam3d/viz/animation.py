"""Writing a sequence of pictures as an animated GIF (Pillow) or an H.264 MP4 (PyAV)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cbam3d.data import write_video

__all__ = ["ANIMATION_FORMATS", "FPS_RANGE", "check_fps", "write_animation"]

#: File formats :func:`write_animation` writes, which are also the file suffixes.
ANIMATION_FORMATS: tuple[str, ...] = ("gif", "mp4")

#: Frame rates a GIF can store: its frame duration is a 16-bit count of hundredths of a second, at least one.
FPS_RANGE: tuple[float, float] = (0.02, 100.0)


def check_fps(fps: float) -> None:
    """Raise ValueError unless ``fps`` lies in :data:`FPS_RANGE` (nan, inf and 0 do not)."""
    low, high = FPS_RANGE
    if not low <= fps <= high:
        raise ValueError(f"fps must be from {low} to {high} pictures per second, got {fps}")


def _write_gif(pictures: Sequence[np.ndarray], path: Path, fps: float) -> None:
    images = [Image.fromarray(picture) for picture in pictures]
    # Each frame gets its own adaptive palette (Pillow's default for RGB pictures).
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)


def _write_mp4(pictures: Sequence[np.ndarray], path: Path, fps: float) -> None:
    frames = np.stack(pictures)
    height, width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2  # yuv420p needs even sizes
    write_video(path, frames[:, :height, :width], fps=max(1, round(fps)))


def write_animation(pictures: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 4.0) -> Path:
    """Write equally sized uint8 (H, W, 3) RGB pictures as an animation; the format follows the suffix.

    Args:
        pictures: the frames of the animation, at least one.
        path: a ``.gif`` (looping; Pillow stores a run of identical pictures as one frame shown for as long)
            or ``.mp4`` (H.264; an odd height or width loses its last row or column) file.
        fps: pictures per second (an MP4 stores a whole number, at least 1).

    Raises:
        ValueError: no pictures, pictures of different sizes or not uint8 RGB, fps out of :data:`FPS_RANGE`,
            another suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ANIMATION_FORMATS:
        raise ValueError(f"cannot write {path.name}: the suffix sets the animation format, one of {ANIMATION_FORMATS}")
    if not pictures:
        raise ValueError("an animation needs at least one picture")
    shapes = {picture.shape for picture in pictures}
    shape = next(iter(shapes))
    if len(shapes) != 1 or len(shape) != 3 or shape[2] != 3 or any(p.dtype != np.uint8 for p in pictures):
        raise ValueError(f"pictures must be uint8 (H, W, 3) arrays of one size, got shapes {sorted(shapes)}")
    check_fps(fps)
    (_write_gif if suffix == "gif" else _write_mp4)(pictures, path, fps)
    return path
