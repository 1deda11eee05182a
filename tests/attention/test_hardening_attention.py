"""Attention modules on unusual inputs: empty batches and lazy building after ``.eval()`` (issue 13)."""

import pytest
import torch

from cbam3d import BAM, CBAM, SE
from cbam3d.attention.registry import attention_names, create_attention

_SPATIAL = {1: (8,), 2: (8, 8), 3: (4, 8, 8)}


@pytest.mark.parametrize("name", attention_names())
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("training", [True, False])
def test_empty_batch_passes_through_forward_and_backward(name, dims, training):
    """A batch of 0 clips gives an output of the same shape and a backward pass, not a crash."""
    module = create_attention(name, 16, dims=dims).train(training)
    x = torch.randn(0, 16, *_SPATIAL[dims], requires_grad=True)
    out = module(x)
    out.sum().backward()
    assert out.shape == x.shape
    assert x.grad.shape == x.shape


@pytest.mark.parametrize(
    "module",
    [CBAM(16, dims=3, spatial=False), CBAM(16, dims=3, gate_order="parallel"), SE(16, dims=3), CBAM(None, dims=3)],
    ids=["cbam-channel-only", "cbam-parallel", "se", "cbam-lazy"],
)
def test_empty_batch_variants_and_lazy_module_build(module):
    """Channel-only CBAM, SE and a lazy CBAM take an empty batch (the lazy one is built for its channels)."""
    x = torch.randn(0, 16, 4, 8, 8, requires_grad=True)
    module(x).sum().backward()
    assert module.channels == 16


def test_zero_length_spatial_axis_passes_through():
    """A clip of 0 frames is empty too: same shape back."""
    x = torch.randn(2, 16, 0, 8, 8)
    assert CBAM(16, dims=3)(x).shape == x.shape


def test_lazy_bam_built_after_eval_keeps_eval_mode():
    """A lazy BAM first called after ``.eval()`` builds its layers in eval mode: its BatchNorms do not update."""
    bam = BAM(None, dims=3, reduction=4).eval()
    bam(torch.randn(2, 16, 4, 8, 8))
    assert all(not module.training for module in bam.modules())
    norms = [m for m in bam.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    before = [norm.running_mean.clone() for norm in norms]
    bam(torch.randn(2, 16, 4, 8, 8) + 5)
    assert all(torch.equal(b, norm.running_mean) for b, norm in zip(before, norms))


def test_lazy_module_built_in_training_mode_stays_training():
    """The counterpart: built while training, the layers train."""
    bam = BAM(None, dims=2, reduction=4)
    bam(torch.randn(2, 16, 8, 8))
    assert all(module.training for module in bam.modules())
