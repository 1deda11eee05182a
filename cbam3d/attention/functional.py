"""Fused, memory-lean autograd Functions behind SE, CBAM and BAM.

Attention gates are cheap in FLOPs but, written with eager PyTorch ops, keep several input-sized
tensors alive for backward and make many passes over memory. The Functions here compute the same
numbers with explicit backward formulas that:

- keep only the gate's input (plus maps the size of one channel or one position) for backward, and
  recompute input-sized intermediates such as ``x * Mc`` in backward instead of storing them;
- store no input-sized index tensors: max-pool gradients are recomputed from the saved maxima;
- reduce over axes of strided views, so ``channels_last`` / ``channels_last_3d`` inputs are never copied;
- merge the contributions to ``grad_x`` in one or two passes instead of one per op.

Max-pool ties (the rule of both the global max of the channel gate and the channel-wise max of the
spatial gate): the gradient of the maximum is split evenly among the elements that attain it. This is
``torch.amax``'s rule, the minimum-norm subgradient, and for two tied elements exactly what central
finite differences measure, so ``gradcheck`` holds at such ties. (``max_pool``/``torch.max`` would give
it all to one element.)

The small parts (the channel MLP, the spatial conv and its BatchNorm) are differentiated explicitly
too, so every Function is one node of the autograd graph, and ``torch.compile`` traces it (forward and
backward) without graph breaks. The backward formulas are not themselves differentiable: a second
derivative (e.g. a gradient penalty) raises an error instead of returning a wrong value. Autocast is
turned off inside: the large products run in the input's dtype, the small parts in the parameters' dtype.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .dims import channel_map, spatial_axes
from .pooling import channel_max_mean, global_pool

CONV_FUNCTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class MLPParameters(NamedTuple):
    """The channel gate's MLP, ``Linear(w1, b1) -> ReLU -> Linear(w2, b2)``."""

    w1: torch.Tensor
    b1: torch.Tensor
    w2: torch.Tensor
    b2: torch.Tensor


class SpatialGateParameters(NamedTuple):
    """The spatial gate's conv weight (1, 2, *kernel) (odd kernel, stride 1, 'same' padding, no bias), its
    single-channel BatchNorm's weight and bias (1,), and the BatchNorm settings of this call as
    ``nn.BatchNorm.forward`` passes them to ``F.batch_norm``: running_mean, running_var (1,) or None;
    bn_training (use batch statistics); momentum (the running statistics' update factor, used when
    bn_training and they are given); eps."""

    conv_weight: torch.Tensor
    bn_weight: torch.Tensor
    bn_bias: torch.Tensor
    running_mean: torch.Tensor | None
    running_var: torch.Tensor | None
    bn_training: bool
    momentum: float
    eps: float


class _ChannelSaved(NamedTuple):
    """What the channel gate's backward needs besides x, all (P, N, C)-sized or smaller."""

    pooled: torch.Tensor
    hidden: torch.Tensor
    weights: torch.Tensor
    w1: torch.Tensor
    w2: torch.Tensor


class _SpatialSaved(NamedTuple):
    """What the spatial gate's backward needs besides x and the channel map, all (N, 1, *spatial) or smaller."""

    channel_max: torch.Tensor
    conv_out: torch.Tensor
    conv_weight: torch.Tensor
    bn_weight: torch.Tensor
    bn_bias: torch.Tensor
    mean: torch.Tensor
    variance: torch.Tensor


