"""Videos stored as folders of JPEG frames, read like video files.

Two naming styles are recognised, both numbered from 1 without gaps: ``image_00001.jpg`` (3D-ResNets-PyTorch's
``CLASS/VIDEO/image_00001.jpg``) and ``img_00001.jpg`` (MMAction2's "rawframes"). A folder states no frame
rate: it is the ``fps`` of the data set's ``cbam3d_dataset.json`` (``{"fps": 30}``), else
:data:`DEFAULT_FRAME_FPS`. :class:`FrameFolderReader` has :class:`~cbam3d.data.decoding.VideoReader`'s
``info`` / ``read(indices)`` / ``frames()`` interface, so clip sampling, transforms and evaluation are those
of video files; its frames are decoded in one batch by torchvision's JPEG decoder.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_jpeg, read_file
from torchvision.transforms.v2.functional import resize

from .decoding import VideoDecodeError, VideoInfo, frame_indices, scaled_size

__all__ = [
    "DATASET_INFO_FILE",
    "DEFAULT_FRAME_FPS",
    "FrameFolderReader",
    "dataset_info",
    "frame_folder_fps",
    "is_frame_folder",
    "is_frame_name",
]

#: Optional JSON file in a data root describing the data set (keys read: ``flip_safe``, ``fps``).
DATASET_INFO_FILE = "cbam3d_dataset.json"
#: The frame rate of frame folders whose data set does not state one (that of most converted UCF101 / HMDB51 /
#: Kinetics frame folders).
DEFAULT_FRAME_FPS = 25.0
_FRAME_NAME = re.compile(r"^(?:image|img)_(?P<number>\d+)\.jpe?g$", re.IGNORECASE)


def dataset_info(root: Path) -> dict:
    """The contents of ``root``'s ``cbam3d_dataset.json`` ({} when there is none).

    Raises:
        ValueError: the file is not a JSON object.
    """
    info_file = root / DATASET_INFO_FILE
    if not info_file.is_file():
        return {}
    try:
        info = json.loads(info_file.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read {info_file}: {error}") from error
    if not isinstance(info, dict):
        raise ValueError(f'{info_file}: expected a JSON object such as {{"flip_safe": false, "fps": 25}}')
    return info


def frame_folder_fps(root: Path) -> float | None:
    """The ``fps`` stated by ``root``'s ``cbam3d_dataset.json``, or None.

    Raises:
        ValueError: the stated fps is not a positive number.
    """
    fps = dataset_info(root).get("fps")
    if fps is None:
        return None
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps < float("inf"):
        raise ValueError(f"{root / DATASET_INFO_FILE}: fps must be a positive number, got {fps!r}")
    return float(fps)


def is_frame_name(name: str) -> bool:
    """Whether a file name is that of a frame: ``image_NNNNN.jpg`` or ``img_NNNNN.jpg``."""
    return _FRAME_NAME.match(name) is not None


def is_frame_folder(path: Path) -> bool:
    """Whether ``path`` is a folder holding at least one ``image_NNNNN.jpg`` / ``img_NNNNN.jpg`` frame."""
    if not path.is_dir():
        return False
    with os.scandir(path) as entries:
        return any(is_frame_name(entry.name) for entry in entries)


def _frame_files(folder: Path) -> list[Path]:
    """The folder's frames in order.

    Raises:
        VideoDecodeError: the folder is missing, holds no frames, or its frame numbers have a gap.
    """
    if not folder.is_dir():
        raise VideoDecodeError(f"frame folder {folder} does not exist")
    numbered = {}
    for name in os.listdir(folder):
        match = _FRAME_NAME.match(name)
        if match:
            numbered[int(match["number"])] = folder / name
    if not numbered:
        raise VideoDecodeError(f"frame folder {folder} holds no frames (expected image_00001.jpg or img_00001.jpg)")
    numbers = sorted(numbered)
    expected = range(numbers[0], numbers[0] + len(numbers))
    if numbers != list(expected):
        gap = next(n for n, e in zip(numbers, expected) if n != e) - 1
        raise VideoDecodeError(f"frame folder {folder}: frame {gap} is missing (frames must be numbered without gaps)")
    return [numbered[n] for n in numbers]


class FrameFolderReader:
    """A folder of JPEG frames, read like a video file (:class:`~cbam3d.data.decoding.VideoReader`'s API).

    Args:
        path: the folder.
        fps: its frame rate; None: :data:`DEFAULT_FRAME_FPS`.

    Raises:
        VideoDecodeError: the folder holds no frames, a gap in the frame numbers, or an unreadable first frame.
    """

    def __init__(self, path: str | Path, *, fps: float | None = None) -> None:
        self.path = Path(path)
        self.files = _frame_files(self.path)
        first = self._decode([0])[0]
        self.info = VideoInfo(
            num_frames=len(self.files), fps=float(fps or DEFAULT_FRAME_FPS), height=first.shape[1], width=first.shape[2]
        )

    def _decode(self, indices: Sequence[int]) -> list[torch.Tensor]:
        """RGB uint8 (C, H, W) frames at the given distinct indices, decoded in one batch."""
        try:
            data = [read_file(str(self.files[i])) for i in indices]
            return decode_jpeg(data, mode=ImageReadMode.RGB)
        except (RuntimeError, OSError) as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise VideoDecodeError(f"cannot decode the frames of {self.path}: {reason}") from error

    def read(
        self, indices: Sequence[int], *, short_side: int | None = None, skip_unreferenced: bool = True
    ) -> torch.Tensor:
        """Frames at the given 0-based indices (any order, repeats allowed) as uint8 (T, C, H, W) RGB, resized
        (antialiased) to a short side of ``short_side`` when given, as a video file's reader scales them; an index
        past the last frame gets the last one, as for video files. ``skip_unreferenced`` is accepted for the
        common interface: every JPEG stands alone.

        Raises:
            VideoDecodeError: a frame cannot be decoded, or the frames differ in size.
        """
        last = len(self.files) - 1
        clipped = [min(i, last) for i in frame_indices(indices)]
        distinct = sorted(set(clipped))
        decoded = dict(zip(distinct, self._decode(distinct)))
        if len({frame.shape for frame in decoded.values()}) > 1:
            raise VideoDecodeError(f"the frames of {self.path} differ in size")
        frames = torch.stack([decoded[i] for i in clipped])
        if short_side is None:
            return frames
        size = scaled_size(self.info.height, self.info.width, short_side)
        return resize(frames, list(size), antialias=True)

    def frames(self, *, keep: Callable[[int], bool] | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """``(index, uint8 (C, H, W) frame)`` for every frame index ``keep`` accepts, in order."""
        for index in range(len(self.files)):
            if keep is None or keep(index):
                yield index, self._decode([index])[0]

    def close(self) -> None:
        """Nothing to release (the API of :class:`~cbam3d.data.decoding.VideoReader`)."""

    def __enter__(self) -> FrameFolderReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
