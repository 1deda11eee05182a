"""BAM: the Bottleneck Attention Module (Park et al., BMVC 2018), in 1D, 2D and 3D."""

from __future__ import annotations

import torch
from torch import nn

from .base import AttentionModule
from .dims import BATCH_NORM, CONV, channel_map, check_positive_int, hidden_channels, spatial_axes
from .functional import bam_scale, mix_logits
from .registry import register_attention

COMBINES: tuple[str, ...] = ("sum", "product")
CHANNEL_NORMS: tuple[str, ...] = ("batch", "layer", "none")
"""How BAM's channel branch normalizes its hidden layer: ``"batch"`` (BatchNorm1d over the batch, the
paper's; needs 2 or more samples in training), ``"layer"`` (LayerNorm over the hidden units, any batch
size) or ``"none"``."""


def _channel_norm(kind: str, hidden: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(hidden)
    return nn.LayerNorm(hidden) if kind == "layer" else nn.Identity()


class BAMChannelGate(AttentionModule):
    """BAM's channel branch: global average pool -> Linear(C, C//r) -> norm -> ReLU -> Linear(C//r, C).

    ``channel_norm`` picks the norm (see :data:`CHANNEL_NORMS`): the paper's BatchNorm1d (default), a
    LayerNorm, or none; the state_dict keys are ``mlp.0``, ``mlp.1`` (the norm, if it has parameters),
    ``mlp.3`` for all three.

    Shape:
        input (N, C, *spatial); :meth:`logits` gives (N, C, 1, ...) with ``dims`` ones.
    """

    has_channel_parameters = True
    map_kind = "channel"

    def __init__(
        self, channels: int | None = None, dims: int = 2, *, reduction: int = 16, channel_norm: str = "batch"
    ) -> None:
        super().__init__(dims)
        self.reduction = check_positive_int(reduction, "reduction")
        if channel_norm not in CHANNEL_NORMS:
            raise ValueError(f"unknown channel_norm {channel_norm!r}: expected one of {CHANNEL_NORMS}")
        self.channel_norm = channel_norm
        self.init_channels(channels)

    def build(self, channels: int) -> None:
        hidden = hidden_channels(channels, self.reduction)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden),
            _channel_norm(self.channel_norm, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels),
        )

    def channels_in_state_dict(self, state_dict: dict, prefix: str) -> int | None:
        weight = state_dict.get(prefix + "mlp.0.weight")
        return None if weight is None else weight.shape[1]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *spatial) -> Mc, (N, C, 1, ...), before any sigmoid."""
        self.prepare_input(x)
        return self.logits_unchecked(x)

    def logits_unchecked(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`logits` for an ``x`` already checked, with the gate built (for :class:`BAM`)."""
        if self.training and self.channel_norm == "batch" and x.shape[0] == 1:
            raise ValueError(
                "BAM's channel branch normalizes over the batch (channel_norm='batch', BatchNorm1d) and cannot "
                "train on a batch of 1; use channel_norm='layer' or 'none', or batches of 2 or more"
            )
        logits = channel_map(self.mlp(x.mean(dim=spatial_axes(x))), self.dims)
        self.report_logits(logits)
        return logits

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, reduction={self.reduction}, channel_norm={self.channel_norm!r}"


