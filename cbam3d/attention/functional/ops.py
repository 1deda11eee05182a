"""Input-sized operations the gates' explicit forward and backward formulas share."""

from __future__ import annotations

import torch
from torch import Tensor

from ..dims import channel_map


def channel_map_like(weights: Tensor, x: Tensor) -> Tensor:
    """(N, C) (or (P, N, C)) weights as a map broadcastable to ``x`` (N, C, *spatial), in its dtype."""
    return channel_map(weights.to(x.dtype), x.ndim - 2)


def equal_as_float(x: Tensor, maxima: Tensor, out: Tensor | None = None) -> Tensor:
    """``x == maxima`` as 0/1 in x's dtype, written directly (into ``out``, a free input-sized buffer, if
    given): a bool mask would be converted for the arithmetic (summing one even widens it to int64
    first), costing more than the comparison."""
    return torch.eq(x, maxima, out=torch.empty_like(x) if out is None else out)


def sum_over_positions(a: Tensor, b: Tensor) -> Tensor:
    """``(a * b).sum(positions)``: (N, C, *spatial) x2 -> (N, C); a batched dot product when both are
    plainly contiguous, with no input-sized temporary."""
    if a.is_contiguous() and b.is_contiguous():
        n, c = a.shape[:2]
        return torch.bmm(a.reshape(n * c, 1, -1), b.reshape(n * c, -1, 1)).reshape(n, c)
    return torch.linalg.vecdot(a.flatten(2), b.flatten(2))
