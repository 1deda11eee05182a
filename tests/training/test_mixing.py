"""MixUp and CutMix of video batches (cbam3d.training.mixing.BatchMixing): the targets are the one-hot labels
mixed with the same λ as the pixels; CutMix's λ is its box's share of the frame and the box runs through all
frames; the draw is fixed by the batch's key; label smoothing of mixed targets is timm's (smooth, then mix)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cbam3d.training.mixing import BatchMixing

N, K = 4, 6
LABELS = torch.tensor([0, 3, 5, 2])


def constant_clips() -> torch.Tensor:
    """(N, 3, 4, 16, 20): clip i holds the value i + 1 everywhere."""
    return (torch.arange(N, dtype=torch.float32) + 1).view(N, 1, 1, 1, 1).expand(N, 3, 4, 16, 20).clone()


def test_mixup_targets_are_the_convex_combination_with_the_pixels_lambda():
    mixing = BatchMixing(num_classes=K, mixup=0.8, cutmix=0.0)
    for step in range(10):
        video, targets = mixing(constant_clips(), LABELS, key=(0, step, 0))
        partner = torch.roll(torch.arange(N), 1)  # v2 mixes each clip with the one before it
        for i in range(N):
            own, other = i + 1.0, partner[i].item() + 1.0
            lam = (video[i, 0, 0, 0, 0].item() - other) / (own - other)
            assert torch.allclose(video[i], torch.full_like(video[i], lam * own + (1 - lam) * other))
            expected = lam * nn.functional.one_hot(LABELS[i], K) + (1 - lam) * nn.functional.one_hot(
                LABELS[partner[i]], K
            )
            assert torch.allclose(targets[i], expected.float(), atol=1e-6)


def test_cutmix_lambda_is_the_box_share_and_the_box_spans_all_frames():
    mixing = BatchMixing(num_classes=K, mixup=0.0, cutmix=1.0)
    for step in range(20):
        video, targets = mixing(constant_clips(), LABELS, key=(1, step, 0))
        for i in range(N):
            kept = video[i] == i + 1.0  # (3, T, H, W): pixels of the clip itself
            assert all(torch.equal(kept[0, 0], kept[c, t]) for c in range(3) for t in range(4))
            own_share = kept[0, 0].float().mean().item()
            assert targets[i, LABELS[i]].item() == pytest.approx(own_share, abs=1e-6)
            assert targets[i].sum().item() == pytest.approx(1.0)


def test_with_both_each_batch_takes_one_of_them_and_the_draw_is_a_function_of_the_key():
    mixing = BatchMixing(num_classes=K, mixup=0.8, cutmix=1.0, seed=7)
    kinds = set()
    for step in range(30):
        video, _ = mixing(constant_clips(), LABELS, key=(0, step, 0))
        kinds.add("cutmix" if torch.equal(video, video.round()) else "mixup")
    assert kinds == {"cutmix", "mixup"}
    state = torch.random.get_rng_state()
    first = mixing(constant_clips(), LABELS, key=(2, 5, 1))
    assert torch.equal(torch.random.get_rng_state(), state), "mixing changed the global random state"
    again = mixing(constant_clips(), LABELS, key=(2, 5, 1))
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_label_smoothing_of_mixed_targets_equals_smoothing_then_mixing():
    """timm smooths the one-hot labels, then mixes; the loss's smoothing of the mixed targets is the same."""
    eps, lam = 0.1, 0.3
    logits = torch.randn(N, K)
    one_hot = nn.functional.one_hot(LABELS, K).float()
    smoothed = one_hot * (1 - eps) + eps / K
    timm_targets = lam * smoothed + (1 - lam) * smoothed.roll(1, 0)
    timm_loss = -(timm_targets * logits.log_softmax(dim=1)).sum(dim=1).mean()
    ours = nn.CrossEntropyLoss(label_smoothing=eps)(logits, lam * one_hot + (1 - lam) * one_hot.roll(1, 0))
    assert torch.allclose(ours, timm_loss)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"mixup": 0.0, "cutmix": 0.0}, "one of them > 0"), ({"mixup": -1.0, "cutmix": 1.0}, "must be >= 0")],
)
def test_bad_mixing_settings_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        BatchMixing(num_classes=K, **options)
