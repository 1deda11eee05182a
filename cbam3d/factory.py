"""Attention modules by name, for networks that take ``attention="cbam"`` and the like."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from .bam import BAM
from .cbam import CBAM
from .channel import SE

ATTENTION: dict[str, Callable[..., nn.Module]] = {"se": SE, "cbam": CBAM, "bam": BAM}

AttentionSpec = str | Callable[..., nn.Module]


def create_attention(attention: AttentionSpec, channels: int | None, dims: int, **kwargs: Any) -> nn.Module:
    """Build an attention module for ``channels`` and ``dims``.

    Args:
        attention: ``"se"``, ``"cbam"`` or ``"bam"`` (any case), or a callable ``f(channels, dims, **kwargs)``
            returning a module, for custom attention.
        channels: C of the input; None for a lazy module (the built-in ones).
        dims: 1, 2 or 3.
        **kwargs: passed to the module, e.g. ``combine="product"`` or ``kernel_size=(3, 7, 7)``.
    """
    if isinstance(attention, str):
        name = attention.lower()
        if name not in ATTENTION:
            raise ValueError(f"unknown attention {attention!r}: expected one of {tuple(ATTENTION)} or a callable")
        return ATTENTION[name](channels, dims, **kwargs)
    if callable(attention):
        module = attention(channels, dims, **kwargs)
        if not isinstance(module, nn.Module):
            raise TypeError(f"the attention callable must return an nn.Module, got {type(module).__name__}")
        return module
    raise TypeError(f"attention must be one of {tuple(ATTENTION)} or a callable, got {type(attention).__name__}")
