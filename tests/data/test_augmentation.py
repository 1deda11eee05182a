"""The training augmentations beyond crop and flip (cbam3d.data.ClipAugmentation): RandAugment, TrivialAugment
and random erasing draw once per clip, so every frame of a clip is transformed alike; bad settings are refused."""

from __future__ import annotations

import pytest
import torch

from cbam3d.data import ClipAugmentation, train_transform


def still_clip(frames: int = 6, size: int = 40, seed: int = 0) -> torch.Tensor:
    """uint8 (T, 3, size, size) with every frame the same random picture."""
    generator = torch.Generator().manual_seed(seed)
    frame = torch.randint(0, 256, (1, 3, size, size), dtype=torch.uint8, generator=generator)
    return frame.expand(frames, -1, -1, -1).clone()


def frames_alike(clip: torch.Tensor) -> bool:
    """(C, T, H, W): every frame equals the first."""
    return all(torch.equal(clip[:, 0], clip[:, t]) for t in range(1, clip.shape[1]))


@pytest.mark.parametrize("policy", ["randaugment", "trivialaugment"])
def test_one_augmentation_draw_transforms_every_frame_of_a_clip_alike(policy):
    transform = train_transform(32, scale=(1.0, 1.25), augmentation=ClipAugmentation(policy, magnitude=15))
    plain = train_transform(32, scale=(1.0, 1.25))
    changed = 0
    for seed in range(30):
        torch.manual_seed(seed)
        clip = transform(still_clip(seed=seed))
        torch.manual_seed(seed)
        changed += not torch.equal(clip, plain(still_clip(seed=seed)))
        assert clip.shape == (3, 6, 32, 32) and clip.dtype == torch.float32
        assert frames_alike(clip), f"seed {seed}: the frames of one clip were augmented differently"
    assert changed >= 20  # the policy did act (an identity draw or a no-op operation leaves a few unchanged)


def test_random_erasing_erases_one_box_through_all_frames():
    transform = train_transform(32, scale=(1.0, 1.0), augmentation=ClipAugmentation(random_erase=1.0))
    for seed in range(10):
        torch.manual_seed(seed)
        clip = transform(still_clip(seed=seed))
        erased = (clip == 0).all(dim=0)  # (T, H, W): pixels set to 0 (the mean) in every channel
        assert erased[0].any(), "nothing was erased"
        assert all(torch.equal(erased[0], erased[t]) for t in range(clip.shape[1])), "the box moved between frames"
        assert frames_alike(clip)


def test_no_augmentation_is_the_plain_transform():
    torch.manual_seed(1)
    augmented = train_transform(32, augmentation=ClipAugmentation())(still_clip())
    torch.manual_seed(1)
    assert torch.equal(augmented, train_transform(32)(still_clip()))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"policy": "autoaugment"}, "policy must be one of none, randaugment, trivialaugment"),
        ({"magnitude": 31}, r"magnitude must be in \[0, 30\], got 31"),
        ({"magnitude": 2.5}, "magnitude must be an int"),
        ({"random_erase": 1.5}, r"random_erase must be a probability in \[0, 1\], got 1.5"),
    ],
)
def test_bad_augmentation_settings_are_refused(options, message):
    with pytest.raises((ValueError, TypeError), match=message):
        ClipAugmentation(**options)
