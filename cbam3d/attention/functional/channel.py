"""The channel gate (SE, CBAM's first half) fused: pool -> MLP -> sigmoid (-> scale).

``Mc(x) = sigmoid(sum_p MLP(pool_p(x)))``, (N, C), with MLP = Linear(w1, b1) -> ReLU -> Linear(w2, b2).
Backward keeps x and (P, N, C)-sized tensors only, and builds ``grad_x`` in one input-sized pass per
pool type (the average pool's merged with the product's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..dims import spatial_axes
from ..pooling import global_pool
from .ops import channel_map_like, equal_as_float, sum_over_positions
from .wiring import Computed, FusedFunction, Kept, NormAffine


class MLPParameters(NamedTuple):
    """The channel gate's MLP, ``Linear(w1, b1) -> ReLU -> Linear(w2, b2)``: w1 (C/r, C), b1 (C/r,),
    w2 (C, C/r), b2 (C,); also the bundle of their gradients."""

    w1: Tensor
    b1: Tensor
    w2: Tensor
    b2: Tensor


class ChannelGateInputs(NamedTuple):
    """x (N, C, *spatial), the pool types in order (a tuple) and the MLP."""

    x: Tensor
    pool_types: tuple[str, ...]
    mlp: MLPParameters


class ChannelGateGradients(NamedTuple):
    """The gradients of x (N, C, *spatial) and of the MLP's parameters."""

    x: Tensor
    mlp: MLPParameters


class ChannelSaved(NamedTuple):
    """What the channel gate's backward needs besides x: the pools (P, N, C), the MLP's hidden
    activations (P, N, C/r), Mc (N, C), w1 and w2."""

    pooled: Tensor
    hidden: Tensor
    weights: Tensor
    w1: Tensor
    w2: Tensor


def channel_weights_forward(x: Tensor, pool_types: Sequence[str], mlp: MLPParameters) -> tuple[Tensor, ChannelSaved]:
    """Mc (N, C) in the parameters' dtype, and what its backward needs besides x."""
    w1, b1, w2, b2 = mlp
    pooled = torch.stack([global_pool(x, pool_type) for pool_type in pool_types])
    hidden = torch.relu(F.linear(pooled.to(w1.dtype), w1, b1))
    weights = torch.sigmoid(F.linear(hidden, w2, b2).sum(dim=0))
    return weights, ChannelSaved(pooled, hidden, weights, w1, w2)


def channel_weights_backward(
    grad_weights: Tensor,
    x: Tensor,
    saved: ChannelSaved,
    pool_types: Sequence[str],
    *,
    recomputed: bool,
    grad_x: Tensor | None = None,
    scratch: Tensor | None = None,
) -> ChannelGateGradients:
    """The gradients of x and the MLP from that of Mc (N, C). ``grad_x``: the share of the product
    ``x * Mc`` when there is one (``grad_y * Mc``, a tensor of our own), to which the pools' shares are
    added in place; ``scratch``: a free input-sized buffer; ``recomputed``: see :class:`Kept`."""
    pooled = _pooled_again(x, saved.pooled, pool_types) if recomputed else saved.pooled
    hidden, weights, w1, w2 = saved.hidden, saved.weights, saved.w1, saved.w2
    grad_logits = torch.ops.aten.sigmoid_backward(grad_weights.to(weights.dtype), weights)
    grad_w2 = grad_logits.t() @ hidden.sum(dim=0)
    grad_b2 = grad_logits.sum(dim=0) * len(pool_types)
    grad_hidden = (grad_logits @ w2).unsqueeze(0) * (hidden > 0)
    grad_w1 = grad_hidden.flatten(0, 1).t() @ pooled.flatten(0, 1).to(w1.dtype)
    grad_b1 = grad_hidden.sum(dim=(0, 1))
    grad_pooled = (grad_hidden @ w1).to(x.dtype)
    grad_x = _input_gradient(x, pooled, grad_pooled, pool_types, grad_x=grad_x, scratch=scratch)
    return ChannelGateGradients(x=grad_x, mlp=MLPParameters(grad_w1, grad_b1, grad_w2, grad_b2))


def _pooled_again(x: Tensor, pooled: Tensor, pool_types: Sequence[str]) -> Tensor:
    """The saved (P, N, C) pools with the max pool's row taken again from ``x``."""
    if "max" not in pool_types:
        return pooled
    pooled = pooled.clone()
    pooled[pool_types.index("max")] = global_pool(x, "max").to(pooled.dtype)
    return pooled


