"""The one place that picks layer classes by the number of spatial dimensions.

``dims`` is the number of axes after (N, C): 1 for (N, C, L), 2 for (N, C, H, W) and 3 for
(N, C, T, H, W). Every module in cbam3d asks this file for its convolution and batch norm, so
the same code builds the 1D, 2D and 3D versions of a block.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

CONV: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
BATCH_NORM: dict[int, type[nn.Module]] = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
MAX_POOL: dict[int, type[nn.Module]] = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
ADAPTIVE_AVG_POOL: dict[int, type[nn.Module]] = {
    1: nn.AdaptiveAvgPool1d,
    2: nn.AdaptiveAvgPool2d,
    3: nn.AdaptiveAvgPool3d,
}
ADAPTIVE_MAX_POOL: dict[int, type[nn.Module]] = {
    1: nn.AdaptiveMaxPool1d,
    2: nn.AdaptiveMaxPool2d,
    3: nn.AdaptiveMaxPool3d,
}
INPUT_LAYOUT: dict[int, str] = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, T, H, W)"}


def check_dims(dims: int) -> int:
    """Return ``dims`` if it is 1, 2 or 3, else raise."""
    if isinstance(dims, bool) or not isinstance(dims, int):
        raise TypeError(f"dims must be an int (1, 2 or 3), got {type(dims).__name__}")
    if dims not in CONV:
        raise ValueError(f"dims must be 1, 2 or 3 (for inputs {', '.join(INPUT_LAYOUT.values())}), got {dims}")
    return dims


def check_positive_int(value: int, name: str) -> int:
    """Return ``value`` if it is an int >= 1, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 1, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def to_tuple(value: int | Sequence[int], dims: int, name: str) -> tuple[int, ...]:
    """Expand an int to a ``dims``-tuple, or check that a sequence has ``dims`` positive ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * dims
    if not isinstance(value, Sequence) or len(value) != dims:
        raise ValueError(f"{name} must be an int or a sequence of {dims} ints for dims={dims}, got {value!r}")
    return tuple(check_positive_int(v, name) for v in value)


def odd_kernel(value: int | Sequence[int], dims: int, name: str = "kernel_size") -> tuple[int, ...]:
    """A ``dims``-tuple of odd kernel sizes: odd so that 'same' padding (k // 2) keeps the shape."""
    kernel = to_tuple(value, dims, name)
    if any(k % 2 == 0 for k in kernel):
        raise ValueError(f"{name} must be odd in every axis so the output keeps the input's size, got {kernel}")
    return kernel


def hidden_channels(channels: int, reduction: int) -> int:
    """Width of a gate's bottleneck: ``channels // reduction``, but at least 1.

    The papers use ``C // r``; for ``C < r`` that would be 0, and a zero-width MLP makes the gate a
    constant. cbam3d keeps one hidden unit instead, so ``CBAM(8)`` still learns. For ``C >= r`` the
    width is exactly the papers'.
    """
    return max(1, channels // reduction)


def spatial_axes(x: torch.Tensor) -> tuple[int, ...]:
    """The axes after (N, C): (2,), (2, 3) or (2, 3, 4)."""
    return tuple(range(2, x.ndim))


def channel_map(weights: torch.Tensor, dims: int) -> torch.Tensor:
    """Channel weights (N, C) as a map (N, C, 1, ...) with ``dims`` ones, broadcastable to (N, C, *spatial)."""
    return weights.reshape(*weights.shape, *(1,) * dims)


def uses_batch_statistics(norm: nn.Module) -> bool:
    """Whether a BatchNorm normalizes this call with the batch's statistics (training mode, or no
    running statistics), as ``nn.BatchNorm.forward`` decides."""
    return norm.training or (norm.running_mean is None and norm.running_var is None)