def _channel_map_like(weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(N, C) (or (P, N, C)) weights as a map broadcastable to ``x``, in its dtype."""
    return channel_map(weights.to(x.dtype), x.ndim - 2)


def _autocast_off(device_type: str) -> contextlib.AbstractContextManager:
    """Autocast disabled inside, on devices that have autocast (the ``meta`` device has none)."""
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def _equal_as_float(x: torch.Tensor, maxima: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``x == maxima`` as 0/1 in x's dtype, written directly (into ``out``, a free input-sized buffer, if
    given): a bool mask would be converted for the arithmetic (summing one even widens it to int64
    first), costing more than the comparison."""
    return torch.eq(x, maxima, out=torch.empty_like(x) if out is None else out)


def _sum_over_positions(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(a * b).sum(positions)``: (N, C, *spatial) x2 -> (N, C); a batched dot product when both are
    plainly contiguous, with no input-sized temporary."""
    if a.is_contiguous() and b.is_contiguous():
        n, c = a.shape[:2]
        return torch.bmm(a.reshape(n * c, 1, -1), b.reshape(n * c, -1, 1)).reshape(n, c)
    return torch.linalg.vecdot(a.flatten(2), b.flatten(2))


# --- the channel gate: pool -> MLP -> sigmoid (-> scale) --------------------------------------------
def _input_gradient(
    x: torch.Tensor,
    pooled: torch.Tensor,
    grad_pooled: torch.Tensor,
    pool_types: Sequence[str],
    grad_x: torch.Tensor | None,
    scratch: torch.Tensor | None = None,
) -> torch.Tensor:
    """``grad_x`` of the channel gate: the gradient of every global pool from the gradient of its (N, C)
    output, added in place to ``grad_x`` (the product's share ``grad_y * Mc``, a tensor of our own) or to
    zeros when it is None; ``scratch`` is a free input-sized buffer for the max pool's mask."""
    grads = {pool_type: _channel_map_like(grad, x) for pool_type, grad in zip(pool_types, grad_pooled)}
    results = {pool_type: _channel_map_like(value, x) for pool_type, value in zip(pool_types, pooled)}
    if grad_x is None:
        grad_x = torch.zeros_like(x)
    if "avg" in grads:
        grad_x.add_(grads["avg"] / x[0, 0].numel())  # on CPU faster than one addcmul with a broadcast addend
    if "max" in grads:
        is_max = _equal_as_float(x, results["max"], out=scratch)
        grad_x.addcmul_(is_max, grads["max"] / is_max.sum(dim=spatial_axes(x), keepdim=True))
    if "lp" in grads:
        norm = results["lp"]
        grad_x.addcmul_(x, torch.where(norm > 0, grads["lp"] / norm, 0.0))
    if "lse" in grads:
        grad_x.addcmul_(torch.exp(x - results["lse"]), grads["lse"])
    return grad_x


def _channel_weights_forward(
    x: torch.Tensor, pool_types: Sequence[str], mlp: MLPParameters
) -> tuple[torch.Tensor, _ChannelSaved]:
    """Mc as (N, C) in the parameters' dtype, and the (N, C)-sized tensors its backward needs."""
    w1, b1, w2, b2 = mlp
    with _autocast_off(x.device.type):
        pooled = torch.stack([global_pool(x, pool_type) for pool_type in pool_types])
        hidden = torch.relu(F.linear(pooled.to(w1.dtype), w1, b1))
        weights = torch.sigmoid(F.linear(hidden, w2, b2).sum(dim=0))
    return weights, _ChannelSaved(pooled, hidden, weights, w1, w2)


def _channel_weights_backward(
    x: torch.Tensor,
    saved: _ChannelSaved,
    pool_types: Sequence[str],
    grad_weights: torch.Tensor,
    grad_x: torch.Tensor | None,
    scratch: torch.Tensor | None = None,
) -> tuple[torch.Tensor, ...]:
    """Gradients of (x, w1, b1, w2, b2) from the gradient of Mc (N, C); ``grad_x`` is the share of the
    product ``x * Mc`` when there is one (``grad_y * Mc``), to which the pools' shares are added in place."""
    pooled, hidden, weights, w1, w2 = saved.pooled, saved.hidden, saved.weights, saved.w1, saved.w2
    grad_logits = torch.ops.aten.sigmoid_backward(grad_weights.to(weights.dtype), weights)
    grad_w2 = grad_logits.t() @ hidden.sum(dim=0)
    grad_b2 = grad_logits.sum(dim=0) * len(pool_types)
    grad_hidden = (grad_logits @ w2).unsqueeze(0) * (hidden > 0)
    grad_w1 = grad_hidden.flatten(0, 1).t() @ pooled.flatten(0, 1).to(w1.dtype)
    grad_b1 = grad_hidden.sum(dim=(0, 1))
    grad_pooled = (grad_hidden @ w1).to(x.dtype)
    grad_x = _input_gradient(x, pooled, grad_pooled, pool_types, grad_x, scratch)
    return grad_x, grad_w1, grad_b1, grad_w2, grad_b2


class ChannelWeightsFunction(torch.autograd.Function):
    """``Mc(x) = sigmoid(sum_p MLP(pool_p(x)))`` as (N, C), MLP = Linear(w1, b1) -> ReLU -> Linear(w2, b2).

    Saves x (no copy) and (P, N, C)-sized tensors; ``grad_x`` is built in one pass per pool type.
    """

    @staticmethod
    def forward(ctx, x, pool_types, w1, b1, w2, b2):
        weights, saved = _channel_weights_forward(x, pool_types, MLPParameters(w1, b1, w2, b2))
        ctx.pool_types = pool_types
        ctx.save_for_backward(x, *saved)
        return weights

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_weights):
        x, *rest = ctx.saved_tensors
        saved = _ChannelSaved(*rest)
        grad_x, *grad_params = _channel_weights_backward(x, saved, ctx.pool_types, grad_weights, None)
        return grad_x, None, *grad_params


def channel_gate_forward(
    x: torch.Tensor, pool_types: Sequence[str], mlp: MLPParameters
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
    """``(x * Mc, Mc as (N, C), saved)``: ``saved`` is what :func:`channel_gate_backward` needs besides x,
    all (P, N, C)-sized or smaller."""
    weights, saved = _channel_weights_forward(x, pool_types, mlp)
    return x * _channel_map_like(weights, x), weights, tuple(saved)


def channel_gate_backward(
    x: torch.Tensor,
    saved: Sequence[torch.Tensor],
    pool_types: Sequence[str],
    grad_out: torch.Tensor,
    *,
    recomputed: bool = False,
) -> tuple[torch.Tensor, ...]:
    """Gradients of (x, w1, b1, w2, b2) of ``x * Mc(x)`` from ``grad_out`` and the forward's ``saved``.

    ``recomputed``: x was recomputed for backward and may differ from the forward's in the last bits, so
    the global maxima are taken again from it (a saved maximum that no element of x attains anymore would
    give the max pool no gradient)."""
    saved = _ChannelSaved(*saved)
    if recomputed:
        saved = saved._replace(pooled=_pooled_again(x, saved.pooled, pool_types))
    weights_map = _channel_map_like(saved.weights, x)
    grad_weights = _sum_over_positions(grad_out, x)
    grad_x = grad_out * weights_map
    return _channel_weights_backward(x, saved, pool_types, grad_weights, grad_x)


def _pooled_again(x: torch.Tensor, pooled: torch.Tensor, pool_types: Sequence[str]) -> torch.Tensor:
    """The saved (P, N, C) pools with the max pool's row taken again from ``x``."""
    if "max" not in pool_types:
        return pooled
    pooled = pooled.clone()
    pooled[pool_types.index("max")] = global_pool(x, "max").to(pooled.dtype)
    return pooled


class ChannelGateFunction(torch.autograd.Function):
    """``x * Mc(x)`` (see :class:`ChannelWeightsFunction`), and Mc (N, C) as a second, non-differentiable
    output for map hooks. Saves x alone at input size; the backward is a batched dot product and one
    pass that adds ``grad * Mc`` and the average pool's gradient (one more per other pool type)."""

    @staticmethod
    def forward(ctx, x, pool_types, w1, b1, w2, b2):
        out, weights, saved = channel_gate_forward(x, pool_types, MLPParameters(w1, b1, w2, b2))
        ctx.pool_types = pool_types
        ctx.save_for_backward(x, *saved)
        ctx.mark_non_differentiable(weights)
        return out, weights

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, _grad_weights):
        x, *saved = ctx.saved_tensors
        grad_x, *grad_params = channel_gate_backward(x, saved, ctx.pool_types, grad_out)
        return grad_x, None, *grad_params


def channel_gate(x: torch.Tensor, pool_types: Sequence[str], mlp: MLPParameters) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, *spatial) -> (``x * Mc``, Mc as (N, C)); Mc is not differentiable (it is for map hooks).

    ``mlp`` is an :class:`MLPParameters`.
    """
    return ChannelGateFunction.apply(x, tuple(pool_types), *mlp)


def channel_weights(x: torch.Tensor, pool_types: Sequence[str], mlp: MLPParameters) -> torch.Tensor:
    """(N, C, *spatial) -> Mc, (N, C), differentiable; ``mlp`` as for :func:`channel_gate`."""
    return ChannelWeightsFunction.apply(x, tuple(pool_types), *mlp)


# --- the spatial gate: x * Mc -> [max_c; mean_c] -> conv -> BN -> sigmoid -> scale -----------------------
def _scale(x: torch.Tensor, weights_map: torch.Tensor | None) -> torch.Tensor:
    return x if weights_map is None else x * weights_map


def _same_padding(weight: torch.Tensor) -> list[int]:
    """Padding that keeps the size for a stride-1 convolution with this (odd) kernel."""
    return [k // 2 for k in weight.shape[2:]]


def _conv_input_grad(grad_out: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Gradient w.r.t. the input of a stride-1, 'same'-padded convolution with odd kernel: the
    correlation with the flipped, transposed kernel (on CPU several times faster than
    ``convolution_backward``'s input path)."""
    spatial = tuple(range(2, weight.ndim))
    return CONV_FUNCTIONS[len(spatial)](grad_out, weight.flip(spatial).transpose(0, 1), padding=_same_padding(weight))


def _conv_weight_grad(grad_out: torch.Tensor, inputs: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
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


def _spatial_gate_forward(
    x: torch.Tensor, weights_map: torch.Tensor | None, spatial: SpatialGateParameters
) -> tuple[torch.Tensor, torch.Tensor, _SpatialSaved]:
    """``(y * Ms(y), Ms, saved)`` for ``y = x * weights_map`` (``y = x`` when the map is None); ``saved``
    is what :func:`_spatial_gate_backward` needs besides x and the map, all (N, 1, *spatial) or smaller."""
    conv_weight, bn_weight, bn_bias, running_mean, running_var, bn_training, momentum, eps = spatial
    with _autocast_off(x.device.type):
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
    return out, spatial_weights, _SpatialSaved(channel_max, conv_out, conv_weight, bn_weight, bn_bias, mean, variance)


def _spatial_gate_backward(grad_out, x, weights_map, saved: _SpatialSaved, eps, bn_training, recomputed=False):
    """Gradients of (y, conv weight, BN weight, BN bias), recomputing ``y = x * weights_map``; then a
    free input-sized buffer for the caller to reuse. ``recomputed``: x was recomputed for backward, so the
    channel-wise maxima are taken again from y (see :func:`channel_gate_backward`)."""
    channel_max, conv_out, conv_weight, bn_weight, bn_bias, mean, variance = (
        saved.channel_max,
        saved.conv_out,
        saved.conv_weight,
        saved.bn_weight,
        saved.bn_bias,
        saved.mean,
        saved.variance,
    )
    # The small (N, 1, *spatial) chain, in few ops (each costs a thread hand-off on a busy CPU): Ms from
    # the saved conv output and the statistics the forward normalized it with, then BN and conv backward.
    spatial_weights = torch.sigmoid(F.batch_norm(conv_out, mean, variance, bn_weight, bn_bias, False, 0.0, eps))
    # y and then grad_out * y are recomputed into one buffer (when y is not x itself), which ends as grad_y.
    y = _scale(x, weights_map)
    if recomputed:
        channel_max = y.amax(dim=1, keepdim=True).to(channel_max.dtype)
    descriptor = torch.cat([channel_max, y.mean(dim=1, keepdim=True).to(channel_max.dtype)], dim=1)
    is_max = _equal_as_float(y, channel_max.to(y.dtype))
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
    return grad_y, grad_conv_weight, grad_bn_weight, grad_bn_bias, is_max


class SpatialGateFunction(torch.autograd.Function):
    """CBAM's spatial gate: ``x * Ms(x)``, ``Ms = sigmoid(BN(conv([max_c x; mean_c x])))`` with a
    single-channel BatchNorm; also returns Ms (N, 1, *spatial), non-differentiable, for map hooks.

    Saves x, the channel-wise maxima and the conv output (both (N, 1, *spatial)): ``1 + 2 / C`` times the
    input. The channel-wise max keeps no index: its gradient is recomputed from the saved maxima (ties
    split evenly); the channel mean is recomputed too.

    Args (of ``apply``): x (N, C, *spatial), then the fields of :class:`SpatialGateParameters` in order
    (passed loose, so that autograd tracks the tensors).
    """

    @staticmethod
    def forward(ctx, x, conv_weight, bn_weight, bn_bias, running_mean, running_var, bn_training, momentum, eps):
        spatial = SpatialGateParameters(
            conv_weight, bn_weight, bn_bias, running_mean, running_var, bn_training, momentum, eps
        )
        out, spatial_weights, saved = _spatial_gate_forward(x, None, spatial)
        ctx.eps, ctx.bn_training = eps, bn_training
        ctx.save_for_backward(x, *saved)
        ctx.mark_non_differentiable(spatial_weights)
        return out, spatial_weights

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, _grad_spatial_weights):
        x, *rest = ctx.saved_tensors
        saved = _SpatialSaved(*rest)
        grad_x, grad_conv_weight, grad_bn_weight, grad_bn_bias, _free = _spatial_gate_backward(
            grad_out, x, None, saved, ctx.eps, ctx.bn_training
        )
        return grad_x, grad_conv_weight, grad_bn_weight, grad_bn_bias, None, None, None, None, None


class CBAMFunction(torch.autograd.Function):
    """The whole CBAM block, channel gate then spatial gate: ``y = x * Mc(x)``, output ``y * Ms(y)``
    (see :class:`ChannelGateFunction` and :class:`SpatialGateFunction`); also returns Mc (N, C) and Ms
    (N, 1, *spatial), non-differentiable, for map hooks.

    Saves x but not y: backward recomputes ``x * Mc``. With the channel maxima and the conv output that
    is ``1 + 2 / C`` times the input, where eager code keeps ``2 + 2 / C`` (x and y) and an index. The
    backward builds ``grad_x`` in two input-sized passes after the spatial gate's (one more for each pool
    type other than avg).

    Args (of ``apply``): x, pool_types, the fields of :class:`MLPParameters`, then those of
    :class:`SpatialGateParameters` (passed loose, so that autograd tracks the tensors).
    """

    @staticmethod
    def forward(
        ctx,
        x,
        pool_types,
        w1,
        b1,
        w2,
        b2,
        conv_weight,
        bn_weight,
        bn_bias,
        running_mean,
        running_var,
        bn_training,
        momentum,
        eps,
    ):
        spatial = SpatialGateParameters(
            conv_weight, bn_weight, bn_bias, running_mean, running_var, bn_training, momentum, eps
        )
        out, channel_weights, spatial_weights, saved = cbam_forward(
            x, pool_types, MLPParameters(w1, b1, w2, b2), spatial
        )
        ctx.pool_types, ctx.eps, ctx.bn_training = pool_types, eps, bn_training
        ctx.save_for_backward(x, *saved)
        ctx.mark_non_differentiable(channel_weights, spatial_weights)
        return out, channel_weights, spatial_weights

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, _grad_channel_weights, _grad_spatial_weights):
        x, *saved = ctx.saved_tensors
        grads = cbam_backward(x, saved, ctx.pool_types, grad_out, eps=ctx.eps, bn_training=ctx.bn_training)
        return grads[0], None, *grads[1:], None, None, None, None, None


