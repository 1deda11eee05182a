"""Video models by name, for the training scripts: :func:`create_model` and :data:`MODEL_NAMES`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from cbam3d.attention.registry import AttentionSpec

from .resnet import RESNET_DEPTHS
from .video import mc3_18, r2plus1d, r2plus1d_18, r3d_18, resnet3d

_FAMILIES: dict[str, Callable[..., nn.Module]] = {"resnet3d": resnet3d, "r2plus1d": r2plus1d}
_TORCHVISION: dict[str, Callable[..., nn.Module]] = {"r3d_18": r3d_18, "mc3_18": mc3_18, "r2plus1d_18": r2plus1d_18}

MODEL_NAMES: tuple[str, ...] = tuple(f"{family}-{depth}" for family in _FAMILIES for depth in RESNET_DEPTHS) + tuple(
    _TORCHVISION
)
"""Every name :func:`create_model` accepts: ``resnet3d-10`` .. ``resnet3d-200``, ``r2plus1d-10`` ..
``r2plus1d-200`` and torchvision's ``r3d_18``, ``mc3_18``, ``r2plus1d_18``."""


def create_model(
    name: str,
    *,
    num_classes: int = 400,
    attention: AttentionSpec | None = None,
    attention_kwargs: Mapping[str, Any] | None = None,
    **options: Any,
) -> nn.Module:
    """Build the video classifier called ``name`` (one of :data:`MODEL_NAMES`).

    ``options`` go to :func:`models.resnet3d` / :func:`models.r2plus1d` (``conv1_t_size``,
    ``conv1_t_stride``, ``no_max_pool``, ``shortcut_type``, ``widen_factor``, ``n_input_channels``);
    torchvision's fixed architectures take none. Every model's classifier is ``model.fc``.

    Raises:
        ValueError: unknown name (the message lists the valid ones) or options for a torchvision model.
    """
    if name in _TORCHVISION:
        if options:
            raise ValueError(f"{name} has torchvision's fixed architecture and takes no options, got {sorted(options)}")
        return _TORCHVISION[name](num_classes=num_classes, attention=attention, attention_kwargs=attention_kwargs)
    if name in MODEL_NAMES:
        family, depth = name.split("-")
        return _FAMILIES[family](
            int(depth), num_classes=num_classes, attention=attention, attention_kwargs=attention_kwargs, **options
        )
    raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")
