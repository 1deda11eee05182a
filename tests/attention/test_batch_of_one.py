"""Batch size 1 in training, common in 3D segmentation: CBAM trains; BAM trains with channel_norm
"layer" or "none" and its default (the paper's BatchNorm1d) says what to choose."""

from __future__ import annotations

import pytest
import torch

from cbam3d import BAM, CBAM


def one_volume() -> torch.Tensor:
    return torch.randn(1, 8, 4, 6, 6, generator=torch.Generator().manual_seed(0))


def train_step(module: torch.nn.Module) -> None:
    """One SGD step on a batch of one volume; the loss must be finite and every parameter get a gradient."""
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    loss = module.train()(one_volume()).square().mean()
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.parameters())
    optimizer.step()


def test_cbam_trains_on_a_batch_of_one_volume():
    train_step(CBAM(8, dims=3, kernel_size=(3, 7, 7)))


@pytest.mark.parametrize("channel_norm", ["layer", "none"])
def test_bam_with_a_per_sample_channel_norm_trains_on_a_batch_of_one(channel_norm):
    train_step(BAM(8, dims=3, reduction=4, channel_norm=channel_norm))


def test_bam_default_at_batch_one_in_training_says_which_channel_norm_to_choose():
    with pytest.raises(ValueError, match="channel_norm='layer' or 'none'"):
        BAM(8, dims=3, reduction=4).train()(one_volume())
    assert BAM(8, dims=3, reduction=4).eval()(one_volume()).shape == one_volume().shape


def test_bam_channel_norm_choices_keep_the_state_dict_keys_of_the_default():
    """The paper's BatchNorm1d stays the default with its keys; "layer" has the same parameter keys."""
    batch = BAM(8, dims=3, reduction=4).state_dict()
    layer = BAM(8, dims=3, reduction=4, channel_norm="layer").state_dict()
    assert isinstance(BAM(8, dims=3).channel_gate.mlp[1], torch.nn.BatchNorm1d)
    running = {"channel_gate.mlp.1.running_mean", "channel_gate.mlp.1.running_var"}
    assert set(batch) - set(layer) == running | {"channel_gate.mlp.1.num_batches_tracked"}
    with pytest.raises(ValueError, match="unknown channel_norm 'group'"):
        BAM(8, dims=3, channel_norm="group")
