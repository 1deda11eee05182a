"""The whole CBAM block fused, channel gate then spatial gate: ``y = x * Mc(x)``, output ``y * Ms(y)``.

Saves x but not y: backward recomputes ``x * Mc``. With the channel maxima and the conv output that is
``1 + 2 / C`` times the input, where eager code keeps ``2 + 2 / C`` (x and y) and an index. The backward
builds ``grad_x`` in two input-sized passes after the spatial gate's (one more for each pool type other
than avg), reusing the spatial gate's free buffer for the max pool's mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from torch import Tensor

from .channel import (
    ChannelSaved,
    MLPParameters,
    channel_weights_backward,
    channel_weights_forward,
)
from .ops import channel_map_like, sum_over_positions
from .spatial import (
    SpatialGateParameters,
    SpatialParameterGradients,
    SpatialSaved,
    spatial_gate_backward,
    spatial_gate_forward,
)
from .wiring import Computed, FusedFunction, Kept, NormAffine


class CBAMInputs(NamedTuple):
    """x (N, C, *spatial), the channel gate's pool types (a tuple) and MLP, the spatial gate's parameters."""

    x: Tensor
    pool_types: tuple[str, ...]
    mlp: MLPParameters
    spatial: SpatialGateParameters


class CBAMGradients(NamedTuple):
    """The gradients of x (N, C, *spatial) and of both gates' parameters."""

    x: Tensor
    mlp: MLPParameters
    spatial: SpatialParameterGradients


class CBAMSaved(NamedTuple):
    """What the block's backward needs besides x: both gates' (all (N, 1, *spatial)-sized or smaller)."""

    channel: ChannelSaved
    spatial: SpatialSaved


class CBAMFunction(FusedFunction):
    """The CBAM block: ``y * Ms(y)`` for ``y = x * Mc(x)`` (N, C, *spatial), and Mc (N, C) and Ms
    (N, 1, *spatial), non-differentiable, for map hooks."""

    Inputs, Saved = CBAMInputs, CBAMSaved

    @staticmethod
    def compute(inputs: CBAMInputs) -> Computed:
        x = inputs.x
        channel_weights, channel_saved = channel_weights_forward(x, inputs.pool_types, inputs.mlp)
        out, spatial_weights, spatial_saved = spatial_gate_forward(
            x, channel_map_like(channel_weights, x), inputs.spatial
        )
        return Computed(out, CBAMSaved(channel_saved, spatial_saved), maps=(channel_weights, spatial_weights))

    @staticmethod
    def gradients(grad_out: Tensor, kept: Kept) -> CBAMGradients:
        x, saved, settings = kept.x, kept.saved, kept.settings
        weights_map = channel_map_like(saved.channel.weights, x)
        grad_y, grad_spatial, free = spatial_gate_backward(
            grad_out, x, weights_map, saved.spatial, settings.spatial, recomputed=kept.recomputed
        )
        grad_channel_weights = sum_over_positions(grad_y, x)
        grad_x = grad_y.mul_(weights_map)
        channel = channel_weights_backward(
            grad_channel_weights,
            x,
            saved.channel,
            settings.pool_types,
            recomputed=kept.recomputed,
            grad_x=grad_x,
            scratch=free,
        )
        return CBAMGradients(x=channel.x, mlp=channel.mlp, spatial=grad_spatial)


class CBAMAfterNormFunction(CBAMFunction):
    """:class:`CBAMFunction` on a BatchNorm's output, saving the BatchNorm's input and affine
    (:class:`NormAffine`) instead of it."""

    recomputes_input = True


def cbam(
    x: Tensor,
    pool_types: Sequence[str],
    mlp: MLPParameters,
    spatial: SpatialGateParameters,
    *,
    norm: NormAffine | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(y * Ms(y), Mc, Ms)`` for ``y = x * Mc(x)`` (see :class:`CBAMFunction`): (N, C, *spatial), (N, C),
    (N, 1, *spatial). ``norm``: the BatchNorm ``x`` came out of, for backward to recompute x from its
    input instead of keeping x (:class:`CBAMAfterNormFunction`)."""
    function = CBAMFunction if norm is None else CBAMAfterNormFunction
    return function.run(CBAMInputs(x, tuple(pool_types), mlp, spatial), norm)
