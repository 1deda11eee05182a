"""The papers' 2D ImageNet ResNets (Jongchan/attention-module ``MODELS/model_resnet.py``).

Same parameter names as the official networks, with the block attribute ``cbam`` renamed ``attention``,
so ``cbam3d.from_official(checkpoint)`` loads strictly::

    model = models.resnet2d(50, attention="cbam")
    model.load_state_dict(cbam3d.from_official(torch.load("resnet50_cbam.pth.tar", map_location="cpu")))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cbam3d.attention.registry import AttentionSpec

from .attention_plan import plan_attention
from .convs import conv3x3, conv_nd
from .resnet import STAGE_WIDTHS, ResNet, init_weights, stage_config

IMAGE_DEPTHS = (18, 34, 50, 101)


def resnet2d(
    depth: int,
    *,
    num_classes: int = 1000,
    attention: AttentionSpec | None = None,
    attention_kwargs: Mapping[str, Any] | None = None,
) -> ResNet:
    """ImageNet ResNet-18/34/50/101 with the CBAM / BAM / SE placement of the papers.

    Args:
        depth: 18, 34, 50 or 101.
        num_classes: outputs of ``fc``.
        attention: None; ``"cbam"`` (CBAM, reduction 16, in every block before the residual add);
            ``"se"`` (SE-ResNet: SE at the same place); ``"bam"`` (BAM after layer1, layer2, layer3);
            or a callable ``(channels, dims) -> nn.Module`` placed like CBAM.
        attention_kwargs: passed to the attention module. The released ResNet50+BAM checkpoint needs
            ``{"combine": "product"}``.

    The stem is a 7 x 7 stride-2 conv and a 3 x 3 stride-2 max pool; the head pools adaptively (the
    official ``AvgPool2d(7)`` equals it at 224 x 224). Initialisation follows the official code:
    convs kaiming-normal (fan_out), BN weight 1 / bias 0, the CBAM spatial-gate BN weight 0, ``fc``
    kaiming-normal. Input ``(N, 3, H, W)``; output ``(N, num_classes)``.
    """
    block, layers = stage_config(depth, IMAGE_DEPTHS)
    model = ResNet(
        [("", conv_nd(2, 3, STAGE_WIDTHS[0], 7, 2, 3))],
        block,
        layers,
        STAGE_WIDTHS,
        (conv3x3,) * 4,
        dims=2,
        num_classes=num_classes,
        attention=plan_attention(attention, attention_kwargs),
    )
    init_weights(model, classifier="kaiming")
    return model
