"""Convolution builders: how a residual network realises its k x k (x k) convolutions.

A *conv builder* is a function ``builder(in_planes, out_planes, stride, mid_planes)`` that returns a
list of ``(suffix, conv)`` pairs. The block that calls it names each conv ``conv{i}{suffix}`` and puts a
BatchNorm ``bn{i}{suffix}`` after it, with a ReLU between consecutive pairs. A plain convolution is one
pair with suffix ``""``; the (2+1)D factorisation is two pairs, ``"_s"`` (spatial 1 x 3 x 3 conv into
``mid_planes`` channels) and ``"_t"`` (temporal 3 x 1 x 1 conv), which gives the parameter names of
kenshohara/3D-ResNets-PyTorch (``conv1_s``, ``bn1_s``, ``conv1_t``, ``bn1_t``). Builders that do not
factorise ignore ``mid_planes``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from cbam3d.attention.dims import ADAPTIVE_AVG_POOL, BATCH_NORM, CONV, MAX_POOL

NamedConvs = list[tuple[str, nn.Module]]
ConvBuilder = Callable[[int, int, int, int], NamedConvs]


def conv_nd(dims: int, in_planes: int, out_planes: int, kernel_size, stride=1, padding=0) -> nn.Module:
    """A bias-free ``Conv{dims}d`` (every conv in these networks is followed by a BatchNorm)."""
    return CONV[dims](in_planes, out_planes, kernel_size, stride=stride, padding=padding, bias=False)


def batch_norm(dims: int, channels: int) -> nn.Module:
    """``BatchNorm{dims}d`` over ``channels``."""
    return BATCH_NORM[dims](channels)


def max_pool(dims: int) -> nn.Module:
    """The stem's 3-wide, stride-2 max pooling in ``dims`` dimensions."""
    return MAX_POOL[dims](kernel_size=3, stride=2, padding=1)


def global_avg_pool(dims: int) -> nn.Module:
    """Adaptive average pooling to one value per channel, so any input size works."""
    return ADAPTIVE_AVG_POOL[dims](1)


def factorised_width(in_planes: int, out_planes: int, kernel_t: int = 3, kernel_s: int = 3) -> int:
    """Mid width of a (2+1)D conv with the parameter count of the full kt x ks x ks conv it replaces.

    ``in * out * kt * ks^2 // (in * ks^2 + kt * out)`` (Tran et al., "A Closer Look at
    Spatiotemporal Convolutions", section 3.5).
    """
    spatial = kernel_s * kernel_s
    return (in_planes * out_planes * kernel_t * spatial) // (in_planes * spatial + kernel_t * out_planes)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, mid_planes: int = 0) -> NamedConvs:
    """2D 3 x 3 conv, padding 1 (the image ResNets)."""
    return [("", conv_nd(2, in_planes, out_planes, 3, stride, 1))]


def conv3x3x3(in_planes: int, out_planes: int, stride: int = 1, mid_planes: int = 0) -> NamedConvs:
    """Full 3 x 3 x 3 spatiotemporal conv, stride ``stride`` in T, H and W (R3D)."""
    return [("", conv_nd(3, in_planes, out_planes, 3, stride, 1))]


def conv1x3x3(in_planes: int, out_planes: int, stride: int = 1, mid_planes: int = 0) -> NamedConvs:
    """Frame-wise 1 x 3 x 3 conv, stride ``(1, stride, stride)``: no temporal mixing (MC3's upper stages)."""
    return [("", conv_nd(3, in_planes, out_planes, (1, 3, 3), (1, stride, stride), (0, 1, 1)))]


def conv2plus1d(in_planes: int, out_planes: int, stride: int = 1, mid_planes: int = 0) -> NamedConvs:
    """(2+1)D conv: 1 x 3 x 3 into ``mid_planes`` channels, stride ``(1, s, s)``; then 3 x 1 x 1,
    stride ``(s, 1, 1)``."""
    if mid_planes <= 0:
        raise ValueError(f"conv2plus1d needs a positive mid_planes, got {mid_planes}")
    return [
        ("_s", conv_nd(3, in_planes, mid_planes, (1, 3, 3), (1, stride, stride), (0, 1, 1))),
        ("_t", conv_nd(3, mid_planes, out_planes, (3, 1, 1), (stride, 1, 1), (1, 0, 0))),
    ]


def effective_stride(convs: Sequence[tuple[str, nn.Module]]) -> tuple[int, ...]:
    """Total stride per spatial dimension of a chain of convs (what a shortcut must match)."""
    total: list[int] | None = None
    for _, conv in convs:
        stride = list(conv.stride)
        total = stride if total is None else [a * b for a, b in zip(total, stride)]
    if total is None:
        raise ValueError("effective_stride needs at least one conv")
    return tuple(total)
