"""CBAM's spatial gate fused: y -> [max_c y; mean_c y] -> conv -> BatchNorm -> sigmoid -> ``y * Ms``.

``Ms(y) = sigmoid(BN(conv([max_c y; mean_c y])))``, (N, 1, *spatial), with a single-channel BatchNorm.
Backward keeps the input, the channel-wise maxima and the conv output (both (N, 1, *spatial)): ``1 + 2 / C``
times the input. The channel-wise max keeps no index: its gradient is recomputed from the saved maxima
(ties split evenly); the channel mean is recomputed too. The gate's forward and backward also run on
``y = x * Mc`` recomputed from x inside the whole CBAM block (:mod:`.cbam_block`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..pooling import channel_max_mean
from .ops import equal_as_float
from .wiring import Computed, FusedFunction, Kept

CONV_FUNCTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class SpatialGateParameters(NamedTuple):
    """The spatial gate's conv weight (1, 2, *kernel) (odd kernel, stride 1, 'same' padding, no bias), its
    single-channel BatchNorm's weight and bias (1,), and the BatchNorm settings of this call as
    ``nn.BatchNorm.forward`` passes them to ``F.batch_norm``: running_mean, running_var (1,) or None;
    bn_training (use batch statistics); momentum (the running statistics' update factor, used when
    bn_training and they are given); eps."""

    conv_weight: Tensor
    bn_weight: Tensor
    bn_bias: Tensor
    running_mean: Tensor | None
    running_var: Tensor | None
    bn_training: bool
    momentum: float
    eps: float


class SpatialParameterGradients(NamedTuple):
    """The gradients of the spatial gate's conv weight (1, 2, *kernel) and BatchNorm weight and bias (1,)."""

    conv_weight: Tensor
    bn_weight: Tensor
    bn_bias: Tensor


class SpatialGateInputs(NamedTuple):
    """x (N, C, *spatial) and the gate's parameters."""

    x: Tensor
    spatial: SpatialGateParameters


class SpatialGateGradients(NamedTuple):
    """The gradients of x (N, C, *spatial) and of the gate's parameters."""

    x: Tensor
    spatial: SpatialParameterGradients


class SpatialSaved(NamedTuple):
    """What the spatial gate's backward needs besides its input: the channel-wise maxima and the conv
    output (N, 1, *spatial), the parameters, and the statistics the BatchNorm normalized with (1,)."""

    channel_max: Tensor
    conv_out: Tensor
    conv_weight: Tensor
    bn_weight: Tensor
    bn_bias: Tensor
    mean: Tensor
    variance: Tensor


def _scale(x: Tensor, weights_map: Tensor | None) -> Tensor:
    return x if weights_map is None else x * weights_map


