"""The attention registry: the one place an attention type is declared.

Every attention cbam3d knows by name is registered here with :func:`register_attention`, together with
where it goes in a network. Everything that takes an attention by name derives from this registry:
:func:`create_attention`, the networks' ``attention=`` argument, ``cbam3d.models.add_attention``, the
training command's ``--attention`` choices, the benchmark and the complexity table.

>>> import torch
>>> from torch import nn
>>> from cbam3d import create_attention, register_attention, unregister_attention
>>> class Gate(nn.Module):
...     def __init__(self, channels, dims, scale=0.5):
...         super().__init__()
...         self.scale = scale
...     def forward(self, x):
...         return x * self.scale
>>> _ = register_attention("half", Gate)
>>> create_attention("half", 16, dims=3)(torch.ones(1, 16, 2, 2, 2)).max().item()
0.5
>>> unregister_attention("half")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import torch
from torch import nn

from .base import AttentionModule

__all__ = [
    "ATTENTION",
    "PLACEMENTS",
    "AttentionBuilder",
    "AttentionSpec",
    "AttentionType",
    "ShapeCheck",
    "attention_names",
    "create_attention",
    "get_attention",
    "register_attention",
    "unregister_attention",
]

AttentionBuilder = Callable[..., nn.Module]
"""Builds one attention module: ``builder(channels, dims, **options)``; ``channels`` may be None for a
module that takes its channel count from its first input."""

AttentionSpec = str | AttentionBuilder
"""What the ``attention=`` arguments take: the name of a registered attention or a builder."""

Placement = Literal["block", "stage"]

PLACEMENTS: tuple[str, ...] = ("block", "stage")
"""Where an attention goes in a residual network:

- ``"block"``: in every residual block, on the residual branch after its last normalization and before
  the addition (the CBAM, SE and ECA papers);
- ``"stage"``: at the network's bottlenecks, on the feature map after each of the first three stages
  (the BAM paper).
"""


@dataclass(frozen=True)
class AttentionType:
    """A registered attention: its ``name``, its ``builder`` and its ``placement`` (see :data:`PLACEMENTS`)."""

    name: str
    builder: AttentionBuilder
    placement: Placement = "block"

    def build(self, channels: int | None, dims: int, **options: Any) -> nn.Module:
        """One module for inputs of ``channels`` channels and ``dims`` spatial dimensions; the first call of a
        module that is not one of ours checks that it keeps the input's shape (see :class:`ShapeCheck`)."""
        module = self.builder(channels, dims, **options)
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"the builder of attention {self.name!r} must return an nn.Module, got {type(module).__name__}"
            )
        if not isinstance(module, AttentionModule):  # ours check their input and keep its shape by construction
            module.register_forward_hook(ShapeCheck(self.name))
        return module


class ShapeCheck:
    """Forward hook that checks, at an attention module's first call, that its output has its input's shape.

    An attention scales its input; a module that changes the shape would otherwise fail later as a raw torch
    error in a residual addition, or not at all before an adaptive pool. A plain class (not a closure), so
    the module still deep-copies and pickles.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.checked = False

    def __call__(self, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        if self.checked or not inputs or not isinstance(inputs[0], torch.Tensor):
            return
        shape = getattr(output, "shape", None)
        if shape != inputs[0].shape:
            raise ValueError(
                f"attention {self.name!r} ({type(module).__name__}) must return its input's shape "
                f"{tuple(inputs[0].shape)}, got {tuple(shape) if shape is not None else type(output).__name__}"
            )
        self.checked = True


_REGISTRY: dict[str, AttentionType] = {}

ATTENTION: Mapping[str, AttentionType] = MappingProxyType(_REGISTRY)
"""The registered attention types by name, read-only (a live view: registrations show at once)."""


def register_attention(
    name: str, builder: AttentionBuilder, *, placement: Placement = "block", replace: bool = False
) -> AttentionType:
    """Declare an attention type under ``name`` (lower case), usable wherever an attention is named.

    Args:
        name: the name, e.g. ``"cbam"``; letters, digits, ``_`` and ``-``, starting with a letter.
        builder: ``builder(channels, dims, **options) -> nn.Module``, typically the module's class.
        placement: ``"block"`` or ``"stage"`` (see :data:`PLACEMENTS`).
        replace: allow replacing an attention already registered under ``name``.

    Returns:
        The registered :class:`AttentionType`.

    Raises:
        ValueError: an invalid or already registered name (without ``replace``), or an unknown placement.
        TypeError: ``builder`` is not callable.
    """
    if not isinstance(name, str) or not name[:1].isalpha() or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"name must start with a letter and hold only letters, digits, '_' and '-', got {name!r}")
    if name != name.lower():
        raise ValueError(f"name must be lower case (names are matched case-insensitively), got {name!r}")
    if name == "none":
        raise ValueError("name 'none' is reserved for 'no attention'")
    if not callable(builder):
        raise TypeError(
            f"builder must be callable (channels, dims, **options) -> nn.Module, got {type(builder).__name__}"
        )
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}: expected one of {PLACEMENTS}")
    if name in _REGISTRY and not replace:
        raise ValueError(f"attention {name!r} is already registered; pass replace=True to replace it")
    _REGISTRY[name] = AttentionType(name, builder, placement)
    return _REGISTRY[name]


def unregister_attention(name: str) -> None:
    """Remove the attention registered under ``name``.

    Raises:
        ValueError: no attention is registered under ``name``.
    """
    if name not in _REGISTRY:
        raise ValueError(f"no attention is registered under {name!r}; registered: {attention_names()}")
    del _REGISTRY[name]


def attention_names() -> tuple[str, ...]:
    """The registered names, sorted."""
    return tuple(sorted(_REGISTRY))


def get_attention(attention: AttentionSpec) -> AttentionType:
    """The :class:`AttentionType` of a registered name (any case), or of a builder (placed in every block).

    Raises:
        ValueError: an unknown name.
        TypeError: neither a string nor a callable.
    """
    if isinstance(attention, str):
        kind = _REGISTRY.get(attention.lower())
        if kind is None:
            raise ValueError(
                f"unknown attention {attention!r}: expected one of {attention_names()} (see "
                "cbam3d.register_attention) or a callable (channels, dims) -> nn.Module"
            )
        return kind
    if callable(attention):
        return AttentionType(getattr(attention, "__name__", type(attention).__name__), attention)
    raise TypeError(
        f"attention must be one of {attention_names()} or a callable (channels, dims) -> nn.Module, "
        f"got {type(attention).__name__}"
    )


def create_attention(attention: AttentionSpec, channels: int | None = None, dims: int = 2, **options: Any) -> nn.Module:
    """Build an attention module by name or builder.

    Args:
        attention: a registered name (any case: ``"se"``, ``"cbam"``, ``"bam"``, ``"eca"``, or one of
            yours) or a builder ``(channels, dims, **options) -> nn.Module``.
        channels: C of the input; None for a module built by its first input (the built-in ones).
        dims: 1, 2 or 3 for inputs (N, C, L), (N, C, H, W), (N, C, T, H, W).
        **options: passed to the builder, e.g. ``combine="product"`` or ``kernel_size=(3, 7, 7)``.

    Returns:
        The module; it maps (N, C, *spatial) to the same shape.
    """
    return get_attention(attention).build(channels, dims, **options)
