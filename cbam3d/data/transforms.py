"""Clip transforms on ``torchvision.transforms.v2``: uint8 frames (T, C, H, W) in, normalised float (C, T, H, W) out.

Every random choice (resize scale, crop position, flip, the RandAugment / TrivialAugment operation and its
magnitude, the erased box) is drawn once per call, so all frames of a clip are transformed alike: the frames are
wrapped as one ``tv_tensors.Video``, which v2 transforms treat as a single image with leading dimensions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

__all__ = [
    "AUGMENTATIONS",
    "KINETICS_MEAN",
    "KINETICS_STD",
    "NO_AUGMENTATION",
    "ClipAugmentation",
    "ShortSideCrop",
    "ToNormalizedCTHW",
    "eval_transform",
    "train_short_sides",
    "train_transform",
]

#: Per-channel (RGB) mean and std of Kinetics-400 frames scaled to [0, 1], as used by torchvision's video models.
KINETICS_MEAN: tuple[float, float, float] = (0.43216, 0.394666, 0.37645)
KINETICS_STD: tuple[float, float, float] = (0.22803, 0.22145, 0.216989)


#: ``ClipAugmentation.policy``'s choices: none, or a ``torchvision.transforms.v2`` automatic augmentation policy.
AUGMENTATIONS: tuple[str, ...] = ("none", "randaugment", "trivialaugment")
#: RandAugment's magnitude bins (torchvision's default): ``magnitude`` runs from 0 to 30.
MAGNITUDE_BINS = 31


@dataclass(frozen=True)
class ClipAugmentation:
    """The training augmentations beyond scale jitter, crop and flip; the default adds none.

    Attributes:
        policy: ``"randaugment"`` (two random operations at ``magnitude``), ``"trivialaugment"`` (one random
            operation at a random magnitude: TrivialAugmentWide) or ``"none"``; on the uint8 frames after the crop.
        magnitude: RandAugment's magnitude, 0 to 30 (``MAGNITUDE_BINS - 1``).
        random_erase: probability of erasing one random box (the same in every frame) of the normalised clip,
            filled with 0, the mean colour.
    """

    policy: str = "none"
    magnitude: int = 9
    random_erase: float = 0.0

    def __post_init__(self) -> None:
        if self.policy not in AUGMENTATIONS:
            raise ValueError(f"policy must be one of {', '.join(AUGMENTATIONS)}, got {self.policy!r}")
        if isinstance(self.magnitude, bool) or not isinstance(self.magnitude, int):
            raise TypeError(f"magnitude must be an int, got {self.magnitude!r}")
        if not 0 <= self.magnitude < MAGNITUDE_BINS:
            raise ValueError(f"magnitude must be in [0, {MAGNITUDE_BINS - 1}], got {self.magnitude}")
        if not 0.0 <= self.random_erase <= 1.0:
            raise ValueError(f"random_erase must be a probability in [0, 1], got {self.random_erase}")

    def policy_transform(self) -> torch.nn.Module | None:
        """The automatic augmentation on uint8 frames, or None for ``"none"``."""
        if self.policy == "randaugment":
            return v2.RandAugment(magnitude=self.magnitude, num_magnitude_bins=MAGNITUDE_BINS)
        if self.policy == "trivialaugment":
            return v2.TrivialAugmentWide()
        return None


#: The default of every ``augmentation`` argument: no augmentation beyond scale jitter, crop and flip.
NO_AUGMENTATION = ClipAugmentation()


class AsVideo(torch.nn.Module):
    """Wraps uint8 frames (T, C, H, W) as one ``tv_tensors.Video``, so that v2 transforms draw once per clip."""

    def forward(self, frames: torch.Tensor) -> tv_tensors.Video:
        return tv_tensors.Video(frames)


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int (output height and width in pixels), got {size!r}")


class ShortSideCrop(torch.nn.Module):
    """Square ``size`` x ``size`` crop, centred along the short side, at ``position`` along the long side.

    ``position`` 0 takes the left (landscape) or top (portrait) end, 0.5 the centre, 1 the right or bottom end:
    the three positions of multi-crop testing. Input (..., H, W) with min(H, W) >= size.
    """

    def __init__(self, size: int, position: float = 0.5) -> None:
        super().__init__()
        _check_size(size)
        if not 0.0 <= position <= 1.0:
            raise ValueError(f"position must be in [0, 1] (0 = left/top, 1 = right/bottom), got {position}")
        self.size, self.position = size, position

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        height, width = video.shape[-2:]
        if min(height, width) < self.size:
            raise ValueError(f"cannot crop {self.size}x{self.size} from frames of {height}x{width}")
        top, left = (height - self.size) // 2, (width - self.size) // 2
        if width >= height:
            left = int(round((width - self.size) * self.position))
        else:
            top = int(round((height - self.size) * self.position))
        return F.crop(video, top, left, self.size, self.size)

    def extra_repr(self) -> str:
        return f"size={self.size}, position={self.position}"


class ToNormalizedCTHW(torch.nn.Module):
    """uint8 (T, C, H, W) -> float32 (C, T, H, W), scaled to [0, 1] then normalised per channel."""

    def __init__(self, mean: Sequence[float] = KINETICS_MEAN, std: Sequence[float] = KINETICS_STD) -> None:
        super().__init__()
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean and std need 3 values (RGB), std > 0; got mean={mean}, std={std}")
        # (x / 255 - mean) / std as one multiply-add: x * scale + shift.
        scale = 1 / (255.0 * torch.tensor(std, dtype=torch.float64))
        shift = -torch.tensor(mean, dtype=torch.float64) / torch.tensor(std, dtype=torch.float64)
        self.register_buffer("scale", scale.to(torch.float32).view(3, 1, 1, 1), persistent=False)
        self.register_buffer("shift", shift.to(torch.float32).view(3, 1, 1, 1), persistent=False)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if video.dtype != torch.uint8 or video.ndim != 4 or video.shape[1] != 3:
            raise ValueError(f"expected uint8 frames of shape (T, 3, H, W), got {video.dtype} {tuple(video.shape)}")
        # Two passes over the clip instead of five: the cast writes (C, T, H, W) contiguously, addcmul scales it.
        cthw = video.permute(1, 0, 2, 3).to(torch.float32, memory_format=torch.contiguous_format)
        return torch.addcmul(self.shift, cthw, self.scale)


def train_short_sides(size: int, scale: tuple[float, float]) -> list[int]:
    """The short sides a training clip is resized to, one drawn uniformly per clip: every integer in
    ``[size * scale[0], size * scale[1]]`` (128..160 for size 112 and the default scale)."""
    _check_size(size)
    low, high = scale
    if not 1.0 <= low <= high:
        raise ValueError(f"scale must satisfy 1 <= scale[0] <= scale[1], got {scale}")
    return list(range(int(round(size * low)), int(round(size * high)) + 1))


def train_transform(
    size: int,
    *,
    flip: bool = True,
    scale: tuple[float, float] = (8 / 7, 10 / 7),
    mean: Sequence[float] = KINETICS_MEAN,
    std: Sequence[float] = KINETICS_STD,
    augmentation: ClipAugmentation = NO_AUGMENTATION,
    presized: bool = False,
) -> v2.Compose:
    """Training augmentation: random short-side resize, random ``size`` crop, optional horizontal flip, the
    ``augmentation`` policy, normalise, optional random erasing; one draw of each for the whole clip.

    Args:
        size: output height and width.
        flip: flip horizontally with probability 0.5. Set it to ``VideoSplit.flip_safe``: False for data sets
            whose labels change under a mirror image (the demo set's left/right and clockwise classes).
        scale: the short side is resized to a random integer in ``[size * scale[0], size * scale[1]]`` before
            cropping (default 128..160 for size 112, as in the C3D / R(2+1)D recipes). ``(1, 1)`` keeps the
            whole short side.
        mean, std: per-channel normalisation.
        augmentation: RandAugment / TrivialAugment and random erasing (see :class:`ClipAugmentation`).
        presized: the frames come already resized to a short side drawn from :func:`train_short_sides` (the
            decoder scaled them): leave the resize out.
    """
    short_sides = train_short_sides(size, scale)
    steps: list[torch.nn.Module] = [] if presized else [v2.RandomShortestSize(min_size=short_sides, antialias=True)]
    steps.append(v2.RandomCrop(size))
    if flip:
        steps.append(v2.RandomHorizontalFlip(p=0.5))
    policy = augmentation.policy_transform()
    if policy is not None:
        steps = [AsVideo(), *steps, policy]
    steps.append(ToNormalizedCTHW(mean, std))
    if augmentation.random_erase > 0:
        # on the (C, T, H, W) clip: the box lies in the last two dimensions, so it runs through every frame
        steps.append(v2.RandomErasing(p=augmentation.random_erase, value=0))
    return v2.Compose(steps)


def eval_transform(
    size: int,
    *,
    crop_position: float = 0.5,
    resize: int | None = None,
    mean: Sequence[float] = KINETICS_MEAN,
    std: Sequence[float] = KINETICS_STD,
) -> v2.Compose:
    """Deterministic evaluation transform: short side resized to ``resize``, one square ``size`` crop, normalise.

    Args:
        size: output height and width.
        crop_position: where along the long side the crop sits (0 = left/top, 0.5 = centre, 1 = right/bottom).
        resize: short-side length before cropping; ``size`` when None (the crop then spans the whole short side,
            as in multi-crop testing).
    """
    _check_size(size)
    resize = size if resize is None else resize
    if resize < size:
        raise ValueError(f"resize ({resize}) must be >= size ({size})")
    return v2.Compose(
        [v2.Resize(resize, antialias=True), ShortSideCrop(size, crop_position), ToNormalizedCTHW(mean, std)]
    )