class BAMSpatialGate(AttentionModule):
    """BAM's spatial branch: 1x1 conv C -> C//r, BN, ReLU; ``num_dilated`` times a 3x3 conv with the
    given dilation (padding = dilation), BN, ReLU; then a 1x1 conv C//r -> 1. All convs have bias.

    Shape:
        input (N, C, *spatial); :meth:`logits` gives (N, 1, *spatial).
    """

    has_channel_parameters = True
    map_kind = "spatial"

    def __init__(
        self,
        channels: int | None = None,
        dims: int = 2,
        *,
        reduction: int = 16,
        dilation: int = 4,
        num_dilated: int = 2,
    ) -> None:
        super().__init__(dims)
        self.reduction = check_positive_int(reduction, "reduction")
        self.dilation = check_positive_int(dilation, "dilation")
        if isinstance(num_dilated, bool) or not isinstance(num_dilated, int) or num_dilated < 0:
            raise ValueError(f"num_dilated must be an int >= 0, got {num_dilated!r}")
        self.num_dilated = num_dilated
        self.init_channels(channels)

    def build(self, channels: int) -> None:
        hidden = hidden_channels(channels, self.reduction)
        conv, norm = CONV[self.dims], BATCH_NORM[self.dims]
        self.reduce = nn.Sequential(conv(channels, hidden, 1), norm(hidden), nn.ReLU(inplace=True))
        self.dilated = nn.Sequential(
            *(
                nn.Sequential(
                    conv(hidden, hidden, 3, padding=self.dilation, dilation=self.dilation),
                    norm(hidden),
                    nn.ReLU(inplace=True),
                )
                for _ in range(self.num_dilated)
            )
        )
        self.project = conv(hidden, 1, 1)

    def channels_in_state_dict(self, state_dict: dict, prefix: str) -> int | None:
        weight = state_dict.get(prefix + "reduce.0.weight")
        return None if weight is None else weight.shape[1]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *spatial) -> Ms, (N, 1, *spatial), before any sigmoid."""
        self.prepare_input(x)
        return self.logits_unchecked(x)

    def logits_unchecked(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`logits` for an ``x`` already checked, with the gate built (for :class:`BAM`)."""
        logits = self.project(self.dilated(self.reduce(x)))
        self.report_logits(logits)
        return logits

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, reduction={self.reduction}, dilation={self.dilation}, "
            f"num_dilated={self.num_dilated}"
        )


class BAM(AttentionModule):
    """Bottleneck Attention Module: ``x * (1 + sigmoid(Mc(x) + Ms(x)))``.

    Args:
        channels: C; None to take it from the first input.
        dims: 1, 2 or 3 for inputs (N, C, L), (N, C, H, W), (N, C, T, H, W).
        reduction: r, for both branches (width ``max(1, C // r)``).
        dilation: dilation (and padding) of the spatial branch's 3-wide convs.
        num_dilated: how many dilated convs the spatial branch has.
        combine: ``"sum"`` adds the branches as the paper does (eq. 1-2); ``"product"`` multiplies them,
            ``x * (1 + sigmoid(Mc * Ms))``, as the released code and its ImageNet checkpoint do.
        channel_norm: the channel branch's norm, ``"batch"`` (the paper's BatchNorm1d over the batch;
            training needs batches of 2 or more), ``"layer"`` or ``"none"`` (for batch size 1, common
            in 3D segmentation).

    Unlike the released code, which average-pools with an H x H window, the channel branch pools
    globally, so any H, W (and T) work.

    Shape:
        input (N, C, *spatial); output the same.
    """

    map_kind = "combined"

    def __init__(
        self,
        channels: int | None = None,
        dims: int = 2,
        *,
        reduction: int = 16,
        dilation: int = 4,
        num_dilated: int = 2,
        combine: str = "sum",
        channel_norm: str = "batch",
    ) -> None:
        super().__init__(dims)
        if combine not in COMBINES:
            raise ValueError(f"unknown combine {combine!r}: expected one of {COMBINES}")
        self.combine = combine
        self.channel_gate = BAMChannelGate(channels, dims, reduction=reduction, channel_norm=channel_norm)
        self.spatial_gate = BAMSpatialGate(
            channels, dims, reduction=reduction, dilation=dilation, num_dilated=num_dilated
        )

    @property
    def channels(self) -> int | None:
        return self.channel_gate.channels

    def _weights(self, channel: torch.Tensor, spatial: torch.Tensor) -> torch.Tensor:
        return 1 + torch.sigmoid(mix_logits(channel, spatial, self.combine))

    def _branch_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Mc, Ms) before any sigmoid, ``x`` checked once here for both branches (built lazily in turn)."""
        self.check_input(x)
        self.channel_gate.build_lazy(x)
        channel = self.channel_gate.logits_unchecked(x)
        self.spatial_gate.build_lazy(x)
        return channel, self.spatial_gate.logits_unchecked(x)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *spatial) -> the factor the input is multiplied by, ``1 + sigmoid(...)``, same shape."""
        weights = self._weights(*self._branch_logits(x))
        self.report_map(weights)
        return weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x * attention(x)`` as a fused Function that keeps x and the two branch outputs, not the
        input-sized factor; the factor is computed for map hooks only when one is registered."""
        channel, spatial = self._branch_logits(x)
        if self._map_hooks:
            self.report_map(self._weights(channel, spatial))
        return bam_scale(x, channel, spatial, self.combine)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, combine={self.combine!r}"


register_attention("bam", BAM, placement="stage")
