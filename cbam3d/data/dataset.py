"""A map-style dataset of clips cut from labelled videos (files or frame folders), and its collate function."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset, default_collate

from .decoders import check_decoder, open_video
from .decoding import VideoDecodeError, VideoInfo
from .records import VideoRecord
from .sampling import clip_span, eval_clip_indices, train_clip_indices
from .transforms import NO_AUGMENTATION, ClipAugmentation, eval_transform, train_short_sides, train_transform

__all__ = ["VideoClipDataset", "collate_clips"]

Transform = Callable[[torch.Tensor], torch.Tensor]
_MODES = ("train", "eval")


def _crop_positions(crops: int) -> list[float]:
    """Evenly spread positions along the long side: [0.5] for one crop, [0, 0.5, 1] for three."""
    return [0.5] if crops == 1 else [i / (crops - 1) for i in range(crops)]


class VideoClipDataset(Dataset):
    """Clips of ``frames`` frames, ``sampling_rate`` frames apart, decoded from the videos in ``records``.

    Modes:
        ``"train"``: item ``i`` is a fresh random clip of video ``i // clips_per_video`` with
        :func:`train_transform` (random short-side resize, random crop, horizontal flip if ``flip``).
        ``"eval"``: deterministic; video ``v`` gives ``clips_per_video`` evenly spaced clips, each in
        ``crops_per_clip`` spatial crops (1 = centre, 3 = both ends and the centre of the long side).
        Items are ordered video, then clip, then crop; consecutive crops of one clip share a single decode.

    ``len(dataset) = len(records) * clips_per_video * crops_per_clip``.

    Item: ``{"video": float32 (C, T, H, W), "label": int, "video_index": int, "unreadable": list of str}`` with
    T = ``frames`` and H = W = ``size``, plus ``"targets": float32 (num_classes,)``, the multi-hot vector of the
    video's labels, when ``num_classes`` is given (multi-label data); average the scores of the items sharing
    a ``video_index`` to get video-level predictions. A record may be a video file or a frame folder (read
    alike, see :func:`cbam3d.data.open_video`). In train mode with ``clips_per_decode`` K > 1, an item is a list
    of K such dicts: K clips drawn from one decode of a window twice a clip's span (each clip at its own random
    position in the window, a whole number of sampling steps from the others, with its own crop, flip and
    augmentation draw; the short side is drawn once per decode); :func:`collate_clips` stacks them as K samples.

    Decoding: the frames are decoded with ``decoder`` (see :mod:`cbam3d.data.decoders`). With
    ``fast_decoding`` (the default), frames before the clip that no frame refers to are not decoded, and, in
    train mode with the built-in transform, the decoder scales the frames in its RGB conversion to a short side
    drawn from :func:`~cbam3d.data.transforms.train_short_sides`, so the transform only crops, flips and
    normalises (eval mode resizes in torch, exactly as prediction and the attention maps do).
    ``fast_decoding=False`` decodes every frame from the key frame, converts them at full size and resizes in
    torch: the loader as it was before, kept to be measured against (``cbam3d benchmark --data``).

    A file that cannot be decoded gives a ``warnings.warn`` naming it (once per file and process) and one more
    in :attr:`skipped` (each DataLoader worker process holds its own copy). In train mode the item is then read
    from the next video instead (and the one after, until one decodes), so batches stay whole (a batch of one
    clip fails in BatchNorm); its ``video_index`` and ``label`` are the replacement's, and ``unreadable`` names
    the videos passed over. In eval mode, where each item belongs to its video, the item is ``None``. Use
    :func:`collate_clips`, which drops ``None`` items and counts both kinds per batch.

    Args:
        records: the labelled videos, e.g. ``discover_videos(root, "train").records``.
        frames, sampling_rate: clip length in frames and the step between them in video frames.
        size: output height and width.
        mode: ``"train"`` or ``"eval"``.
        clips_per_video: train: random clips per video per epoch; eval: evenly spaced clips per video.
        crops_per_clip: eval only; spatial crops per clip.
        transform: replaces the built-in transform: a callable from uint8 (T, C, H, W) to float (C, T, H, W),
            or, in eval mode with several crops, a sequence of ``crops_per_clip`` such callables.
        flip: train mode's horizontal flip; pass ``split.flip_safe`` (False for the demo set).
        train_scale: train mode's short-side resize range as multiples of ``size`` (see :func:`train_transform`).
        augmentation: train mode's RandAugment / TrivialAugment and random erasing (see :class:`ClipAugmentation`).
        eval_resize: eval mode's short side before cropping (see :func:`eval_transform`); ``size`` when None.
        decode_threads: FFmpeg threads per file; keep 1 with DataLoader workers.
        num_classes: give items multi-hot ``targets`` of this many classes (multi-label training); None: not.
        decoder: a name of :data:`~cbam3d.data.decoders.DECODERS` (installed).
        fast_decoding: skip unreferenced frames and let the decoder scale (see above).
        clips_per_decode: train mode only; clips per item, all from one decode (see above).
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        *,
        frames: int = 16,
        sampling_rate: int = 2,
        size: int = 112,
        mode: str = "train",
        clips_per_video: int = 1,
        crops_per_clip: int = 1,
        transform: Transform | Sequence[Transform] | None = None,
        flip: bool = True,
        train_scale: tuple[float, float] = (8 / 7, 10 / 7),
        augmentation: ClipAugmentation = NO_AUGMENTATION,
        eval_resize: int | None = None,
        decode_threads: int = 1,
        num_classes: int | None = None,
        decoder: str = "pyav",
        fast_decoding: bool = True,
        clips_per_decode: int = 1,
    ) -> None:
        records = list(records)
        if not records:
            raise ValueError("records is empty: no videos to load")
        if not all(isinstance(record, VideoRecord) for record in records):
            raise TypeError("records must be VideoRecord instances (see discover_videos)")
        for name, value in {
            "frames": frames,
            "sampling_rate": sampling_rate,
            "size": size,
            "clips_per_video": clips_per_video,
            "crops_per_clip": crops_per_clip,
            "clips_per_decode": clips_per_decode,
        }.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if mode == "train" and crops_per_clip != 1:
            raise ValueError("crops_per_clip applies to eval mode only; train mode takes one random crop")
        if mode == "eval" and clips_per_decode != 1:
            raise ValueError("clips_per_decode applies to train mode only; eval mode's clips are fixed")
        check_decoder(decoder)
        self.records = records
        self.frames, self.sampling_rate, self.size, self.mode = frames, sampling_rate, size, mode
        self.clips_per_video, self.crops_per_clip = clips_per_video, crops_per_clip
        self.augmentation = augmentation
        self.num_classes = num_classes
        self.decode_threads, self.decoder, self.clips_per_decode = decode_threads, decoder, clips_per_decode
        #: The short sides the decoder scales to, one drawn per decode; None: full-size frames.
        self.decoded_short_sides: list[int] | None = None
        self.fast_decoding = fast_decoding
        # Eval mode resizes in torch, as prediction and the attention maps do: the same clip everywhere.
        if transform is None and fast_decoding and mode == "train":
            self.decoded_short_sides = train_short_sides(size, train_scale)
        self.transforms = self._build_transforms(transform, flip, train_scale, eval_resize)
        self.skipped = 0
        self._reported: set[str] = set()
        self._cache: tuple[tuple[int, int], torch.Tensor] | None = None

    def _build_transforms(
        self,
        transform: Transform | Sequence[Transform] | None,
        flip: bool,
        train_scale: tuple[float, float],
        eval_resize: int | None,
    ) -> list[Transform]:
        if transform is None:
            if self.mode == "train":
                presized = self.decoded_short_sides is not None
                return [
                    train_transform(
                        self.size, flip=flip, scale=train_scale, augmentation=self.augmentation, presized=presized
                    )
                ]
            return [
                eval_transform(self.size, crop_position=p, resize=eval_resize)
                for p in _crop_positions(self.crops_per_clip)
            ]
        if callable(transform):
            if self.crops_per_clip != 1:
                raise ValueError(f"with crops_per_clip={self.crops_per_clip}, give one transform per crop (a list)")
            return [transform]
        transforms = list(transform)
        if len(transforms) != self.crops_per_clip or not all(callable(t) for t in transforms):
            raise ValueError(f"transform must be a callable or a list of {self.crops_per_clip} callables")
        return transforms

    def __len__(self) -> int:
        return len(self.records) * self.clips_per_video * self.crops_per_clip

    def locate(self, index: int) -> tuple[int, int, int]:
        """``(video_index, clip_index, crop_index)`` of item ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} clips")
        video_clip, crop = divmod(index, self.crops_per_clip)
        video, clip = divmod(video_clip, self.clips_per_video)
        return video, clip, crop

    def _time_window(self, info: VideoInfo, record: VideoRecord) -> tuple[int, int]:
        """``(first frame, number of frames)`` of the part of the file that clips are taken from."""
        if record.start_sec is None:
            return 0, info.num_frames
        if record.start_sec * info.fps >= info.num_frames:
            raise VideoDecodeError(
                f"{record.path}: the clip's time range starts at {record.start_sec} s, after the video's end "
                f"({info.num_frames / info.fps:.2f} s)"
            )
        first = int(math.floor(record.start_sec * info.fps))
        end = min(int(math.ceil(record.end_sec * info.fps)), info.num_frames)
        return first, max(end - first, 1)

    def _clip_indices(self, info: VideoInfo, record: VideoRecord, clip: int) -> list[int]:
        offset, length = self._time_window(info, record)
        if self.mode == "train":
            return train_clip_indices(length, self.frames, self.sampling_rate, offset=offset)
        return eval_clip_indices(length, self.frames, self.sampling_rate, self.clips_per_video, offset=offset)[clip]

    def _decode_clips(self, info: VideoInfo, record: VideoRecord, clip: int) -> list[list[int]]:
        """The frame indices of the clips one decode gives: one clip, or ``clips_per_decode`` random clips in a
        random window twice a clip's span (the whole time window when it is shorter). The clips of one window
        start a whole number of ``sampling_rate`` steps apart, so they share frames: fewer to convert to RGB."""
        if self.clips_per_decode == 1:
            return [self._clip_indices(info, record, clip)]
        offset, length = self._time_window(info, record)
        span = clip_span(self.frames, self.sampling_rate)
        window = min(length, 2 * span)
        start = offset + int(torch.randint(length - window + 1, (1,)))
        if window < span:  # a short video: each clip spreads over all of it
            return [train_clip_indices(window, self.frames, self.sampling_rate, offset=start)] * self.clips_per_decode
        steps = torch.randint((window - span) // self.sampling_rate + 1, (self.clips_per_decode,)).tolist()
        return [
            list(range(start + step * self.sampling_rate, start + step * self.sampling_rate + span, self.sampling_rate))
            for step in steps
        ]

    def clip_indices_for(self, video_index: int, clip_index: int = 0) -> list[int]:
        """Frame indices that clip ``clip_index`` of video ``video_index`` takes (a fresh draw in train mode)."""
        record = self.records[video_index]
        with open_video(record.path, decoder=self.decoder, fps=record.fps, threads=self.decode_threads) as reader:
            return self._clip_indices(reader.info, record, clip_index)

    def _frames(self, video: int, clip: int) -> list[torch.Tensor]:
        """uint8 (T, C, H, W) frames of each clip of one decode (see :meth:`_decode_clips`)."""
        key = (video, clip)
        if self.mode == "eval" and self._cache is not None and self._cache[0] == key:
            return [self._cache[1]]
        record = self.records[video]
        with open_video(record.path, decoder=self.decoder, fps=record.fps, threads=self.decode_threads) as reader:
            clips = self._decode_clips(reader.info, record, clip)
            short_side = None
            if self.decoded_short_sides is not None:
                short_side = self.decoded_short_sides[int(torch.randint(len(self.decoded_short_sides), (1,)))]
            # Every reader decodes each frame once, whatever the order and repeats of the indices it is given.
            decoded = reader.read(
                [index for indices in clips for index in indices],
                short_side=short_side,
                skip_unreferenced=self.fast_decoding,
            )
        frames = list(decoded.split([len(indices) for indices in clips]))
        if self.mode == "eval" and self.crops_per_clip > 1:
            self._cache = (key, frames[0])
        return frames

    def _candidates(self, video: int) -> list[int]:
        """The videos item ``video`` may be read from: itself, then (train mode) each following one in turn."""
        if self.mode == "eval":
            return [video]
        count = len(self.records)
        return [(video + step) % count for step in range(count)]

    def _report_unreadable(self, record: VideoRecord, error: VideoDecodeError) -> None:
        self.skipped += 1
        if str(record.path) not in self._reported:
            self._reported.add(str(record.path))
            warnings.warn(f"skipping unreadable video {record.path}: {error}", RuntimeWarning, stacklevel=3)

    def __getitem__(self, index: int) -> dict[str, Any] | list[dict[str, Any]] | None:
        video, clip, crop = self.locate(index)
        unreadable: list[str] = []
        for candidate in self._candidates(video):
            record = self.records[candidate]
            try:
                clips = self._frames(candidate, clip)
            except VideoDecodeError as error:
                self._report_unreadable(record, error)
                unreadable.append(str(record.path))
                continue
            items = [
                {"video": self.transforms[crop](frames), "label": record.label, "video_index": candidate}
                for frames in clips
            ]
            if self.num_classes is not None:
                targets = torch.zeros(self.num_classes).index_fill_(0, torch.tensor(record.labels), 1.0)
                items = [{**item, "targets": targets} for item in items]
            # the videos passed over are named once, by the first clip
            items = [{**item, "unreadable": unreadable if k == 0 else []} for k, item in enumerate(items)]
            return items[0] if self.clips_per_decode == 1 else items
        return None


def collate_clips(items: Sequence[dict[str, Any] | list[dict[str, Any]] | None]) -> dict[str, Any]:
    """Stack dataset items into a batch, dropping the ``None`` of skipped (unreadable) videos; an item that is a
    list of clips (``clips_per_decode`` > 1) gives one sample per clip.

    Returns:
        ``{"video": float (N, C, T, H, W), "label": int64 (N,), "video_index": int64 (N,), "skipped": int,
        "unreadable": list of str}`` (and ``"targets": float (N, K)`` when the items have them): ``skipped``
        counts the items of this batch that were dropped and the unreadable videos that training items were
        replaced past, ``unreadable`` names the latter. When every item was dropped, N = 0 and ``video`` has
        shape (0, 0, 0, 0, 0): a training step should then do nothing but count.
    """
    items = [clip for item in items for clip in (item if isinstance(item, list) else [item])]
    kept = [dict(item) for item in items if item is not None]
    unreadable = [path for item in kept for path in item.pop("unreadable", ())]
    skipped = len(items) - len(kept) + len(unreadable)
    if not kept:
        empty = torch.empty(0, dtype=torch.int64)
        batch = {"video": torch.empty(0, 0, 0, 0, 0), "label": empty, "video_index": empty.clone()}
    else:
        batch = default_collate(kept)
    return {**batch, "skipped": skipped, "unreadable": unreadable}
