"""Precise BN (cbam3d.training.lightning.precise_bn): every BatchNorm's statistics, CBAM's spatial-gate BN
included, become those of one pass over the same batches (mean: over all their samples; variance: the
average of the per-batch variances), the weights and the momenta stay as they were."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

pytest.importorskip("lightning")

from cbam3d.attention import create_attention
from cbam3d.attention.pooling import channel_max_mean
from cbam3d.training.lightning.precise_bn import PreciseBatchNorm, recompute_batchnorm_statistics


def network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv3d(3, 8, 3, padding=1), nn.BatchNorm3d(8), nn.ReLU(), create_attention("cbam", 8, dims=3, reduction=2)
    )


def norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def spatial_gate_bn_input(cbam: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What CBAM's spatial-gate BatchNorm normalises for the block input ``x`` (eager, outside the fused path)."""
    refined = x * cbam.channel_gate.attention_unchecked(x)
    return cbam.spatial_gate.conv(channel_max_mean(refined))


def reference_statistics(model: nn.Module, batches: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per BatchNorm (the stem's, then the spatial gate's): (mean over every sample of every batch, mean of the
    per-batch unbiased variances) of its inputs in one train-mode pass over ``batches``."""
    model = copy.deepcopy(model).train()
    stem_inputs, spatial_inputs = [], []
    model[1].register_forward_pre_hook(lambda module, args: stem_inputs.append(args[0]))
    model[3].register_forward_pre_hook(
        lambda module, args: spatial_inputs.append(spatial_gate_bn_input(module, args[0]))
    )
    with torch.no_grad():
        for batch in batches:
            model(batch)
    statistics = []
    for inputs in (stem_inputs, spatial_inputs):
        per_channel = [x.transpose(0, 1).flatten(1) for x in inputs]  # (C, N * spatial) per batch
        mean = torch.cat(per_channel, dim=1).mean(dim=1)
        variance = torch.stack([x.var(dim=1, unbiased=True) for x in per_channel]).mean(dim=0)
        statistics.append((mean, variance))
    return statistics


def test_precise_statistics_equal_one_pass_over_the_same_batches_spatial_gate_included():
    model, batches = network().eval(), [torch.randn(4, 3, 4, 8, 8) * 2 + 1 for _ in range(3)]
    weights = {k: v.clone() for k, v in model.named_parameters()}
    expected = reference_statistics(model, batches)
    assert len(expected) == 2  # the stem's BN and the CBAM spatial gate's
    assert recompute_batchnorm_statistics(model, iter(batches)) == 3
    for norm, (mean, variance) in zip(norms(model), expected):
        assert torch.allclose(norm.running_mean, mean, atol=1e-5)
        assert torch.allclose(norm.running_var, variance, rtol=1e-4)
    assert [norm.momentum for norm in norms(model)] == [0.1, 0.01] and not model.training
    assert all(torch.equal(v, weights[k]) for k, v in model.named_parameters())


def test_the_statistics_are_averaged_with_the_given_function():
    model, batches = network(), [torch.randn(4, 3, 4, 8, 8)]
    recompute_batchnorm_statistics(model, batches, average=lambda value: value * 0 + 5)
    assert all(torch.all(norm.running_mean == 5) and torch.all(norm.running_var == 5) for norm in norms(model))


@pytest.mark.parametrize("batches", [0, -1, 2.5, True])
def test_a_batch_count_that_is_not_a_positive_integer_is_refused(batches):
    with pytest.raises(ValueError, match="batches must be a positive int"):
        PreciseBatchNorm(batches)