def cbam_forward(
    x: torch.Tensor, pool_types: Sequence[str], mlp: MLPParameters, spatial: SpatialGateParameters
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
    """``(y * Ms(y), Mc, Ms, saved)`` for ``y = x * Mc(x)``: Mc (N, C), Ms (N, 1, *spatial), and what
    :func:`cbam_backward` needs besides x, all (N, 1, *spatial)-sized or smaller."""
    channel_weights, channel_saved = _channel_weights_forward(x, pool_types, mlp)
    weights_map = _channel_map_like(channel_weights, x)
    out, spatial_weights, spatial_saved = _spatial_gate_forward(x, weights_map, spatial)
    return out, channel_weights, spatial_weights, (*channel_saved, *spatial_saved)


def cbam_backward(
    x: torch.Tensor,
    saved: Sequence[torch.Tensor],
    pool_types: Sequence[str],
    grad_out: torch.Tensor,
    *,
    eps: float,
    bn_training: bool,
    recomputed: bool = False,
) -> tuple[torch.Tensor, ...]:
    """Gradients of (x, w1, b1, w2, b2, conv weight, BN weight, BN bias) of the CBAM block from
    ``grad_out`` and :func:`cbam_forward`'s ``saved``; ``eps`` and ``bn_training`` are the spatial gate's
    BatchNorm settings of the forward; ``recomputed`` as for :func:`channel_gate_backward`."""
    split = len(_ChannelSaved._fields)
    channel_saved, spatial_saved = _ChannelSaved(*saved[:split]), _SpatialSaved(*saved[split:])
    if recomputed:
        channel_saved = channel_saved._replace(pooled=_pooled_again(x, channel_saved.pooled, pool_types))
    weights_map = _channel_map_like(channel_saved.weights, x)
    grad_y, grad_conv_weight, grad_bn_weight, grad_bn_bias, free = _spatial_gate_backward(
        grad_out, x, weights_map, spatial_saved, eps, bn_training, recomputed
    )
    grad_channel_weights = _sum_over_positions(grad_y, x)
    grad_x = grad_y.mul_(weights_map)
    grad_x, *grad_mlp = _channel_weights_backward(
        x, channel_saved, pool_types, grad_channel_weights, grad_x, scratch=free
    )
    return grad_x, *grad_mlp, grad_conv_weight, grad_bn_weight, grad_bn_bias


def spatial_gate(x: torch.Tensor, spatial: SpatialGateParameters) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x * Ms(x), Ms)`` (see :class:`SpatialGateFunction`) for the gate's :class:`SpatialGateParameters`."""
    return SpatialGateFunction.apply(x, *spatial)


