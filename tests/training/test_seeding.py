"""The training order and augmentations (cbam3d.training.seeding): drawn from the seed and the epoch only."""

import torch

from cbam3d.training.seeding import EpochSeededSampler, SeededItems


class RandomDraw(torch.utils.data.Dataset):
    """Item i is (i, a draw from torch's global generator): a stand-in for random clip positions and crops."""

    def __len__(self):
        return 12

    def __getitem__(self, index):
        return torch.tensor([float(index), torch.rand(()).item()])


def _epoch(workers: int, epoch: int, seed: int = 5) -> torch.Tensor:
    sampler = EpochSeededSampler(12, seed=seed, epoch=lambda: epoch)
    loader = torch.utils.data.DataLoader(SeededItems(RandomDraw()), batch_size=4, sampler=sampler, num_workers=workers)
    return torch.cat(list(loader))


def test_training_order_and_augmentation_depend_on_seed_and_epoch_only_not_on_the_worker_count():
    reference = _epoch(workers=0, epoch=3)
    torch.rand(100)  # the global generator's state does not matter
    torch.testing.assert_close(_epoch(workers=2, epoch=3), reference)
    assert sorted(reference[:, 0].tolist()) == list(map(float, range(12)))
    assert not torch.equal(_epoch(workers=0, epoch=4), reference)
    assert not torch.equal(_epoch(workers=0, epoch=3, seed=6), reference)