def _same_padding(weight: Tensor) -> list[int]:
    """Padding that keeps the size for a stride-1 convolution with this (odd) kernel."""
    return [k // 2 for k in weight.shape[2:]]


def _conv_input_grad(grad_out: Tensor, weight: Tensor) -> Tensor:
    """Gradient w.r.t. the input of a stride-1, 'same'-padded convolution with odd kernel: the
    correlation with the flipped, transposed kernel (on CPU several times faster than
    ``convolution_backward``'s input path)."""
    spatial = tuple(range(2, weight.ndim))
    return CONV_FUNCTIONS[len(spatial)](grad_out, weight.flip(spatial).transpose(0, 1), padding=_same_padding(weight))


def _conv_weight_grad(grad_out: Tensor, inputs: Tensor, weight: Tensor) -> Tensor:
    dims = weight.ndim - 2
    return torch.ops.aten.convolution_backward(
        grad_out,
        inputs,
        weight,
        None,
        [1] * dims,
        _same_padding(weight),
        [1] * dims,
        False,
        [0] * dims,
        1,
        [False, True, False],
    )[1]


def spatial_gate_forward(
    x: Tensor, weights_map: Tensor | None, spatial: SpatialGateParameters
) -> tuple[Tensor, Tensor, SpatialSaved]:
    """``(y * Ms(y), Ms, saved)`` for ``y = x * weights_map`` (``y = x`` when the map is None): the output
    (N, C, *spatial), Ms (N, 1, *spatial) and what :func:`spatial_gate_backward` needs besides x and the map."""
    conv_weight, bn_weight, bn_bias, running_mean, running_var, bn_training, momentum, eps = spatial
    y = _scale(x, weights_map)
    descriptor = channel_max_mean(y).to(conv_weight.dtype)
    conv_out = CONV_FUNCTIONS[x.ndim - 2](descriptor, conv_weight, padding=_same_padding(conv_weight))
    if bn_training:
        variance, mean = torch.var_mean(conv_out, dim=[0, *range(2, conv_out.ndim)], correction=0)  # (1,)
    else:
        variance, mean = running_var.clone(), running_mean.clone()
    spatial_weights = torch.sigmoid(
        F.batch_norm(conv_out, running_mean, running_var, bn_weight, bn_bias, bn_training, momentum, eps)
    )
    out = y.mul_(spatial_weights.to(y.dtype)) if weights_map is not None else x * spatial_weights.to(x.dtype)
    channel_max = descriptor[:, :1].clone()  # the channel mean is recomputed in backward
    return out, spatial_weights, SpatialSaved(channel_max, conv_out, conv_weight, bn_weight, bn_bias, mean, variance)


def spatial_gate_backward(
    grad_out: Tensor,
    x: Tensor,
    weights_map: Tensor | None,
    saved: SpatialSaved,
    settings: SpatialGateParameters,
    *,
    recomputed: bool,
) -> tuple[Tensor, SpatialParameterGradients, Tensor]:
    """The gradients of y (N, C, *spatial) and of the gate's parameters, recomputing ``y = x * weights_map``,
    then a free input-sized buffer for the caller to reuse. ``settings``: the forward's BatchNorm
    settings (eps, bn_training); ``recomputed``: see :class:`Kept` (the channel-wise maxima are taken again)."""
    channel_max, conv_out, conv_weight, bn_weight, bn_bias, mean, variance = saved
    eps, bn_training = settings.eps, settings.bn_training
    # The small (N, 1, *spatial) chain, in few ops (each costs a thread hand-off on a busy CPU): Ms from
    # the saved conv output and the statistics the forward normalized it with, then BN and conv backward.
    spatial_weights = torch.sigmoid(F.batch_norm(conv_out, mean, variance, bn_weight, bn_bias, False, 0.0, eps))
    # y and then grad_out * y are recomputed into one buffer (when y is not x itself), which ends as grad_y.
    y = _scale(x, weights_map)
    if recomputed:
        channel_max = y.amax(dim=1, keepdim=True).to(channel_max.dtype)
    descriptor = torch.cat([channel_max, y.mean(dim=1, keepdim=True).to(channel_max.dtype)], dim=1)
    is_max = equal_as_float(y, channel_max.to(y.dtype))
    buffer = y.mul_(grad_out) if weights_map is not None else grad_out * y
    grad_logits = torch.ops.aten.sigmoid_backward(buffer.sum(dim=1, keepdim=True).to(conv_out.dtype), spatial_weights)
    # (running mean, running var, batch mean, batch 1/std); eval mode reads the first two, and gets the
    # same values in the last two for implementations that read those.
    inv_std = torch.rsqrt(variance + eps)
    statistics = (None, None, mean, inv_std) if bn_training else (mean, variance, mean, inv_std)
    grad_conv_out, grad_bn_weight, grad_bn_bias = torch.ops.aten.native_batch_norm_backward(
        grad_logits, conv_out, bn_weight, *statistics, bn_training, eps, [True, True, True]
    )
    grad_conv_weight = _conv_weight_grad(grad_conv_out, descriptor, conv_weight)
    grad_descriptor = _conv_input_grad(grad_conv_out, conv_weight).to(x.dtype)
    # The input-sized part: d out / d y = Ms, plus the channel mean's and the channel max's shares.
    grad_max, grad_mean = grad_descriptor[:, :1], grad_descriptor[:, 1:]
    grad_y = torch.addcmul(grad_mean / x.shape[1], grad_out, spatial_weights.to(x.dtype), out=buffer)
    grad_y.addcmul_(is_max, grad_max / is_max.sum(dim=1, keepdim=True))
    return grad_y, SpatialParameterGradients(grad_conv_weight, grad_bn_weight, grad_bn_bias), is_max


class SpatialGateFunction(FusedFunction):
    """CBAM's spatial gate: ``x * Ms(x)`` (N, C, *spatial), and Ms (N, 1, *spatial), non-differentiable,
    for map hooks. Saves x, the channel-wise maxima and the conv output."""

    Inputs, Saved = SpatialGateInputs, SpatialSaved

    @staticmethod
    def compute(inputs: SpatialGateInputs) -> Computed:
        out, spatial_weights, saved = spatial_gate_forward(inputs.x, None, inputs.spatial)
        return Computed(out, saved, maps=(spatial_weights,))

    @staticmethod
    def gradients(grad_out: Tensor, kept: Kept) -> SpatialGateGradients:
        grad_x, grad_spatial, _free = spatial_gate_backward(
            grad_out, kept.x, None, kept.saved, kept.settings.spatial, recomputed=kept.recomputed
        )
        return SpatialGateGradients(x=grad_x, spatial=grad_spatial)


def spatial_gate(x: Tensor, spatial: SpatialGateParameters) -> tuple[Tensor, Tensor]:
    """``(x * Ms(x), Ms)`` (see :class:`SpatialGateFunction`) for the gate's :class:`SpatialGateParameters`."""
    return SpatialGateFunction.run(SpatialGateInputs(x, spatial))
