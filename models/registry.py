"""The network registry: networks by name, for :func:`create_model`, the commands and the checkpoints.

A network is declared once, with the :func:`register_model` decorator on its builder; :data:`MODEL_NAMES`,
:func:`create_model`, the training command's ``--model``, the benchmark and the model table read the
registry. The built-in names (``resnet3d-10`` .. ``resnet3d-200``, ``r2plus1d-10`` .. ``r2plus1d-200``,
``r3d_18``, ``mc3_18``, ``r2plus1d_18``) are registered in :mod:`cbam3d.models.video`.

>>> from torch import nn
>>> from cbam3d import models
>>> @models.register_model("tiny-net")
... def tiny_net(*, num_classes=400, attention=None, attention_kwargs=None, width=8):
...     return nn.Sequential(nn.Flatten(), nn.LazyLinear(width), nn.ReLU(), nn.Linear(width, num_classes))
>>> "tiny-net" in models.MODEL_NAMES
True
>>> models.create_model("tiny-net", num_classes=5, width=4)[-1].out_features
5
>>> models.unregister_model("tiny-net")
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from cbam3d.attention.registry import AttentionSpec

ModelBuilder = Callable[..., nn.Module]
"""Builds one network: ``builder(*, num_classes, attention, attention_kwargs, **options)``."""

Builder = TypeVar("Builder", bound=ModelBuilder)


@dataclass(frozen=True)
class _Registration:
    builder: ModelBuilder
    takes_options: bool


_REGISTRY: dict[str, _Registration] = {}


class _Names(Sequence[str]):
    """The registered names in registration order, read-only and live: later registrations show at once."""

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return tuple(_REGISTRY)[index]

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in _REGISTRY

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(_REGISTRY))  # a snapshot: registering while iterating is safe

    def __repr__(self) -> str:
        return f"MODEL_NAMES{tuple(_REGISTRY)!r}"


MODEL_NAMES: Sequence[str] = _Names()
"""Every name :func:`create_model` accepts, in registration order (a live read-only view): ``resnet3d-10``
.. ``resnet3d-200``, ``r2plus1d-10`` .. ``r2plus1d-200``, torchvision's ``r3d_18``, ``mc3_18``,
``r2plus1d_18``, then the networks registered with :func:`register_model`."""


def register_model(name: str, *, takes_options: bool = True, replace: bool = False) -> Callable[[Builder], Builder]:
    """Decorator declaring the network built by the decorated function under ``name``.

    The builder is called as ``builder(num_classes=..., attention=..., attention_kwargs=..., **options)``
    and returns the ``nn.Module``; the decorator returns it unchanged. A family registers one name per
    variant, e.g. ``register_model(f"resnet3d-{depth}")(functools.partial(resnet3d, depth))``.

    Args:
        name: the name, e.g. ``"resnet3d-50"``; letters, digits, ``_`` and ``-``, starting with a letter.
        takes_options: whether :func:`create_model` passes its ``**options`` on to the builder; False for
            a fixed architecture, whose options are then refused with a ValueError.
        replace: allow replacing a network already registered under ``name``.

    Raises:
        ValueError: an invalid name, or (on decorating) a name already registered, without ``replace``.
        TypeError: the decorated object is not callable.
    """
    if not isinstance(name, str) or not name[:1].isalpha() or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"name must start with a letter and hold only letters, digits, '_' and '-', got {name!r}")

    def register(builder: Builder) -> Builder:
        if not callable(builder):
            raise TypeError(f"register_model({name!r}) decorates a builder function, got {type(builder).__name__}")
        if name in _REGISTRY and not replace:
            raise ValueError(f"model {name!r} is already registered; pass replace=True to replace it")
        _REGISTRY[name] = _Registration(builder, takes_options)
        return builder

    return register


def unregister_model(name: str) -> None:
    """Remove the network registered under ``name``.

    Raises:
        ValueError: no network is registered under ``name``.
    """
    if name not in _REGISTRY:
        raise ValueError(f"no model is registered under {name!r}; registered: {', '.join(MODEL_NAMES)}")
    del _REGISTRY[name]


def model_builder(name: str) -> ModelBuilder:
    """The builder registered as ``name``: its signature says which options the network takes, and their types.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
    """
    registration = _REGISTRY.get(name) if isinstance(name, str) else None
    if registration is None:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")
    return registration.builder


def create_model(
    name: str,
    *,
    num_classes: int = 400,
    attention: AttentionSpec | None = None,
    attention_kwargs: Mapping[str, Any] | None = None,
    **options: Any,
) -> nn.Module:
    """Build the network registered as ``name`` (one of :data:`MODEL_NAMES`).

    ``options`` go to the builder: for :func:`~cbam3d.models.resnet3d` / :func:`~cbam3d.models.r2plus1d`
    ``conv1_t_size``, ``conv1_t_stride``, ``no_max_pool``, ``shortcut_type``, ``widen_factor``,
    ``n_input_channels``; torchvision's fixed architectures take none. Every built-in model's classifier
    is ``model.fc``.

    Raises:
        ValueError: unknown name (the message lists the valid ones) or options for a fixed architecture.
        TypeError: the registered builder returned something other than an ``nn.Module``.
    """
    model_builder(name)  # refuses an unknown name
    registration = _REGISTRY[name]
    if options and not registration.takes_options:
        raise ValueError(f"{name} has a fixed architecture and takes no options, got {sorted(options)}")
    model = registration.builder(
        num_classes=num_classes, attention=attention, attention_kwargs=attention_kwargs, **options
    )
    if not isinstance(model, nn.Module):
        raise TypeError(f"the builder of model {name!r} must return an nn.Module, got {type(model).__name__}")
    return model
