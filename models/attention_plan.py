"""Resolving the ``attention`` argument of the model builders into a placement and a builder.

Every builder in this package takes ``attention`` (None, the name of an attention registered with
:func:`cbam3d.register_attention` such as ``"se"``, ``"cbam"``, ``"bam"``, ``"eca"``, or a callable
``(channels, dims) -> nn.Module``) and ``attention_kwargs``. The registry says where each one goes:

- ``"block"`` (CBAM, SE, ECA and callables): inside every residual block, on the residual branch after
  its last BatchNorm and before the addition (CBAM paper Fig. 3, SE paper Fig. 3);
- ``"stage"`` (BAM): after each of the first three stages, at the network's bottlenecks (BAM paper Fig. 1).

The plan fills this package's own slots (``block.attention``, ``bam1``..``bam3``); :mod:`models.places`
finds the matching places in networks built elsewhere, for :func:`models.add_attention`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from cbam3d.attention.registry import AttentionBuilder, AttentionSpec, get_attention


@dataclass(frozen=True)
class AttentionPlan:
    """Where attention goes in a residual network and how to build it.

    ``placement`` is ``"block"`` (inside every residual block), ``"stage"`` (after stages 1-3) or
    ``"none"``; ``builder(channels, dims)`` builds one module.
    """

    placement: Literal["none", "block", "stage"]
    builder: AttentionBuilder | None = None

    def build(self, channels: int, dims: int) -> nn.Module:
        """Build one attention module for ``channels`` feature maps of ``dims`` spatial dimensions."""
        if self.builder is None:
            raise RuntimeError("this plan has no attention to build")
        return self.builder(channels, dims)


NO_ATTENTION = AttentionPlan("none")
"""The plan of a network without attention."""


def plan_attention(attention: AttentionSpec | None, attention_kwargs: Mapping[str, Any] | None = None) -> AttentionPlan:
    """Validate ``attention`` / ``attention_kwargs`` and return where and how to build the modules.

    Raises:
        ValueError: ``attention`` is a name no attention is registered under, or ``attention_kwargs`` is
            given without an attention.
        TypeError: ``attention`` is neither None, a string nor a callable, or ``attention_kwargs``
            is not a mapping.
    """
    if attention_kwargs is not None and not isinstance(attention_kwargs, Mapping):
        raise TypeError(f"attention_kwargs must be a dict or None, got {type(attention_kwargs).__name__}")
    kwargs = dict(attention_kwargs or {})
    if attention is None:
        if kwargs:
            raise ValueError(f"attention_kwargs {sorted(kwargs)} were given but attention is None")
        return NO_ATTENTION
    kind = get_attention(attention)
    return AttentionPlan(kind.placement, functools.partial(kind.build, **kwargs))
