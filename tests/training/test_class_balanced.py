"""The class-balanced sampler of --class-balanced (cbam3d.training.seeding.ClassBalancedSampler): every class is
drawn equally often in an epoch, also on each rank of a simulated DDP world of 2, whose shares make up one
epoch; the epoch is a function of (seed, epoch); with --clips-per-decode it draws videos, each giving its clips."""

from __future__ import annotations

from collections import Counter

import pytest
from torch.utils.data import DistributedSampler

from cbam3d.training.lightning.datamodule import VideoDataModule
from cbam3d.training.seeding import ClassBalancedSampler

LABELS = [0] * 20 + [1] * 5 + [2] * 2 + [3] * 9  # 36 items, imbalanced


def sampler(*, world: int = 1, rank: int = 0, epoch: int = 0, seed: int = 0) -> ClassBalancedSampler:
    return ClassBalancedSampler(LABELS, seed=seed, epoch=lambda: epoch, num_replicas=world, rank=rank)


def class_counts(keys) -> Counter:
    return Counter(LABELS[index] for index, _ in keys)


def test_every_class_is_drawn_equally_often_in_an_epoch():
    keys = list(sampler())
    assert len(keys) == len(sampler()) >= len(LABELS)
    counts = class_counts(keys)
    assert set(counts) == {0, 1, 2, 3} and len(set(counts.values())) == 1


@pytest.mark.parametrize("epoch", [0, 1, 5])
def test_each_rank_of_a_world_of_two_gets_even_class_counts(epoch):
    shares = [list(sampler(world=2, rank=rank, epoch=epoch)) for rank in range(2)]
    for rank, keys in enumerate(shares):
        assert len(keys) == len(sampler(world=2, rank=rank))
        counts = class_counts(keys)
        assert len(set(counts.values())) == 1 and len(counts) == 4, (rank, counts)
    assert not set(shares[0]) & set(shares[1]), "the ranks drew the same keys"


def test_under_ddp_lightning_keeps_the_sampler_as_it_is():
    """A DistributedSampler is not wrapped (and reshuffled) by Lightning's distributed sampler."""
    assert isinstance(sampler(world=2, rank=1), DistributedSampler)


def test_small_classes_repeat_and_every_video_of_a_small_class_is_used():
    counts = Counter(index for index, _ in sampler())
    assert {index for index in counts if LABELS[index] == 2} == {25, 26}
    assert max(counts[index] for index in (25, 26)) > 1


def test_the_epoch_is_a_function_of_seed_and_epoch():
    assert list(sampler(epoch=3)) == list(sampler(epoch=3))
    assert list(sampler(epoch=3)) != list(sampler(epoch=4))
    assert list(sampler(seed=1)) != list(sampler(seed=2))


def test_class_balanced_loading_with_clips_per_decode_gives_each_drawn_video_its_clips(tmp_path, make_tiny_dataset):
    """--class-balanced with --clips-per-decode 2: the sampler draws videos (one item = 2 clips of one video), so a
    batch of 4 clips holds 2 drawn videos, each twice, and every class is drawn equally often over the epoch."""
    data = VideoDataModule(
        make_tiny_dataset(tmp_path / "data"), frames=2, sampling_rate=1, size=16, batch_size=4,
        clips_per_decode=2, class_balanced=True,
    )  # fmt: skip
    data.setup("fit")
    loader = data.train_dataloader()
    assert isinstance(loader.sampler, ClassBalancedSampler)
    labels = Counter()
    for batch in loader:
        videos = batch["video_index"].tolist()
        assert batch["video"].shape[0] == 4 and videos[0::2] == videos[1::2]
        labels.update(batch["label"].tolist()[0::2])
    assert len(set(labels.values())) == 1
