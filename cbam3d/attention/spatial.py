"""CBAM's spatial attention, and its spatio-temporal forms for video.

The descriptor is the channel-wise max and mean, concatenated in that order (N, 2, *spatial). A
convolution without bias, a BatchNorm (eps 1e-5, momentum 0.01, affine) and a sigmoid turn it into one
weight per position. There is no ReLU: the official code builds the conv with ``relu=False``.

For (N, C, T, H, W) clips there are three ways to lay out the gate (``spatial_mode`` of :class:`CBAM`):

- ``"joint"``: one Conv3d over (T, H, W), default kernel (3, 7, 7);
- ``"framewise"``: a (1, k, k) Conv3d, i.e. the 2D gate on every frame with shared weights;
- ``"factorized"``: a :class:`TemporalGate` over T, then a framewise gate over H x W, applied in turn.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import AttentionModule
from .dims import BATCH_NORM, CONV, check_dims, odd_kernel, uses_batch_statistics
from .functional import SpatialGateParameters, spatial_gate
from .pooling import channel_max_mean

SPATIAL_MODES: tuple[str, ...] = ("joint", "framewise", "factorized")

#: Default spatial kernel per dims. 7 is the paper's. In 3D the temporal extent is 3, not 7: deep in a
#: 3D ResNet a 16-frame clip has only T=2 (T=4 for 32 frames), where 5 of 7 temporal taps would only
#: ever see zero padding; 3 taps still relate each frame to its neighbours.
DEFAULT_KERNEL_SIZE: dict[int, tuple[int, ...]] = {1: (7,), 2: (7, 7), 3: (3, 7, 7)}


def _conv_bn(dims: int, kernel: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    conv = CONV[dims](2, 1, kernel, padding=tuple(k // 2 for k in kernel), bias=False)
    bn = BATCH_NORM[dims](1, eps=1e-5, momentum=0.01, affine=True)
    return conv, bn


def _batch_norm_arguments(bn: nn.modules.batchnorm._BatchNorm) -> tuple:
    """(running_mean, running_var, use batch statistics, update factor) as ``nn.BatchNorm.forward``
    passes them to ``F.batch_norm``; counts the batch in ``num_batches_tracked`` as it does."""
    momentum = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:
            momentum = 1.0 / float(bn.num_batches_tracked)
    keep_running = not bn.training or bn.track_running_stats
    running_mean, running_var = (bn.running_mean, bn.running_var) if keep_running else (None, None)
    return running_mean, running_var, uses_batch_statistics(bn), momentum


class SpatialGate(AttentionModule):
    """CBAM's spatial attention (Woo et al., 2018, eq. 3) with a Conv{dims}d.

    ``Ms(x) = sigmoid(BN(conv([max_c x; mean_c x])))`` and the output is ``x * Ms(x)``. :meth:`forward`
    runs as one fused autograd Function (:mod:`cbam3d.attention.functional`) that keeps only the input and two
    (N, 1, *spatial) maps for backward; :meth:`logits` and :meth:`attention` are plain eager code.

    Args:
        dims: 1, 2 or 3 for inputs (N, C, L), (N, C, H, W), (N, C, T, H, W).
        kernel_size: odd int (the same in every axis) or a ``dims``-tuple, e.g. (kt, kh, kw);
            None gives :data:`DEFAULT_KERNEL_SIZE`.

    Shape:
        input (N, C, *spatial), any C; output the same; :meth:`attention` gives (N, 1, *spatial).
    """

    map_kind = "spatial"

    def __init__(self, dims: int = 2, *, kernel_size: int | Sequence[int] | None = None) -> None:
        super().__init__(dims)
        self.kernel_size = DEFAULT_KERNEL_SIZE[dims] if kernel_size is None else odd_kernel(kernel_size, dims)
        self.conv, self.bn = _conv_bn(dims, self.kernel_size)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *spatial) -> (N, 1, *spatial), before the sigmoid."""
        return self.bn(self.conv(channel_max_mean(x)))

    def function_arguments(self) -> SpatialGateParameters:
        """The parameters and BatchNorm settings :func:`cbam3d.attention.functional.spatial_gate` takes after x,
        for this call (in training mode this counts the batch in ``bn.num_batches_tracked``)."""
        return SpatialGateParameters(
            self.conv.weight, self.bn.weight, self.bn.bias, *_batch_norm_arguments(self.bn), self.bn.eps
        )

    def attention_unchecked(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *spatial) -> one weight per position (N, 1, *spatial) in (0, 1)."""
        weights = torch.sigmoid(self.logits(x))
        self.report_map(weights)
        return weights

    def forward_unchecked(self, x: torch.Tensor) -> torch.Tensor:
        out, weights = spatial_gate(x, self.function_arguments())
        self.report_map(weights)
        return out

    def extra_repr(self) -> str:
        return f"dims={self.dims}, kernel_size={self.kernel_size}"


class TemporalGate(AttentionModule):
    """One weight per frame of a clip: the temporal half of the factorized spatio-temporal gate.

    The descriptor is the max and the mean over channels and space, (N, 2, T); a Conv1d over T (no bias),
    a BatchNorm1d and a sigmoid give the per-frame weights.

    Args:
        kernel_size: odd temporal extent kt.

    Shape:
        input (N, C, T, H, W); output the same; :meth:`attention` gives (N, 1, T, 1, 1).
    """

    map_kind = "temporal"

    def __init__(self, *, kernel_size: int = 3) -> None:
        super().__init__(dims=3)
        (self.kernel_size,) = odd_kernel(kernel_size, 1)
        self.conv, self.bn = _conv_bn(1, (self.kernel_size,))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, H, W) -> (N, 1, T), before the sigmoid."""
        axes = (1, 3, 4)
        descriptor = torch.stack([x.amax(dim=axes), x.mean(dim=axes)], dim=1)
        return self.bn(self.conv(descriptor))

    def attention_unchecked(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, H, W) -> per-frame weights (N, 1, T, 1, 1) in (0, 1)."""
        weights = torch.sigmoid(self.logits(x))[..., None, None]
        self.report_map(weights)
        return weights

    def forward_unchecked(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention_unchecked(x)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


class FactorizedSpatialGate(AttentionModule):
    """A temporal gate over T, then a spatial gate over H x W on each frame, applied in turn.

    ``y = x * Mt(x)``, output ``y * Ms(y)``; ``Ms`` is a (1, kh, kw) :class:`SpatialGate`.

    Args:
        kernel_size: (kt, kh, kw) or an odd int k for (k, k, k); None for (3, 7, 7).

    Shape:
        input (N, C, T, H, W); output the same; :meth:`attention` gives (N, 1, T, H, W).
    """

    map_kind = "spatial"

    def __init__(self, *, kernel_size: int | Sequence[int] | None = None) -> None:
        super().__init__(dims=3)
        kt, kh, kw = DEFAULT_KERNEL_SIZE[3] if kernel_size is None else odd_kernel(kernel_size, 3)
        self.temporal = TemporalGate(kernel_size=kt)
        self.spatial = SpatialGate(dims=3, kernel_size=(1, kh, kw))

    def attention_unchecked(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, H, W) -> the combined map ``Mt(x) * Ms(x * Mt(x))``, (N, 1, T, H, W)."""
        temporal = self.temporal.attention_unchecked(x)
        weights = temporal * self.spatial.attention_unchecked(x * temporal)
        self.report_map(weights)
        return weights

    def forward_unchecked(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial.forward_unchecked(self.temporal.forward_unchecked(x))


def _framewise_kernel(kernel_size: int | Sequence[int] | None) -> tuple[int, int, int]:
    """k, (kh, kw) or (1, kh, kw) -> (1, kh, kw)."""
    if kernel_size is None:
        return (1, *DEFAULT_KERNEL_SIZE[2])
    if isinstance(kernel_size, int) and not isinstance(kernel_size, bool):
        return (1, *odd_kernel(kernel_size, 2))
    kernel = tuple(kernel_size) if isinstance(kernel_size, Sequence) else (kernel_size,)
    if len(kernel) == 2:
        kernel = (1, *kernel)
    if len(kernel) != 3 or kernel[0] != 1:
        raise ValueError(f"spatial_mode='framewise' takes k, (kh, kw) or (1, kh, kw), got kernel_size={kernel_size!r}")
    return odd_kernel(kernel, 3)


def make_spatial_gate(
    dims: int, kernel_size: int | Sequence[int] | None = None, mode: str = "joint"
) -> SpatialGate | FactorizedSpatialGate:
    """Build CBAM's spatial gate for ``dims`` in one of :data:`SPATIAL_MODES` (see the module docstring).

    ``"framewise"`` and ``"factorized"`` need a time axis (dims=3); ``"framewise"`` takes an int k for
    (1, k, k) or a tuple whose temporal size is 1.
    """
    check_dims(dims)
    if mode not in SPATIAL_MODES:
        raise ValueError(f"unknown spatial_mode {mode!r}: expected one of {SPATIAL_MODES}")
    if mode != "joint" and dims != 3:
        raise ValueError(f"spatial_mode={mode!r} needs a time axis (dims=3), got dims={dims}; use 'joint'")
    if mode == "factorized":
        return FactorizedSpatialGate(kernel_size=kernel_size)
    if mode == "framewise":
        kernel_size = _framewise_kernel(kernel_size)
    return SpatialGate(dims, kernel_size=kernel_size)
