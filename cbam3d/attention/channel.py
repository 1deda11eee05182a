"""Channel attention: CBAM's channel gate and the Squeeze-and-Excitation block.

Both weight each channel by ``sigmoid(MLP(pooled))``, the MLP being ``Linear(C, C//r)`` -> ReLU ->
``Linear(C//r, C)`` with biases, so SE is the channel gate with average pooling alone. The layers are
``nn.Linear`` in every ``dims``, which makes the state_dict identical for 1D, 2D and 3D.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import AttentionModule
from .dims import channel_map, check_positive_int, hidden_channels
from .functional import MLPParameters, channel_gate, channel_weights
from .pooling import check_pool_types, global_pool
from .registry import register_attention


class ChannelGate(AttentionModule):
    """CBAM's channel attention (Woo et al., 2018, eq. 2), in any number of dimensions.

    ``Mc(x) = sigmoid(sum_p MLP(pool_p(x)))`` over the pool types in the order given, and the output is
    ``x * Mc(x)``. :meth:`forward` and :meth:`attention` run as one fused autograd Function each
    (:mod:`cbam3d.attention.functional`) that keeps only ``x`` for backward; :meth:`logits` is plain eager code.

    Args:
        channels: C; None to take it from the first input.
        dims: 1, 2 or 3 for inputs (N, C, L), (N, C, H, W), (N, C, T, H, W).
        reduction: r, the MLP's bottleneck is ``max(1, C // r)`` wide.
        pool_types: any of ``"avg"``, ``"max"``, ``"lp"``, ``"lse"`` (see :func:`cbam3d.attention.pooling.global_pool`).

    Shape:
        input (N, C, *spatial); output the same; :meth:`attention` gives (N, C, 1, ...) with ``dims`` ones.
    """

    has_channel_parameters = True
    map_kind = "channel"

    def __init__(
        self,
        channels: int | None = None,
        dims: int = 2,
        *,
        reduction: int = 16,
        pool_types: Sequence[str] = ("avg", "max"),
    ) -> None:
        super().__init__(dims)
        self.reduction = check_positive_int(reduction, "reduction")
        self.pool_types = check_pool_types(pool_types)
        self.init_channels(channels)

    def build(self, channels: int) -> None:
        hidden = hidden_channels(channels, self.reduction)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))

    def channels_in_state_dict(self, state_dict: dict, prefix: str) -> int | None:
        weight = state_dict.get(prefix + "mlp.0.weight")
        return None if weight is None else weight.shape[1]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *spatial) -> (N, C): the MLP outputs summed over pool types, before the sigmoid.

        The pooled vectors of all pool types go through the MLP as one batch.
        """
        pooled = torch.cat([global_pool(x, pool_type) for pool_type in self.pool_types])
        return self.mlp(pooled).unflatten(0, (len(self.pool_types), x.shape[0])).sum(dim=0)

    def mlp_parameters(self) -> MLPParameters:
        """(w1, b1, w2, b2) of the MLP, as :mod:`cbam3d.attention.functional` takes them."""
        first, last = self.mlp[0], self.mlp[2]
        return MLPParameters(first.weight, first.bias, last.weight, last.bias)

    def attention_unchecked(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *spatial) -> channel weights (N, C, 1, ...) in (0, 1)."""
        weights = channel_map(channel_weights(x, self.pool_types, self.mlp_parameters()), self.dims)
        self.report_map(weights)
        return weights

    def forward_unchecked(self, x: torch.Tensor) -> torch.Tensor:
        out, weights = channel_gate(x, self.pool_types, self.mlp_parameters())
        self.report_map(channel_map(weights, self.dims))
        return out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, reduction={self.reduction}, pool_types={self.pool_types}"


class SE(ChannelGate):
    """Squeeze-and-Excitation (Hu et al., 2018): global average pool -> FC(C, C//r) -> ReLU ->
    FC(C//r, C) -> sigmoid -> scale, with biases, in any number of dimensions.

    Args:
        channels: C; None to take it from the first input.
        dims: 1, 2 or 3 for inputs (N, C, L), (N, C, H, W), (N, C, T, H, W).
        reduction: r (the bottleneck is ``max(1, C // r)`` wide).

    Shape:
        input (N, C, *spatial); output the same.
    """

    def __init__(self, channels: int | None = None, dims: int = 2, *, reduction: int = 16) -> None:
        super().__init__(channels, dims, reduction=reduction, pool_types=("avg",))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, dims={self.dims}, reduction={self.reduction}"


register_attention("se", SE)
