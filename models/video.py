"""Video classifiers: the 3D-ResNet family, its (2+1)D variant and torchvision's three video ResNets.

- :func:`resnet3d` / :func:`r2plus1d`: kenshohara/3D-ResNets-PyTorch ``models/resnet.py`` and
  ``models/resnet2p1d.py`` (depths 10-200, same parameter names and options).
- :func:`r3d_18`, :func:`mc3_18`, :func:`r2plus1d_18`: exactly ``torchvision.models.video``'s
  architectures; load torchvision weights with :func:`models.from_torchvision`.

All take ``(N, C, T, H, W)`` clips of any length and frame size and return ``(N, num_classes)`` logits.
They are registered for :func:`models.create_model` as ``resnet3d-<depth>`` and ``r2plus1d-<depth>``
(options passed on) and as ``r3d_18``, ``mc3_18``, ``r2plus1d_18`` (fixed architectures, no options).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

from cbam3d.attention.registry import AttentionSpec

from .attention_plan import plan_attention
from .blocks import BasicBlock, ShortcutType
from .convs import ConvBuilder, NamedConvs, conv1x3x3, conv2plus1d, conv3x3x3, conv_nd, factorised_width
from .registry import register_model
from .resnet import RESNET_DEPTHS, STAGE_WIDTHS, ResNet, init_weights, stage_config


def _stem_3d(n_input_channels: int, out_planes: int, t_size: int, t_stride: int) -> NamedConvs:
    return [("", conv_nd(3, n_input_channels, out_planes, (t_size, 7, 7), (t_stride, 2, 2), (t_size // 2, 3, 3)))]


def _stem_2plus1d(n_input_channels: int, out_planes: int, mid_planes: int, t_size: int, t_stride: int) -> NamedConvs:
    return [
        ("_s", conv_nd(3, n_input_channels, mid_planes, (1, 7, 7), (1, 2, 2), (0, 3, 3))),
        ("_t", conv_nd(3, mid_planes, out_planes, (t_size, 1, 1), (t_stride, 1, 1), (t_size // 2, 0, 0))),
    ]


def _check_options(
    conv1_t_size: Any, conv1_t_stride: Any, no_max_pool: Any, widen_factor: Any, n_input_channels: Any
) -> None:
    """Refuse option values the layers would take and fail on later (a zero stride, the truthy text 'false')."""
    for name, value in (
        ("conv1_t_size", conv1_t_size),
        ("conv1_t_stride", conv1_t_stride),
        ("n_input_channels", n_input_channels),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(no_max_pool, bool):
        raise TypeError(f"no_max_pool must be True or False, got {no_max_pool!r}")
    if isinstance(widen_factor, bool) or not isinstance(widen_factor, (int, float)) or not 0 < widen_factor < math.inf:
        raise ValueError(f"widen_factor must be a positive finite number, got {widen_factor!r}")


def _family(
    depth: int,
    conv_builder: ConvBuilder,
    factorised_stem: bool,
    attention: AttentionSpec | None,
    num_classes: int,
    attention_kwargs: Mapping[str, Any] | None,
    conv1_t_size: int,
    conv1_t_stride: int,
    no_max_pool: bool,
    shortcut_type: ShortcutType,
    widen_factor: float,
    n_input_channels: int,
) -> ResNet:
    _check_options(conv1_t_size, conv1_t_stride, no_max_pool, widen_factor, n_input_channels)
    block, layers = stage_config(depth)
    plan = plan_attention(attention, attention_kwargs)
    widths = tuple(int(w * widen_factor) for w in STAGE_WIDTHS)
    if min(widths) < 1:
        raise ValueError(f"widen_factor {widen_factor} leaves a stage without channels")
    if factorised_stem:
        mid = factorised_width(n_input_channels, widths[0], conv1_t_size, 7)
        stem = _stem_2plus1d(n_input_channels, widths[0], mid, conv1_t_size, conv1_t_stride)
    else:
        stem = _stem_3d(n_input_channels, widths[0], conv1_t_size, conv1_t_stride)
    model = ResNet(
        stem,
        block,
        layers,
        widths,
        (conv_builder,) * 4,
        dims=3,
        num_classes=num_classes,
        attention=plan,
        use_max_pool=not no_max_pool,
        shortcut_type=shortcut_type,
    )
    init_weights(model, classifier="default")
    return model


def _register_depths(family: str, builder: Callable[..., ResNet]) -> None:
    """Register ``builder(depth, ...)`` as ``<family>-<depth>`` for every depth of the family."""
    for depth in RESNET_DEPTHS:
        register_model(f"{family}-{depth}")(functools.partial(builder, depth))


def resnet3d(
    depth: int,
    *,
    num_classes: int = 400,
    attention: AttentionSpec | None = None,
    attention_kwargs: Mapping[str, Any] | None = None,
    conv1_t_size: int = 7,
    conv1_t_stride: int = 1,
    no_max_pool: bool = False,
    shortcut_type: ShortcutType = "B",
    widen_factor: float = 1.0,
    n_input_channels: int = 3,
) -> ResNet:
    """3D ResNet of kenshohara/3D-ResNets-PyTorch (Hara et al., CVPR 2018), with optional attention.

    Args:
        depth: 10, 18, 34 (basic blocks) or 50, 101, 152, 200 (bottlenecks, expansion 4).
        num_classes: outputs of the classifier ``fc``.
        attention: None, ``"se"``, ``"cbam"`` (in every block, before the residual add), ``"bam"``
            (after stages 1-3) or a callable ``(channels, dims) -> nn.Module`` (in every block).
        attention_kwargs: passed to the attention module, e.g. ``{"kernel_size": (3, 7, 7)}``.
        conv1_t_size: temporal kernel of the 7 x 7 stem conv.
        conv1_t_stride: temporal stride of the stem conv.
        no_max_pool: skip the max pool after the stem.
        shortcut_type: ``"A"`` (parameter-free zero padding) or ``"B"`` (1 x 1 x 1 conv + BN).
        widen_factor: multiplies every stage width (and the stem's).
        n_input_channels: channels of the input clip.

    Input ``(N, n_input_channels, T, H, W)``, any T, H, W; output ``(N, num_classes)``.
    """
    return _family(
        depth, conv3x3x3, False, attention, num_classes, attention_kwargs,
        conv1_t_size, conv1_t_stride, no_max_pool, shortcut_type, widen_factor, n_input_channels,
    )  # fmt: skip


_register_depths("resnet3d", resnet3d)


def r2plus1d(
    depth: int,
    *,
    num_classes: int = 400,
    attention: AttentionSpec | None = None,
    attention_kwargs: Mapping[str, Any] | None = None,
    conv1_t_size: int = 7,
    conv1_t_stride: int = 1,
    no_max_pool: bool = False,
    shortcut_type: ShortcutType = "B",
    widen_factor: float = 1.0,
    n_input_channels: int = 3,
) -> ResNet:
    """(2+1)D ResNet of kenshohara/3D-ResNets-PyTorch ``resnet2p1d.py`` (Tran et al., CVPR 2018).

    Every 3 x 3 x 3 conv (and the t x 7 x 7 stem conv) is a 1 x k x k spatial conv into a mid width
    that keeps the full conv's parameter count, BN, ReLU, then a t x 1 x 1 temporal conv; parameters
    are named ``conv{i}_s``/``bn{i}_s``/``conv{i}_t``/``bn{i}_t``. Arguments as :func:`resnet3d`.
    """
    return _family(
        depth, conv2plus1d, True, attention, num_classes, attention_kwargs,
        conv1_t_size, conv1_t_stride, no_max_pool, shortcut_type, widen_factor, n_input_channels,
    )  # fmt: skip


_register_depths("r2plus1d", r2plus1d)

TORCHVISION_STEM_MID_PLANES = 45
"""torchvision's R2Plus1dStem uses a fixed 45-channel mid width (not the parameter-matching 83)."""


def _torchvision_video(
    conv_builders: tuple[ConvBuilder, ...],
    factorised: bool,
    attention: AttentionSpec | None,
    num_classes: int,
    attention_kwargs: Mapping[str, Any] | None,
) -> ResNet:
    stem = _stem_2plus1d(3, 64, TORCHVISION_STEM_MID_PLANES, 3, 1) if factorised else _stem_3d(3, 64, 3, 1)
    model = ResNet(
        stem,
        BasicBlock,
        (2, 2, 2, 2),
        STAGE_WIDTHS,
        conv_builders,
        dims=3,
        num_classes=num_classes,
        attention=plan_attention(attention, attention_kwargs),
        use_max_pool=False,
        block_kwargs={"shared_mid_planes": True},
    )
    init_weights(model, classifier="normal")
    return model


@register_model("r3d_18", takes_options=False)
def r3d_18(
    *, num_classes: int = 400, attention: AttentionSpec | None = None, attention_kwargs: Mapping[str, Any] | None = None
) -> ResNet:
    """torchvision's ``r3d_18`` (18-layer R3D, 3 x 3 x 3 convs), with optional attention.

    Load torchvision's weights with
    ``model.load_state_dict(models.from_torchvision(tv.state_dict()), strict=attention is None)``.
    Input ``(N, 3, T, H, W)``; output ``(N, num_classes)``.
    """
    return _torchvision_video((conv3x3x3,) * 4, False, attention, num_classes, attention_kwargs)


@register_model("mc3_18", takes_options=False)
def mc3_18(
    *, num_classes: int = 400, attention: AttentionSpec | None = None, attention_kwargs: Mapping[str, Any] | None = None
) -> ResNet:
    """torchvision's ``mc3_18``: 3 x 3 x 3 convs in stage 1, frame-wise 1 x 3 x 3 convs in stages 2-4."""
    return _torchvision_video((conv3x3x3,) + (conv1x3x3,) * 3, False, attention, num_classes, attention_kwargs)


@register_model("r2plus1d_18", takes_options=False)
def r2plus1d_18(
    *, num_classes: int = 400, attention: AttentionSpec | None = None, attention_kwargs: Mapping[str, Any] | None = None
) -> ResNet:
    """torchvision's ``r2plus1d_18``: (2+1)D convs with torchvision's mid widths (45-channel stem mid)."""
    return _torchvision_video((conv2plus1d,) * 4, True, attention, num_classes, attention_kwargs)