def cbam(
    x: torch.Tensor,
    pool_types: Sequence[str],
    mlp: MLPParameters,
    spatial: SpatialGateParameters,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(y * Ms(y), Mc, Ms)`` for ``y = x * Mc(x)`` (see :class:`CBAMFunction`)."""
    return CBAMFunction.apply(x, tuple(pool_types), *mlp, *spatial)


# --- BAM: x * (1 + sigmoid(Mc (+|*) Ms)) ----------------------------------------------------------------
class BAMScaleFunction(torch.autograd.Function):
    """``x * (1 + sigmoid(mix))`` with ``mix = Mc + Ms`` (``combine="sum"``) or ``Mc * Ms`` (``"product"``),
    Mc (N, C, 1, ...) and Ms (N, 1, *spatial) broadcast to the input.

    Saves x, Mc and Ms only; the input-sized sigmoid is recomputed in backward instead of kept (eager
    code keeps it and the input-sized factor ``1 + sigmoid``).
    """

    @staticmethod
    def forward(ctx, x, channel_logits, spatial_logits, combine):
        with _autocast_off(x.device.type):
            factor = mix_logits(channel_logits.to(x.dtype), spatial_logits.to(x.dtype), combine).sigmoid_().add_(1)
            out = x * factor  # x first: the output takes x's memory layout
        ctx.combine = combine
        ctx.save_for_backward(x, channel_logits, spatial_logits)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, channel_logits, spatial_logits = ctx.saved_tensors
        channel, spatial = channel_logits.to(x.dtype), spatial_logits.to(x.dtype)
        gate = mix_logits(channel, spatial, ctx.combine).sigmoid_()
        grad_x = (grad_out * gate).add_(grad_out)
        # d out / d mix = grad_out * x * s (1 - s), in place in the recomputed buffer.
        grad_mix = gate.addcmul_(gate, gate, value=-1).mul_(grad_out).mul_(x)
        if ctx.combine == "product":
            grad_channel = (grad_mix * spatial).sum(dim=spatial_axes(x))
            grad_spatial = (grad_mix * channel).sum(dim=1, keepdim=True)
        else:
            grad_channel = grad_mix.sum(dim=spatial_axes(x))
            grad_spatial = grad_mix.sum(dim=1, keepdim=True)
        grad_channel = grad_channel.reshape(channel_logits.shape).to(channel_logits.dtype)
        return grad_x, grad_channel, grad_spatial.to(spatial_logits.dtype), None


def mix_logits(channel: torch.Tensor, spatial: torch.Tensor, combine: str) -> torch.Tensor:
    """BAM's branches combined: ``Mc * Ms`` for ``combine="product"``, else ``Mc + Ms``."""
    return channel * spatial if combine == "product" else channel + spatial


def bam_scale(
    x: torch.Tensor, channel_logits: torch.Tensor, spatial_logits: torch.Tensor, combine: str
) -> torch.Tensor:
    """``x * (1 + sigmoid(Mc + Ms))`` or ``x * (1 + sigmoid(Mc * Ms))`` (see :class:`BAMScaleFunction`)."""
    return BAMScaleFunction.apply(x, channel_logits, spatial_logits, combine)
