"""Global pooling over all positions, for any number of spatial dimensions.

These are the descriptors CBAM's channel gate feeds to its MLP and the two maps its spatial gate
convolves. They reduce over axes in place (no ``flatten``), so ``channels_last`` inputs are not copied.
"""

from __future__ import annotations

import torch

from .dims import spatial_axes

POOL_TYPES: tuple[str, ...] = ("avg", "max", "lp", "lse")


def check_pool_types(pool_types: tuple[str, ...] | list[str] | str) -> tuple[str, ...]:
    """Return ``pool_types`` as a tuple, raising on an unknown, repeated or missing type."""
    if isinstance(pool_types, str):
        pool_types = (pool_types,)
    pool_types = tuple(pool_types)
    if not pool_types:
        raise ValueError(f"pool_types must name at least one of {POOL_TYPES}, got an empty sequence")
    for pool_type in pool_types:
        if pool_type not in POOL_TYPES:
            raise ValueError(f"unknown pool type {pool_type!r}: expected one of {POOL_TYPES}")
    if len(set(pool_types)) != len(pool_types):
        raise ValueError(f"pool_types must not repeat a type, got {pool_types}")
    return pool_types


def global_pool(x: torch.Tensor, pool_type: str) -> torch.Tensor:
    """Pool (N, C, *spatial) over every position to (N, C).

    - ``avg``: the mean;
    - ``max``: the maximum;
    - ``lp``: the power-2 pool of the official CBAM code (``F.lp_pool2d`` with a whole-map window),
      ``sqrt(sum x**2)``;
    - ``lse``: ``log(sum exp x)``, computed stably.
    """
    axes = spatial_axes(x)
    if pool_type == "avg":
        return x.mean(dim=axes)
    if pool_type == "max":
        return x.amax(dim=axes)
    if pool_type == "lp":
        return torch.linalg.vector_norm(x, 2, dim=axes)
    if pool_type == "lse":
        return torch.logsumexp(x, dim=axes)
    raise ValueError(f"unknown pool type {pool_type!r}: expected one of {POOL_TYPES}")


def channel_max_mean(x: torch.Tensor) -> torch.Tensor:
    """CBAM's spatial descriptor: (N, C, *spatial) -> (N, 2, *spatial), channel max then channel mean."""
    return torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
