"""CBAM: the Convolutional Block Attention Module (Woo et al., ECCV 2018), in 1D, 2D and 3D."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import AttentionModule, pass_empty
from .channel import ChannelGate
from .dims import channel_map
from .functional import cbam
from .registry import register_attention
from .spatial import SpatialGate, make_spatial_gate

GATE_ORDERS: tuple[str, ...] = ("channel_spatial", "spatial_channel", "parallel")


class CBAM(AttentionModule):
    """Channel attention, then spatial attention: ``y = x * Mc(x)``, output ``y * Ms(y)``.

    With the default gate order and a joint or framewise spatial gate, the block runs as one fused
    autograd Function that keeps only the input (plus maps of one channel) for backward, about half the
    memory of eager code, which also keeps ``x * Mc``.

    With ``dims=2`` and the defaults this is the block of the paper and of its official code
    (Jongchan/attention-module ``MODELS/cbam.py``): the same numbers for the same weights, and
    :func:`cbam3d.from_official` loads the official weights.

    Args:
        channels: C; None to take it from the first input.
        dims: 1, 2 or 3 for inputs (N, C, L), (N, C, H, W), (N, C, T, H, W).
        reduction: r of the channel gate's MLP (bottleneck ``max(1, C // r)``).
        kernel_size: the spatial gate's conv kernel: an odd int (cubic in 3D) or a ``dims``-tuple such as
            (kt, kh, kw). None gives 7 in 1D and 2D (the paper's) and (3, 7, 7) in 3D, because deep in a 3D
            ResNet a 16-frame clip is only T=2 frames long.
        pool_types: the channel gate's pools, in order: ``"avg"``, ``"max"``, ``"lp"``, ``"lse"``.
        spatial: False drops the spatial gate (the official ``no_spatial``).
        spatial_mode: 3D only: ``"joint"`` (one Conv3d over T, H, W; default), ``"framewise"`` ((1, k, k))
            or ``"factorized"`` (a temporal gate over T, then a spatial gate over H x W).
        gate_order: ``"channel_spatial"`` (the paper's best), ``"spatial_channel"``, or ``"parallel"``
            (both maps computed from the input: ``x * Mc(x) * Ms(x)``), to reproduce the paper's ablation.

    Shape:
        input (N, C, *spatial); output the same.
    """

    def __init__(
        self,
        channels: int | None = None,
        dims: int = 2,
        *,
        reduction: int = 16,
        kernel_size: int | Sequence[int] | None = None,
        pool_types: Sequence[str] = ("avg", "max"),
        spatial: bool = True,
        spatial_mode: str = "joint",
        gate_order: str = "channel_spatial",
    ) -> None:
        super().__init__(dims)
        if gate_order not in GATE_ORDERS:
            raise ValueError(f"unknown gate_order {gate_order!r}: expected one of {GATE_ORDERS}")
        self.gate_order = gate_order
        self.channel_gate = ChannelGate(channels, dims, reduction=reduction, pool_types=pool_types)
        self.spatial_gate = make_spatial_gate(dims, kernel_size, spatial_mode) if spatial else None

    @property
    def channels(self) -> int | None:
        return self.channel_gate.channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x is checked once here; the gates' unchecked paths (same maps, same hooks) do not check it again.
        self.check_input(x)
        channel, spatial = self.channel_gate, self.spatial_gate
        channel.build_lazy(x)
        if x.numel() == 0:
            return pass_empty(x)
        if spatial is None:
            return channel.forward_unchecked(x)
        if self.gate_order == "channel_spatial":
            if isinstance(spatial, SpatialGate):
                return self._fused_forward(x)
            return spatial.forward_unchecked(channel.forward_unchecked(x))
        if self.gate_order == "spatial_channel":
            return channel.forward_unchecked(spatial.forward_unchecked(x))
        # The gates' maps come in the parameters' dtype: under autocast, the output keeps x's, as the other orders'.
        return x * channel.attention_unchecked(x).to(x.dtype) * spatial.attention_unchecked(x).to(x.dtype)

    def _fused_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The whole block as one autograd Function that recomputes ``x * Mc`` in backward instead of
        keeping it (:func:`cbam3d.attention.functional.cbam`); both gates' map hooks see their maps. ``x`` is
        checked and the channel gate built (by :meth:`forward`)."""
        channel, spatial = self.channel_gate, self.spatial_gate
        out, channel_weights, spatial_weights = cbam(
            x, channel.pool_types, channel.mlp_parameters(), spatial.function_arguments()
        )
        channel.report_map(channel_map(channel_weights, self.dims))
        spatial.report_map(spatial_weights)
        return out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, gate_order={self.gate_order!r}"


register_attention("cbam", CBAM)
