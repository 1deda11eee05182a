"""BAM's scaling fused: ``x * (1 + sigmoid(Mc (+|*) Ms))``.

Backward keeps x and the two branch outputs only; the input-sized sigmoid is recomputed instead of kept
(eager code keeps it and the input-sized factor ``1 + sigmoid``).
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

from ..dims import spatial_axes
from .wiring import Computed, FusedFunction, Kept


class BAMScaleInputs(NamedTuple):
    """x (N, C, *spatial), the branches' logits Mc (N, C, 1, ...) and Ms (N, 1, *spatial), and how they
    combine: ``"sum"`` or ``"product"``."""

    x: Tensor
    channel_logits: Tensor
    spatial_logits: Tensor
    combine: str


class BAMScaleSaved(NamedTuple):
    """What backward needs besides x: the branches' logits."""

    channel_logits: Tensor
    spatial_logits: Tensor


class BAMScaleGradients(NamedTuple):
    """The gradients of x and of the branches' logits, each in its tensor's shape and dtype."""

    x: Tensor
    channel_logits: Tensor
    spatial_logits: Tensor


def mix_logits(channel: Tensor, spatial: Tensor, combine: str) -> Tensor:
    """BAM's branches combined: ``Mc * Ms`` for ``combine="product"``, else ``Mc + Ms``."""
    return channel * spatial if combine == "product" else channel + spatial


class BAMScaleFunction(FusedFunction):
    """``x * (1 + sigmoid(mix))`` (N, C, *spatial) with ``mix = Mc + Ms`` (``combine="sum"``) or ``Mc * Ms``
    (``"product"``), the branches broadcast to the input."""

    Inputs, Saved = BAMScaleInputs, BAMScaleSaved

    @staticmethod
    def compute(inputs: BAMScaleInputs) -> Computed:
        x, channel_logits, spatial_logits, combine = inputs
        factor = mix_logits(channel_logits.to(x.dtype), spatial_logits.to(x.dtype), combine).sigmoid_().add_(1)
        out = x * factor  # x first: the output takes x's memory layout
        return Computed(out, BAMScaleSaved(channel_logits, spatial_logits))

    @staticmethod
    def gradients(grad_out: Tensor, kept: Kept) -> BAMScaleGradients:
        # No maximum to take again when x was recomputed: the formula is smooth in x.
        x, (channel_logits, spatial_logits), combine = kept.x, kept.saved, kept.settings.combine
        channel, spatial = channel_logits.to(x.dtype), spatial_logits.to(x.dtype)
        gate = mix_logits(channel, spatial, combine).sigmoid_()
        grad_x = (grad_out * gate).add_(grad_out)
        # d out / d mix = grad_out * x * s (1 - s), in place in the recomputed buffer.
        grad_mix = gate.addcmul_(gate, gate, value=-1).mul_(grad_out).mul_(x)
        if combine == "product":
            grad_channel = (grad_mix * spatial).sum(dim=spatial_axes(x))
            grad_spatial = (grad_mix * channel).sum(dim=1, keepdim=True)
        else:
            grad_channel = grad_mix.sum(dim=spatial_axes(x))
            grad_spatial = grad_mix.sum(dim=1, keepdim=True)
        return BAMScaleGradients(
            x=grad_x,
            channel_logits=grad_channel.reshape(channel_logits.shape).to(channel_logits.dtype),
            spatial_logits=grad_spatial.to(spatial_logits.dtype),
        )


def bam_scale(x: Tensor, channel_logits: Tensor, spatial_logits: Tensor, combine: str) -> Tensor:
    """``x * (1 + sigmoid(Mc + Ms))`` or ``x * (1 + sigmoid(Mc * Ms))`` (see :class:`BAMScaleFunction`)."""
    return BAMScaleFunction.run(BAMScaleInputs(x, channel_logits, spatial_logits, combine))
