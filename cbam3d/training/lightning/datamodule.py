"""The LightningDataModule: video clips from a user's data set or the built-in demo set."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from cbam3d.data import NO_AUGMENTATION, ClipAugmentation, VideoSplit, collate_clips, decode_error, unopenable_videos
from cbam3d.inference.datasets import discover_split, eval_resize_for, make_clip_dataset
from cbam3d.utils.errors import UsageError

from ..seeding import ClassBalancedSampler, EpochSeededSampler, SeededItems

__all__ = ["VideoDataModule"]


UNREADABLE_SHARE_LIMIT = 0.10
"""Above this share of a split's videos unopenable, training stops before it starts. A few broken files are
usual in a large data set (interrupted downloads: Kinetics copies miss a few percent); more than one in ten
points to a systematic fault (a wrong folder, a failed copy, a codec FFmpeg lacks), and a run on the rest would
be another experiment than the one asked for."""


def _check_decodable(records: list, split: str) -> None:
    """Raise :class:`UsageError` unless one of ``records`` decodes (tried in order: usually the first one)."""
    first_error = None
    for record in records:
        error = decode_error(record.path)
        if error is None:
            return
        first_error = first_error or error
    raise UsageError(f"none of the {len(records)} videos of the {split} split can be decoded (first: {first_error})")


def _openable_split(split: VideoSplit, name: str) -> VideoSplit:
    """``split`` without the videos that cannot be opened, said in one line; refused above
    :data:`UNREADABLE_SHARE_LIMIT` (or when none is left), naming how many and a few.

    Raises:
        UsageError: too many of the split's videos cannot be opened, or none decodes.
    """
    unopenable = unopenable_videos([record.path for record in split.records])
    if len(unopenable) == len(split.records):
        first = next(iter(unopenable.values()), None)
        raise UsageError(f"none of the {len(split.records)} videos of the {name} split can be decoded (first: {first})")
    if unopenable:
        examples = ", ".join(str(path) for path in list(unopenable)[:3])
        summary = f"{len(unopenable)} of the {len(split.records)} videos of the {name} split cannot be opened"
        if len(unopenable) > UNREADABLE_SHARE_LIMIT * len(split.records):
            raise UsageError(
                f"{summary} (more than {UNREADABLE_SHARE_LIMIT:.0%}), e.g. {examples}; repair or remove them "
                f"(first error: {next(iter(unopenable.values()))})"
            )
        warnings.warn(f"{summary} and are left out, e.g. {examples}", RuntimeWarning, stacklevel=3)
        split = dataclasses.replace(split, records=[r for r in split.records if r.path not in unopenable])
    _check_decodable(split.records, name)
    return split


class VideoDataModule(L.LightningDataModule):
    """Training clips (random clip, crop and flip) and validation clips (one centred clip per video).

    Training clips are drawn in an order and with augmentations fixed by (seed, epoch, video) (see
    :mod:`cbam3d.training.seeding`), so a resumed run repeats an uninterrupted one exactly. Under DDP, Lightning
    wraps the samplers in its distributed samplers (``use_distributed_sampler=True``, the Trainer's default,
    kept by :func:`cbam3d.training.train`), which shard the videos across ranks and reshuffle every epoch.

    Args:
        root: the data set's folder (see ``cbam3d.data.discover_videos`` for the layouts).
        annotations: a Kinetics-style CSV, if the layout needs one.
        fold: the official split number (UCF101 / HMDB51).
        frames, sampling_rate, size: the clips.
        batch_size: clips per batch and per device.
        num_workers: data-loading processes per device.
        train_scale: training clips' short side is resized to a random length in ``size * train_scale`` before
            the random crop; validation clips' to ``size * train_scale[0]`` before the centre crop.
        horizontal_flip: flip training clips at random; None: unless the data set is marked as not flip-safe
            (``VideoSplit.flip_safe``, False for the demo set, whose classes include left and right motion).
        augmentation: RandAugment / TrivialAugment and random erasing of training clips.
        class_balanced: draw training clips class-balanced (:class:`~cbam3d.training.seeding.ClassBalancedSampler`).
        seed: seed of the training order and augmentations.
        multi_label: items carry multi-hot ``targets`` (videos may have several labels); without it, a data
            set giving a video several labels is refused.
        clips_per_decode: training clips from one decode of a video (``VideoClipDataset``'s); a training batch
            holds ``batch_size // clips_per_decode`` videos.
        decoder: the video decoder (see ``cbam3d.data.decoders``).

    Attributes:
        left_out: the videos of either split that could not be opened and were left out (see
            :data:`UNREADABLE_SHARE_LIMIT`).
    """

    def __init__(
        self,
        root: Path,
        *,
        annotations: Path | None = None,
        fold: int = 1,
        frames: int = 16,
        sampling_rate: int = 2,
        size: int = 112,
        batch_size: int = 8,
        num_workers: int = 0,
        horizontal_flip: bool | None = None,
        train_scale: tuple[float, float] = (8 / 7, 10 / 7),
        augmentation: ClipAugmentation = NO_AUGMENTATION,
        class_balanced: bool = False,
        seed: int = 0,
        multi_label: bool = False,
        clips_per_decode: int = 1,
        decoder: str = "pyav",
    ) -> None:
        super().__init__()
        self.root, self.annotations, self.fold, self.seed = Path(root), annotations, fold, seed
        self.frames, self.sampling_rate, self.size = frames, sampling_rate, size
        self.batch_size, self.num_workers, self.horizontal_flip = batch_size, num_workers, horizontal_flip
        self.train_scale = tuple(train_scale)
        self.augmentation, self.class_balanced = augmentation, class_balanced
        if batch_size % clips_per_decode:
            raise UsageError(f"batch_size {batch_size} must be a multiple of clips_per_decode {clips_per_decode}")
        self.clips_per_decode, self.decoder = clips_per_decode, decoder
        found = {name: discover_split(self.root, name, fold=fold, annotations=annotations) for name in ("train", "val")}
        self.train_split = _openable_split(found["train"], "train")
        self.val_split = _openable_split(found["val"], "val")
        kept = {record.path for split in (self.train_split, self.val_split) for record in split.records}
        self.left_out = sorted({str(r.path) for split in found.values() for r in split.records if r.path not in kept})
        if list(self.val_split.class_names) != list(self.train_split.class_names):
            raise UsageError(f"data set {self.root}: the train and val splits list different classes")
        self.class_names = list(self.train_split.class_names)
        self.multi_label = multi_label
        several = next((r for s in (self.train_split, self.val_split) for r in s.records if len(r.labels) > 1), None)
        if several is not None and not multi_label:
            raise UsageError(
                f"data set {self.root}: {several.path} has {len(several.labels)} labels; train with --multi-label "
                "(or give each video one label)"
            )
        trained = {label for record in self.train_split.records for label in record.labels}
        untrained = [name for label, name in enumerate(self.class_names) if label not in trained]
        if untrained:
            raise UsageError(
                f"data set {self.root}: class(es) {', '.join(untrained[:5])} have no training videos; every class "
                "needs some"
            )
        if horizontal_flip is None:
            self.horizontal_flip = self.train_split.flip_safe
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def setup(self, stage: str | None = None) -> None:
        clip = dict(
            frames=self.frames,
            sampling_rate=self.sampling_rate,
            size=self.size,
            num_classes=len(self.class_names) if self.multi_label else None,
            decoder=self.decoder,
        )
        if self.train_set is None:
            self.train_set = make_clip_dataset(
                self.train_split.records,
                mode="train",
                train_scale=self.train_scale,
                horizontal_flip=self.horizontal_flip,
                augmentation=self.augmentation,
                clips_per_decode=self.clips_per_decode,
                **clip,
            )
        if self.val_set is None:
            self.val_set = make_clip_dataset(
                self.val_split.records, mode="eval", eval_resize=eval_resize_for(self.size, self.train_scale), **clip
            )

    def _current_epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def _train_sampler(self, dataset: Dataset) -> EpochSeededSampler | ClassBalancedSampler:
        if self.class_balanced:
            labels = [record.label for record in self.train_split.records]
            world, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer is not None else (1, 0)
            return ClassBalancedSampler(
                labels, seed=self.seed, epoch=self._current_epoch, num_replicas=world, rank=rank
            )
        return EpochSeededSampler(len(dataset), seed=self.seed, epoch=self._current_epoch)

    def _loader(self, dataset: Dataset, *, train: bool) -> DataLoader:
        sampler = self._train_sampler(dataset) if train else None
        # a training item holds clips_per_decode clips of one video
        items_per_batch = self.batch_size // self.clips_per_decode if train else self.batch_size
        return DataLoader(
            SeededItems(dataset) if train else dataset,
            batch_size=items_per_batch,
            sampler=sampler,
            drop_last=train and len(dataset) > items_per_batch,
            num_workers=self.num_workers,
            collate_fn=collate_clips,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)
