"""Clip datasets for training, validation, evaluation and prediction (``cbam3d.data`` with our settings).

Needs no Lightning, so evaluation and prediction stay light.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from cbam3d.data import NO_AUGMENTATION, ClipAugmentation, VideoClipDataset, VideoSplit, discover_videos
from cbam3d.utils.errors import UsageError

__all__ = ["checkpoint_eval_dataset", "discover_split", "eval_resize_for", "make_clip_dataset"]


def discover_split(root: Path, split: str, *, fold: int = 1, annotations: Path | None = None) -> VideoSplit:
    """``cbam3d.data.discover_videos`` with its bad-input errors turned into :class:`UsageError`.

    The held-out validation part of folders without split lists keeps discover_videos' fixed default seed, so
    runs with different ``--seed`` values are compared on the same videos."""

    try:
        return discover_videos(root, split, fold=fold, annotations=annotations)
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(f"data set {root} ({split} split): {error}") from error


def make_clip_dataset(
    records: list,
    *,
    mode: str,
    frames: int,
    sampling_rate: int,
    size: int,
    clips_per_video: int = 1,
    crops_per_clip: int = 1,
    horizontal_flip: bool = False,
    train_scale: tuple[float, float] = (8 / 7, 10 / 7),
    augmentation: ClipAugmentation = NO_AUGMENTATION,
    eval_resize: int | None = None,
    num_classes: int | None = None,
    clips_per_decode: int = 1,
    decoder: str = "pyav",
) -> Dataset:
    """A ``cbam3d.data.VideoClipDataset`` of (C, T, H, W) clips.

    "train" mode: random clips, short side resized to a random length in ``size * train_scale``, random
    ``size`` crop, horizontal flip if ``horizontal_flip``, then ``augmentation``. "eval" mode: ``clips_per_video``
    evenly spaced clips, short side resized to ``eval_resize`` (default ``size``), ``crops_per_clip`` crops along
    the long side (1: centre; 3: both ends and the centre). ``num_classes``: items carry multi-hot ``targets`` of
    that many classes (multi-label data). ``decoder`` and (train mode) ``clips_per_decode``: see
    ``cbam3d.data.VideoClipDataset``.
    """

    if mode == "train":
        return VideoClipDataset(
            records,
            frames=frames,
            sampling_rate=sampling_rate,
            size=size,
            mode="train",
            clips_per_video=clips_per_video,
            flip=horizontal_flip,
            train_scale=train_scale,
            augmentation=augmentation,
            num_classes=num_classes,
            clips_per_decode=clips_per_decode,
            decoder=decoder,
        )
    return VideoClipDataset(
        records,
        frames=frames,
        sampling_rate=sampling_rate,
        size=size,
        mode="eval",
        clips_per_video=clips_per_video,
        crops_per_clip=crops_per_clip,
        eval_resize=eval_resize,
        num_classes=num_classes,
        decoder=decoder,
    )


def checkpoint_eval_dataset(
    records: list, clip: dict, *, clips_per_video: int = 1, crops_per_clip: int = 1, num_classes: int | None = None
) -> Dataset:
    """Evaluation clips of ``records`` as a checkpoint's ``info["clip"]`` describes them (frames, sampling
    rate, size and evaluation resize); ``num_classes``: with multi-hot ``targets`` (a multi-label checkpoint)."""
    return make_clip_dataset(
        records,
        mode="eval",
        frames=clip["frames"],
        sampling_rate=clip["sampling_rate"],
        size=clip["size"],
        clips_per_video=clips_per_video,
        crops_per_clip=crops_per_clip,
        eval_resize=clip["eval_resize"],
        num_classes=num_classes,
    )


def eval_resize_for(size: int, train_scale: tuple[float, float]) -> int:
    """The evaluation short side: the smallest one training used, so that objects keep their training scale."""
    return max(size, round(size * train_scale[0]))
