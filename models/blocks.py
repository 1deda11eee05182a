"""Residual blocks (basic and bottleneck) in 1, 2 or 3 dimensions, with optional attention.

Parameter names follow the reference implementations, so their state_dicts load by name: ``conv1``,
``bn1``, ``conv2``, ``bn2`` (``conv3``, ``bn3`` for the bottleneck), ``downsample.0`` / ``downsample.1``
for the projection shortcut, and, for (2+1)D convs, ``conv1_s``/``bn1_s``/``conv1_t``/``bn1_t``. The
block's attention module is ``attention`` (None when absent); it acts on the residual branch after its
last BatchNorm and before the addition, as in the CBAM and SE papers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from cbam3d.attention.after_norm import attend_after_norm
from cbam3d.attention.registry import AttentionBuilder

from .convs import ConvBuilder, NamedConvs, batch_norm, conv_nd, effective_stride, factorised_width

ShortcutType = Literal["A", "B"]


def add_conv_norm_chain(parent: nn.Module, index: int, convs: NamedConvs, dims: int) -> list[tuple[str, str]]:
    """Register ``conv{index}{suffix}`` and a BatchNorm ``bn{index}{suffix}`` on ``parent`` for each conv.

    Returns the ``(conv_name, bn_name)`` pairs in order.
    """
    names = []
    for suffix, conv in convs:
        conv_name, bn_name = f"conv{index}{suffix}", f"bn{index}{suffix}"
        parent.add_module(conv_name, conv)
        parent.add_module(bn_name, batch_norm(dims, conv.out_channels))
        names.append((conv_name, bn_name))
    return names


class ZeroPadShortcut(nn.Module):
    """Parameter-free shortcut ("option A" of He et al.): subsample by ``stride``, zero-pad the channels.

    Input ``(N, C_in, *S)``, output ``(N, out_channels, *S')`` with ``S' = ceil(S / stride)``.
    """

    def __init__(self, out_channels: int, stride: Sequence[int]) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.stride = tuple(stride)

    def forward(self, x: Tensor) -> Tensor:
        index = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in self.stride)
        x = x[index]
        missing = self.out_channels - x.shape[1]
        if missing < 0:
            raise ValueError(f"ZeroPadShortcut cannot reduce {x.shape[1]} channels to {self.out_channels}")
        return F.pad(x, (0, 0) * len(self.stride) + (0, missing))

    def extra_repr(self) -> str:
        return f"out_channels={self.out_channels}, stride={self.stride}"


def make_shortcut(
    in_planes: int, out_planes: int, stride: Sequence[int], dims: int, shortcut_type: ShortcutType
) -> nn.Module | None:
    """The block's shortcut: None (identity) when shapes already match, else type A or B.

    Type ``"A"`` is :class:`ZeroPadShortcut`; type ``"B"`` is a strided 1 x 1 (x 1) conv plus BatchNorm
    (``downsample.0`` / ``downsample.1``).
    """
    if shortcut_type not in ("A", "B"):
        raise ValueError(f"shortcut_type must be 'A' or 'B', got {shortcut_type!r}")
    if all(s == 1 for s in stride) and in_planes == out_planes:
        return None
    if shortcut_type == "A":
        return ZeroPadShortcut(out_planes, stride)
    return nn.Sequential(conv_nd(dims, in_planes, out_planes, 1, tuple(stride)), batch_norm(dims, out_planes))


class ResidualBlock(nn.Module):
    """``relu(attention(branch(x)) + shortcut(x))`` where the branch is a chain of conv-BN pairs.

    Subclasses build the chain; a ReLU follows every pair but the last. Input ``(N, C_in, *S)``,
    output ``(N, planes * expansion, *S')``.
    """

    expansion = 1

    def _finish(
        self,
        chain: list[tuple[str, str]],
        in_planes: int,
        out_planes: int,
        stride: Sequence[int],
        dims: int,
        shortcut_type: ShortcutType,
        attention: AttentionBuilder | None,
    ) -> None:
        """Register the ReLU, the shortcut ``downsample`` and ``attention`` after the subclass's conv-BN chain."""
        self.relu = nn.ReLU(inplace=True)
        self.downsample = make_shortcut(in_planes, out_planes, stride, dims, shortcut_type)
        self.attention = attention(out_planes, dims) if attention is not None else None
        self.chain = tuple(chain)

    def forward(self, x: Tensor) -> Tensor:
        out = x
        for conv_name, bn_name in self.chain[:-1]:
            out = self.relu(getattr(self, bn_name)(getattr(self, conv_name)(out)))
        conv_name, bn_name = self.chain[-1]
        norm, norm_input = getattr(self, bn_name), getattr(self, conv_name)(out)
        out = norm(norm_input)
        if self.attention is not None:
            # the attention keeps the BatchNorm's input (kept anyway) for backward, not its output
            out = attend_after_norm(self.attention, norm, norm_input, out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class BasicBlock(ResidualBlock):
    """Two 3 x 3 (x 3) convs (ResNet-10/18/34).

    Args:
        in_planes: input channels.
        planes: output channels.
        stride: stride of the first conv (and of the shortcut).
        conv_builder: how a 3 x 3 (x 3) conv is realised (see :mod:`models.convs`).
        dims: 1, 2 or 3.
        shortcut_type: ``"A"`` (parameter-free) or ``"B"`` (projection).
        attention: builder ``(channels, dims) -> nn.Module`` or None.
        shared_mid_planes: for (2+1)D builders, give both convs the mid width computed from
            ``(in_planes, planes)`` as torchvision's ``VideoResNet`` does, instead of a width per conv
            as in Tran et al. and kenshohara/3D-ResNets-PyTorch.
    """

    expansion = 1

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int,
        conv_builder: ConvBuilder,
        dims: int,
        shortcut_type: ShortcutType = "B",
        attention: AttentionBuilder | None = None,
        shared_mid_planes: bool = False,
    ) -> None:
        super().__init__()
        mid1 = factorised_width(in_planes, planes)
        mid2 = mid1 if shared_mid_planes else factorised_width(planes, planes)
        first = conv_builder(in_planes, planes, stride, mid1)
        chain = add_conv_norm_chain(self, 1, first, dims)
        chain += add_conv_norm_chain(self, 2, conv_builder(planes, planes, 1, mid2), dims)
        self._finish(chain, in_planes, planes, effective_stride(first), dims, shortcut_type, attention)


class Bottleneck(ResidualBlock):
    """1 x 1 reduce, 3 x 3 (x 3) conv, 1 x 1 expand by 4 (ResNet-50 and deeper).

    The stride sits on the 3 x 3 conv (torchvision / kenshohara "ResNet v1.5" placement, also used by
    Jongchan/attention-module). Arguments as :class:`BasicBlock`; ``shared_mid_planes`` is accepted for
    a uniform signature and has no effect (there is one factorised conv).
    """

    expansion = 4

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int,
        conv_builder: ConvBuilder,
        dims: int,
        shortcut_type: ShortcutType = "B",
        attention: AttentionBuilder | None = None,
        shared_mid_planes: bool = False,
    ) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        middle = conv_builder(planes, planes, stride, factorised_width(planes, planes))
        chain = add_conv_norm_chain(self, 1, [("", conv_nd(dims, in_planes, planes, 1))], dims)
        chain += add_conv_norm_chain(self, 2, middle, dims)
        chain += add_conv_norm_chain(self, 3, [("", conv_nd(dims, planes, out_planes, 1))], dims)
        self._finish(chain, in_planes, out_planes, effective_stride(middle), dims, shortcut_type, attention)
