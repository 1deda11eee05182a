"""Resolving the ``attention`` argument of the model builders into a placement and a factory.

Every builder in this package takes ``attention`` (None, ``"se"``, ``"cbam"``, ``"bam"`` or a callable
``(channels, dims) -> nn.Module``) and ``attention_kwargs``. The papers place them differently:

- CBAM, SE and custom callables go inside every residual block, on the residual branch after its last
  BatchNorm and before the addition (CBAM paper Fig. 3, SE paper Fig. 3);
- BAM goes after each of the first three stages, at the network's bottlenecks (BAM paper Fig. 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union

from torch import nn

AttentionFactory = Callable[[int, int], nn.Module]
"""Builds an attention module from ``(channels, dims)``."""

AttentionSpec = Union[None, str, AttentionFactory]

BLOCK_ATTENTION = ("se", "cbam")
STAGE_ATTENTION = ("bam",)
ATTENTION_NAMES = BLOCK_ATTENTION + STAGE_ATTENTION


@dataclass(frozen=True)
class AttentionPlan:
    """Where attention goes in a residual network and how to build it.

    ``placement`` is ``"block"`` (inside every residual block), ``"stage"`` (after stages 1-3) or
    ``"none"``; ``factory(channels, dims)`` builds one module.
    """

    placement: Literal["none", "block", "stage"]
    factory: AttentionFactory | None = None

    def build(self, channels: int, dims: int) -> nn.Module:
        """Build one attention module for ``channels`` feature maps of ``dims`` spatial dimensions."""
        if self.factory is None:
            raise RuntimeError("this plan has no attention to build")
        return self.factory(channels, dims)


def plan_attention(attention: AttentionSpec, attention_kwargs: Mapping[str, Any] | None = None) -> AttentionPlan:
    """Validate ``attention`` / ``attention_kwargs`` and return where and how to build the modules.

    Raises:
        ValueError: ``attention`` is a string other than ``"se"``, ``"cbam"`` or ``"bam"``, or
            ``attention_kwargs`` is given without an attention.
        TypeError: ``attention`` is neither None, a string nor a callable, or ``attention_kwargs``
            is not a mapping.
    """
    if attention_kwargs is not None and not isinstance(attention_kwargs, Mapping):
        raise TypeError(f"attention_kwargs must be a dict or None, got {type(attention_kwargs).__name__}")
    kwargs = dict(attention_kwargs or {})
    if attention is None:
        if kwargs:
            raise ValueError(f"attention_kwargs {sorted(kwargs)} were given but attention is None")
        return AttentionPlan("none")
    if isinstance(attention, str):
        name = attention.lower()
        if name not in ATTENTION_NAMES:
            raise ValueError(
                f"unknown attention {attention!r}; expected None, one of {list(ATTENTION_NAMES)} "
                "or a callable (channels, dims) -> nn.Module"
            )
        placement = "stage" if name in STAGE_ATTENTION else "block"
        return AttentionPlan(placement, _factory(name, kwargs))
    if callable(attention):
        return AttentionPlan("block", _factory(attention, kwargs))
    raise TypeError(
        f"attention must be None, a name in {list(ATTENTION_NAMES)} or a callable (channels, dims) -> "
        f"nn.Module, got {type(attention).__name__}"
    )


def _factory(attention: str | Callable[..., nn.Module], kwargs: dict[str, Any]) -> AttentionFactory:
    from cbam3d import create_attention

    def factory(channels: int, dims: int) -> nn.Module:
        return create_attention(attention, channels, dims, **kwargs)

    return factory
