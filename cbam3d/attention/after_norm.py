"""Block attention right after a BatchNorm, keeping nothing new for backward.

In a residual block the attention (SE, CBAM) acts on the output of the branch's last BatchNorm. Its
backward needs that output, so eager code, and even cbam3d's fused Functions, keep one more input-sized
tensor per block than the network without attention. Yet the BatchNorm keeps its own input for its
backward anyway, and its output is an affine function of that input, per channel. So
:func:`attend_after_norm` computes ``attention(norm_output)`` as usual (the same numbers, bit for bit)
but saves the BatchNorm's input and two per-channel vectors (:func:`norm_affine`) instead of the output;
backward recomputes the output in one pass and then runs the attention's backward. The gates are the
fused Functions of :mod:`cbam3d.attention.functional` in their ``AfterNorm`` variant, which differs
only in what it keeps (:mod:`cbam3d.attention.functional.wiring`).

The BatchNorm itself runs unchanged, before, as a module: its running statistics are updated once, by it,
and its own backward computes the gradients of its input and parameters.

The recomputed output may differ from the forward's in the last bits (the BatchNorm's kernel and the
recomputation round differently), so the backward takes the max pools' maxima again from it instead
of using the saved ones. Gradients then agree with the unfused path to rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .cbam import CBAM
from .channel import ChannelGate
from .dims import BATCH_NORM, channel_map, spatial_axes, uses_batch_statistics
from .functional import NormAffine, cbam, channel_gate
from .spatial import SpatialGate

_BATCH_NORMS = tuple(BATCH_NORM.values())


def norm_affine(norm: nn.Module, norm_input: Tensor) -> tuple[Tensor, Tensor]:
    """(scale, shift), each (C,) in at least float32, with ``norm(norm_input) = norm_input * scale + shift``
    per channel for this call (batch statistics in training, running ones in eval); not differentiable."""
    # Detached rather than under torch.no_grad(): a grad-mode switch inside forward becomes a higher-order
    # op in torch.export graphs, which their verifier then refuses on save and load.
    norm_input = norm_input.detach()
    if uses_batch_statistics(norm):
        axes = [0, *spatial_axes(norm_input)]
        # statistics of a bf16 / fp16 input in float32, as the BatchNorm kernels accumulate them
        wide = norm_input.to(torch.promote_types(norm_input.dtype, torch.float32))
        variance, mean = torch.var_mean(wide, dim=axes, correction=0)
    else:
        variance, mean = norm.running_var, norm.running_mean
    scale = torch.rsqrt(variance + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight.detach()
    shift = -mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias.detach()
    return scale, shift


def _fused_gate(attention: nn.Module) -> ChannelGate | CBAM | None:
    """The module :func:`attend_after_norm` fuses: a channel gate (SE), a CBAM block that runs as one
    Function (channel then joint or framewise spatial gate) or its channel gate alone; else None."""
    if isinstance(attention, ChannelGate):
        return attention
    if isinstance(attention, CBAM) and attention.gate_order == "channel_spatial":
        if attention.spatial_gate is None:
            return attention.channel_gate
        if isinstance(attention.spatial_gate, SpatialGate):
            return attention
    return None


def attend_after_norm(attention: nn.Module, norm: nn.Module, norm_input: Tensor, norm_output: Tensor) -> Tensor:
    """``attention(norm_output)`` for ``norm_output = norm(norm_input)``, (N, C, *spatial) -> the same.

    When ``attention`` is a cbam3d SE / channel gate or CBAM block (default gate order, joint or framewise
    spatial gate) and ``norm`` a ``BatchNorm1d/2d/3d``, backward recomputes ``norm_output`` from
    ``norm_input`` (which the BatchNorm keeps for its own backward) instead of keeping it: the attention
    then adds only maps of one channel to the memory kept for backward. Outputs are those of
    ``attention(norm_output)``; gradients agree to rounding; map hooks see the same maps. Anything else
    (other modules, SyncBatchNorm, no autograd recording) runs as plain ``attention(norm_output)``.
    ``norm_input`` must not be modified in place before backward (autograd raises an error if it is).
    """
    gate = _fused_gate(attention)
    recording = torch.is_grad_enabled() and norm_output.requires_grad
    if gate is None or type(norm) not in _BATCH_NORMS or not recording:
        return attention(norm_output)
    attention.check_input(norm_output)
    channel = gate if isinstance(gate, ChannelGate) else gate.channel_gate
    channel.build_lazy(norm_output)
    affine = NormAffine(norm_input, *norm_affine(norm, norm_input))
    if isinstance(gate, ChannelGate):
        out, weights = channel_gate(norm_output, channel.pool_types, channel.mlp_parameters(), norm=affine)
        channel.report_map(channel_map(weights, channel.dims))
        return out
    spatial = gate.spatial_gate
    out, channel_weights, spatial_weights = cbam(
        norm_output, channel.pool_types, channel.mlp_parameters(), spatial.function_arguments(), norm=affine
    )
    channel.report_map(channel_map(channel_weights, channel.dims))
    spatial.report_map(spatial_weights)
    return out
