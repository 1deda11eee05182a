"""The class-balanced sampler of --class-balanced (cbam3d.training.seeding.ClassBalancedSampler): every class is
drawn equally often in an epoch, also on each rank of a simulated DDP world of 2 (Lightning's stride
sharding); the epoch is a function of (seed, epoch)."""

from __future__ import annotations

from collections import Counter

import pytest

from cbam3d.training.seeding import ClassBalancedSampler

LABELS = [0] * 20 + [1] * 5 + [2] * 2 + [3] * 9  # 36 items, imbalanced


def sampler(*, world: int = 1, epoch: int = 0, seed: int = 0) -> ClassBalancedSampler:
    return ClassBalancedSampler(LABELS, seed=seed, epoch=lambda: epoch, world_size=lambda: world)


def class_counts(keys) -> Counter:
    return Counter(LABELS[index] for index, _ in keys)


def test_every_class_is_drawn_equally_often_in_an_epoch():
    keys = list(sampler())
    assert len(keys) == len(sampler()) >= len(LABELS)
    counts = class_counts(keys)
    assert set(counts) == {0, 1, 2, 3} and len(set(counts.values())) == 1


@pytest.mark.parametrize("epoch", [0, 1, 5])
def test_each_rank_of_a_world_of_two_gets_even_class_counts(epoch):
    keys = list(sampler(world=2, epoch=epoch))
    for rank in range(2):
        counts = class_counts(keys[rank::2])  # how Lightning's distributed wrapper shards a custom sampler
        assert len(set(counts.values())) == 1 and len(counts) == 4, (rank, counts)


def test_small_classes_repeat_and_every_video_of_a_small_class_is_used():
    counts = Counter(index for index, _ in sampler())
    assert {index for index in counts if LABELS[index] == 2} == {25, 26}
    assert max(counts[index] for index in (25, 26)) > 1


def test_the_epoch_is_a_function_of_seed_and_epoch():
    assert list(sampler(epoch=3)) == list(sampler(epoch=3))
    assert list(sampler(epoch=3)) != list(sampler(epoch=4))
    assert list(sampler(seed=1)) != list(sampler(seed=2))
