"""The hand-written references that cbam3d's attention modules are measured against.

:class:`NaiveSE`, :class:`NaiveCBAM`, :class:`NaiveBAM` and :class:`NaiveECA` are the well-known 2D code lifted
to N-d: adaptive average / max pools, a 1x1 conv MLP, the concatenation of the channel max and mean, a conv
with BatchNorm, sigmoids and broadcast multiplies, all plain autograd. Each computes the same function as the
cbam3d module it is built from (:func:`naive_like` copies the weights), so a comparison is between two
implementations of one block.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from cbam3d.attention.bam import BAM
from cbam3d.attention.cbam import CBAM
from cbam3d.attention.channel import ChannelGate
from cbam3d.attention.dims import ADAPTIVE_AVG_POOL, ADAPTIVE_MAX_POOL, BATCH_NORM, CONV
from cbam3d.attention.eca import ECA
from cbam3d.attention.spatial import SpatialGate

__all__ = ["NaiveBAM", "NaiveCBAM", "NaiveECA", "NaiveSE", "has_reference", "naive_like"]


def _conv_mlp(linear_in: nn.Linear, linear_out: nn.Linear, dims: int, norm: nn.Module | None = None) -> nn.Sequential:
    """The 1x1(x1) conv MLP equal to two Linear layers (with an optional norm between them)."""
    layers = []
    for linear in (linear_in, linear_out):
        conv = CONV[dims](linear.in_features, linear.out_features, 1)
        conv.weight.data.copy_(linear.weight.reshape(conv.weight.shape))
        conv.bias.data.copy_(linear.bias)
        layers.append(conv)
    middle = [norm, nn.ReLU(inplace=True)] if norm is not None else [nn.ReLU(inplace=True)]
    return nn.Sequential(layers[0], *middle, layers[1])


class NaiveSE(nn.Module):
    """Hand-written SE: AdaptiveAvgPool -> 1x1 conv -> ReLU -> 1x1 conv -> sigmoid -> x * w."""

    def __init__(self, se: ChannelGate) -> None:
        super().__init__()
        self.pool = ADAPTIVE_AVG_POOL[se.dims](1)
        self.mlp = _conv_mlp(se.mlp[0], se.mlp[2], se.dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.mlp(self.pool(x)))


class NaiveCBAM(nn.Module):
    """Hand-written CBAM: ``mlp(avgpool x) + mlp(maxpool x)`` -> sigmoid -> ``y = x * Mc``; then
    ``cat(max_c y, mean_c y)`` -> conv -> BatchNorm -> sigmoid -> ``y * Ms``."""

    def __init__(self, cbam: CBAM) -> None:
        super().__init__()
        gate, spatial = cbam.channel_gate, cbam.spatial_gate
        is_default = gate.pool_types == ("avg", "max") and cbam.gate_order == "channel_spatial"
        if not is_default or not isinstance(spatial, SpatialGate):
            raise ValueError(
                "NaiveCBAM reproduces the default CBAM: avg and max pools, a joint spatial gate, channel first"
            )
        dims = cbam.dims
        self.avg_pool, self.max_pool = ADAPTIVE_AVG_POOL[dims](1), ADAPTIVE_MAX_POOL[dims](1)
        self.mlp = _conv_mlp(gate.mlp[0], gate.mlp[2], dims)
        padding = tuple(k // 2 for k in spatial.kernel_size)
        self.conv = CONV[dims](2, 1, spatial.kernel_size, padding=padding, bias=False)
        self.bn = BATCH_NORM[dims](1, eps=1e-5, momentum=0.01)
        self.conv.load_state_dict(spatial.conv.state_dict())
        self.bn.load_state_dict(spatial.bn.state_dict())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * torch.sigmoid(self.mlp(self.avg_pool(x)) + self.mlp(self.max_pool(x)))
        descriptor = torch.cat([torch.max(y, dim=1, keepdim=True)[0], torch.mean(y, dim=1, keepdim=True)], dim=1)
        return y * torch.sigmoid(self.bn(self.conv(descriptor)))


class NaiveBAM(nn.Module):
    """Hand-written BAM (the released code's structure, pooling globally): channel branch
    avgpool -> Linear -> BatchNorm1d -> ReLU -> Linear; spatial branch 1x1 conv, dilated 3x3 convs, 1x1
    conv; ``x * (1 + sigmoid(Mc (+|*) Ms))`` with both branches expanded to the input's shape."""

    def __init__(self, bam: BAM) -> None:
        super().__init__()
        self.channel_mlp = bam.channel_gate.mlp
        self.spatial = nn.Sequential(bam.spatial_gate.reduce, bam.spatial_gate.dilated, bam.spatial_gate.project)
        self.pool = ADAPTIVE_AVG_POOL[bam.dims](1)
        self.combine = bam.combine

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel = self.channel_mlp(self.pool(x).flatten(1)).reshape(*x.shape[:2], *(1,) * (x.ndim - 2)).expand_as(x)
        spatial = self.spatial(x).expand_as(x)
        mixed = channel + spatial if self.combine == "sum" else channel * spatial
        return x * (1 + torch.sigmoid(mixed))


class NaiveECA(nn.Module):
    """Hand-written ECA: AdaptiveAvgPool -> view as (N, 1, C) -> Conv1d across channels -> sigmoid -> x * w."""

    def __init__(self, eca: ECA) -> None:
        super().__init__()
        self.pool = ADAPTIVE_AVG_POOL[eca.dims](1)
        self.conv = eca.conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.conv(self.pool(x).view(x.shape[0], 1, x.shape[1])).view(*x.shape[:2], *(1,) * (x.ndim - 2))
        return x * torch.sigmoid(weights)


def has_reference(module: nn.Module) -> bool:
    """Whether :func:`naive_like` has a hand-written reference for ``module``."""
    is_se = isinstance(module, ChannelGate) and module.pool_types == ("avg",)
    return is_se or isinstance(module, (CBAM, BAM, ECA))


def naive_like(module: nn.Module) -> nn.Module:
    """The hand-written reference computing the same function as ``module`` (SE, CBAM, BAM or ECA), with
    a copy of its weights (NaiveBAM shares them)."""
    if not has_reference(module):
        raise TypeError(f"no hand-written reference for {type(module).__name__}")
    module = copy.deepcopy(module)
    if isinstance(module, CBAM):
        return NaiveCBAM(module)
    if isinstance(module, BAM):
        return NaiveBAM(module)
    if isinstance(module, ECA):
        return NaiveECA(module)
    return NaiveSE(module)
