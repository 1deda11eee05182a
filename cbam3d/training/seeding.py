"""Training randomness that is a function of (seed, epoch, item): the same under any number of data-loading
workers, with or without DDP, and after ``--resume``.

Lightning creates (and prefetches from) a run's first data iterator before any epoch hook runs, so re-seeding
the global generators in ``on_train_epoch_start`` cannot make a resumed epoch repeat an uninterrupted one.
Instead, :class:`EpochSeededSampler` yields ``(index, item_seed)`` keys, its shuffled order and every item seed
derived from (seed, epoch), and :class:`SeededItems` seeds ``random``, NumPy and torch with ``item_seed``
right before loading that item, so its random clip position, crop and flip are fixed by the key alone.
Under DDP, Lightning wraps the sampler in its ``DistributedSamplerWrapper``, which shards these keys.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

__all__ = ["ClassBalancedSampler", "EpochSeededSampler", "SeededItems"]


class EpochSeededSampler(Sampler):
    """Shuffles ``num_items`` indices anew each epoch and pairs each with its own seed.

    Args:
        num_items: the dataset's length.
        seed: the run's seed.
        epoch: returns the current epoch when an epoch's order is drawn (e.g. ``lambda: trainer.current_epoch``).
        shuffle: shuffle the order (the item seeds change with the epoch either way).

    Yields:
        ``(index, item_seed)`` pairs, ``item_seed`` a 32-bit int.
    """

    def __init__(self, num_items: int, *, seed: int, epoch: Callable[[], int], shuffle: bool = True) -> None:
        if num_items < 1:
            raise ValueError(f"num_items must be positive, got {num_items}")
        self.num_items, self.seed, self.epoch, self.shuffle = num_items, seed, epoch, shuffle

    def __len__(self) -> int:
        return self.num_items

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch_seeds = np.random.SeedSequence([self.seed, int(self.epoch())]).generate_state(2)
        generator = torch.Generator().manual_seed(int(epoch_seeds[0]))
        order = torch.randperm(self.num_items, generator=generator) if self.shuffle else torch.arange(self.num_items)
        item_seeds = np.random.default_rng(int(epoch_seeds[1])).integers(0, 2**32, size=self.num_items)
        for index in order.tolist():
            yield index, int(item_seeds[index])


class SeededItems(Dataset):
    """``dataset[index]`` loaded right after seeding ``random``, NumPy and torch with the key's ``item_seed``.

    Keys are ``(index, item_seed)`` pairs from :class:`EpochSeededSampler`; a plain int index loads without
    seeding. Seeding the global generators is safe here: each DataLoader worker is its own process, and with
    no workers the training loop draws nothing random between items.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | tuple[int, int]) -> Any:
        if isinstance(key, tuple):
            index, item_seed = key
            random.seed(item_seed)
            np.random.seed(item_seed)
            torch.manual_seed(item_seed)
            return self.dataset[index]
        return self.dataset[key]


class ClassBalancedSampler(DistributedSampler):
    """This rank's share of an epoch of ``(index, item_seed)`` keys in which every class is drawn equally often,
    also within each rank's share.

    The epoch is made of rounds; a round holds ``num_replicas`` items of each class, as one block per class,
    the classes in a random order, and rank r takes the r-th item of every block. Each class's videos are drawn
    in a shuffled order, reshuffled whenever they run out: the videos of small classes repeat within an epoch,
    those of large classes are not all seen every epoch. The epoch has about as many keys as videos (rounded up
    to whole rounds); the order, the videos and the item seeds are fixed by (seed, epoch), as with
    :class:`EpochSeededSampler`. Being a ``DistributedSampler``, it is not wrapped (and reshuffled) by
    Lightning's distributed sampler under DDP.

    Args:
        labels: each item's class index.
        seed: the run's seed.
        epoch: returns the current epoch when an epoch's order is drawn.
        num_replicas, rank: the DDP world size and this process's rank (1 and 0 without DDP).
    """

    def __init__(
        self, labels: list[int], *, seed: int, epoch: Callable[[], int], num_replicas: int = 1, rank: int = 0
    ) -> None:
        if not labels:
            raise ValueError("labels is empty: no items to sample")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas), got rank {rank} of {num_replicas}")
        super().__init__(range(len(labels)), num_replicas=num_replicas, rank=rank, shuffle=False, seed=seed)
        self.members: dict[int, list[int]] = {}
        for index, label in enumerate(labels):
            self.members.setdefault(int(label), []).append(index)
        self.current_epoch = epoch  # not DistributedSampler's ``epoch``, which its set_epoch overwrites
        self.rounds = -(-len(labels) // (len(self.members) * num_replicas))

    def __len__(self) -> int:
        return self.rounds * len(self.members)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(self.current_epoch()), 1]))
        classes = sorted(self.members)
        queues: dict[int, list[int]] = {label: [] for label in classes}

        def draw(label: int) -> int:
            if not queues[label]:
                queues[label] = rng.permutation(self.members[label]).tolist()
            return queues[label].pop()

        for _ in range(self.rounds):
            for label in rng.permutation(classes).tolist():
                block = [(draw(label), int(rng.integers(0, 2**32))) for _ in range(self.num_replicas)]
                yield block[self.rank]