def _input_gradient(
    x: Tensor,
    pooled: Tensor,
    grad_pooled: Tensor,
    pool_types: Sequence[str],
    *,
    grad_x: Tensor | None,
    scratch: Tensor | None,
) -> Tensor:
    """``grad_x`` of the channel gate: the gradient of every global pool from the gradient of its (N, C)
    output, added in place to ``grad_x`` or to zeros when it is None; ``scratch`` is a free input-sized
    buffer for the max pool's mask."""
    grads = {pool_type: channel_map_like(grad, x) for pool_type, grad in zip(pool_types, grad_pooled)}
    results = {pool_type: channel_map_like(value, x) for pool_type, value in zip(pool_types, pooled)}
    if grad_x is None:
        grad_x = torch.zeros_like(x)
    if "avg" in grads:
        grad_x.add_(grads["avg"] / x[0, 0].numel())  # on CPU faster than one addcmul with a broadcast addend
    if "max" in grads:
        is_max = equal_as_float(x, results["max"], out=scratch)
        grad_x.addcmul_(is_max, grads["max"] / is_max.sum(dim=spatial_axes(x), keepdim=True))
    if "lp" in grads:
        norm = results["lp"]
        grad_x.addcmul_(x, torch.where(norm > 0, grads["lp"] / norm, 0.0))
    if "lse" in grads:
        grad_x.addcmul_(torch.exp(x - results["lse"]), grads["lse"])
    return grad_x


class ChannelWeightsFunction(FusedFunction):
    """``Mc(x)``, (N, C), differentiable. Saves x (no copy) and (P, N, C)-sized tensors."""

    Inputs, Saved = ChannelGateInputs, ChannelSaved

    @staticmethod
    def compute(inputs: ChannelGateInputs) -> Computed:
        weights, saved = channel_weights_forward(inputs.x, inputs.pool_types, inputs.mlp)
        return Computed(weights, saved)

    @staticmethod
    def gradients(grad_weights: Tensor, kept: Kept) -> ChannelGateGradients:
        return channel_weights_backward(
            grad_weights, kept.x, kept.saved, kept.settings.pool_types, recomputed=kept.recomputed
        )


class ChannelGateFunction(FusedFunction):
    """``x * Mc(x)`` (N, C, *spatial), and Mc (N, C), non-differentiable, for map hooks. Saves x alone at
    input size; the backward is a batched dot product and one pass that adds ``grad * Mc`` and the
    average pool's gradient (one more per other pool type)."""

    Inputs, Saved = ChannelGateInputs, ChannelSaved

    @staticmethod
    def compute(inputs: ChannelGateInputs) -> Computed:
        x = inputs.x
        weights, saved = channel_weights_forward(x, inputs.pool_types, inputs.mlp)
        return Computed(x * channel_map_like(weights, x), saved, maps=(weights,))

    @staticmethod
    def gradients(grad_out: Tensor, kept: Kept) -> ChannelGateGradients:
        x, saved = kept.x, kept.saved
        grad_weights = sum_over_positions(grad_out, x)
        grad_x = grad_out * channel_map_like(saved.weights, x)
        return channel_weights_backward(
            grad_weights, x, saved, kept.settings.pool_types, recomputed=kept.recomputed, grad_x=grad_x
        )


class ChannelGateAfterNormFunction(ChannelGateFunction):
    """:class:`ChannelGateFunction` on a BatchNorm's output, saving the BatchNorm's input and affine
    (:class:`NormAffine`) instead of it."""

    recomputes_input = True


def channel_gate(
    x: Tensor, pool_types: Sequence[str], mlp: MLPParameters, *, norm: NormAffine | None = None
) -> tuple[Tensor, Tensor]:
    """(N, C, *spatial) -> (``x * Mc``, Mc as (N, C)); Mc is not differentiable (it is for map hooks).

    ``norm``: the BatchNorm ``x`` came out of, for backward to recompute x from its input instead of
    keeping x (:class:`ChannelGateAfterNormFunction`).
    """
    function = ChannelGateFunction if norm is None else ChannelGateAfterNormFunction
    return function.run(ChannelGateInputs(x, tuple(pool_types), mlp), norm)


def channel_weights(x: Tensor, pool_types: Sequence[str], mlp: MLPParameters) -> Tensor:
    """(N, C, *spatial) -> Mc, (N, C), differentiable; ``mlp`` as for :func:`channel_gate`."""
    return ChannelWeightsFunction.run(ChannelGateInputs(x, tuple(pool_types), mlp))
