"""One residual-network skeleton for the 2D, 3D and (2+1)D families.

``stem -> [maxpool] -> layer1 (-> bam1) -> layer2 (-> bam2) -> layer3 (-> bam3) -> layer4 -> avgpool -> fc``

The skeleton is parameterised by the stem (a list of named convs), the block type, the number of
blocks per stage, the stage widths and one conv builder per stage. Top-level names follow the
reference networks: the stem is ``conv1``/``bn1`` (or ``conv1_s``/``bn1_s``/``conv1_t``/``bn1_t``),
then ``maxpool``, ``layer1``..``layer4``, ``bam1``..``bam3`` (None without BAM), ``avgpool`` and the
classifier ``fc``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

from torch import Tensor, nn

from cbam3d.attention.cbam import CBAM
from cbam3d.attention.dims import BATCH_NORM, CONV, INPUT_LAYOUT

from .attention_plan import NO_ATTENTION, AttentionPlan
from .blocks import BasicBlock, Bottleneck, ResidualBlock, ShortcutType, add_conv_norm_chain
from .convs import ConvBuilder, NamedConvs, global_avg_pool, max_pool

STAGE_WIDTHS = (64, 128, 256, 512)

RESNET_DEPTHS: dict[int, tuple[type[ResidualBlock], tuple[int, int, int, int]]] = {
    10: (BasicBlock, (1, 1, 1, 1)),
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
    200: (Bottleneck, (3, 24, 36, 3)),
}
"""Block type and blocks per stage for each depth of the ResNet family (He et al.; Hara et al. add 10 and 200)."""


def stage_config(
    depth: int, valid: Collection[int] = tuple(RESNET_DEPTHS)
) -> tuple[type[ResidualBlock], tuple[int, ...]]:
    """Block type and blocks per stage for ``depth``; ValueError listing the valid depths otherwise."""
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise TypeError(f"depth must be an int, got {type(depth).__name__}")
    if depth not in valid:
        raise ValueError(f"unknown depth {depth}; expected one of {sorted(valid)}")
    return RESNET_DEPTHS[depth]


class ResNet(nn.Module):
    """A residual network; build it through :func:`models.resnet3d`, :func:`models.resnet2d` and friends.

    Args:
        stem: the stem convs as ``(suffix, conv)`` pairs; each is registered as ``conv1{suffix}`` with a
            BatchNorm ``bn1{suffix}`` and followed by a ReLU.
        block: :class:`~models.blocks.BasicBlock` or :class:`~models.blocks.Bottleneck`.
        layers: number of blocks in each of the four stages.
        widths: ``planes`` of each stage (its output has ``planes * block.expansion`` channels).
        conv_builders: one conv builder per stage (see :mod:`models.convs`).
        dims: 2 for images, 3 for clips.
        num_classes: outputs of ``fc``.
        attention: where and how to build attention (from :func:`models.attention_plan.plan_attention`).
        use_max_pool: apply the stride-2 3-wide max pool after the stem.
        shortcut_type: ``"A"`` or ``"B"``, see :func:`models.blocks.make_shortcut`.
        block_kwargs: extra keyword arguments for every block.

    Input ``(N, C, H, W)`` (dims 2) or ``(N, C, T, H, W)`` (dims 3) of any size; output ``(N, num_classes)``.
    """

    def __init__(
        self,
        stem: NamedConvs,
        block: type[ResidualBlock],
        layers: Sequence[int],
        widths: Sequence[int],
        conv_builders: Sequence[ConvBuilder],
        dims: int,
        num_classes: int,
        attention: AttentionPlan = NO_ATTENTION,
        use_max_pool: bool = True,
        shortcut_type: ShortcutType = "B",
        block_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not (len(layers) == len(widths) == len(conv_builders) == 4):
            raise ValueError("layers, widths and conv_builders must each have 4 entries (one per stage)")
        self.dims = dims
        self.stem_chain = tuple(add_conv_norm_chain(self, 1, stem, dims))
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = max_pool(dims) if use_max_pool else None
        in_planes = stem[-1][1].out_channels
        for stage, (blocks, planes, builder) in enumerate(zip(layers, widths, conv_builders), start=1):
            stride = 1 if stage == 1 else 2
            stage_blocks = []
            for index in range(blocks):
                stage_blocks.append(
                    block(
                        in_planes,
                        planes,
                        stride if index == 0 else 1,
                        builder,
                        dims,
                        shortcut_type=shortcut_type,
                        attention=attention.builder if attention.placement == "block" else None,
                        **dict(block_kwargs or {}),
                    )
                )
                in_planes = planes * block.expansion
            self.add_module(f"layer{stage}", nn.Sequential(*stage_blocks))
            if stage < 4:
                bam = attention.build(in_planes, dims) if attention.placement == "stage" else None
                self.add_module(f"bam{stage}", bam)
        self.avgpool = global_avg_pool(dims)
        self.fc = nn.Linear(in_planes, num_classes)

    def check_input(self, x: Tensor) -> None:
        """Raise ValueError unless ``x`` has the layout and channel count this network expects."""
        if x.dim() != self.dims + 2:
            raise ValueError(
                f"{type(self).__name__} with dims={self.dims} expects a {self.dims + 2}-D input "
                f"{INPUT_LAYOUT[self.dims]}, got shape {tuple(x.shape)}"
            )
        expected = getattr(self, self.stem_chain[0][0]).in_channels
        if x.shape[1] != expected:
            raise ValueError(
                f"{type(self).__name__} expects {expected} input channels in {INPUT_LAYOUT[self.dims]}, "
                f"got shape {tuple(x.shape)}"
            )

    def forward_features(self, x: Tensor) -> Tensor:
        """Everything before the pooling head: ``(N, C, *S)`` -> ``(N, C_out, *S / 32)``."""
        self.check_input(x)
        for conv_name, bn_name in self.stem_chain:
            x = self.relu(getattr(self, bn_name)(getattr(self, conv_name)(x)))
        if self.maxpool is not None:
            x = self.maxpool(x)
        for stage in range(1, 5):
            x = getattr(self, f"layer{stage}")(x)
            bam = getattr(self, f"bam{stage}", None)
            if bam is not None:
                x = bam(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, *S)`` -> logits ``(N, num_classes)``."""
        return self.fc(self.avgpool(self.forward_features(x)).flatten(1))


ClassifierInit = Literal["kaiming", "normal", "default"]


def init_weights(model: nn.Module, classifier: ClassifierInit = "normal") -> None:
    """Initialise like the reference code: convs kaiming-normal (fan_out), BN weight 1 / bias 0.

    The BatchNorm inside a CBAM spatial gate gets weight 0, so every spatial gate starts as the
    constant 0.5 (Jongchan/attention-module). ``classifier`` sets ``fc``: ``"kaiming"``
    (kaiming-normal weight, zero bias; the official 2D code), ``"normal"`` (N(0, 0.01) weight, zero
    bias; torchvision's video ResNets) or ``"default"`` (PyTorch's Linear init; kenshohara).
    """
    for module in model.modules():
        if isinstance(module, tuple(CONV.values())):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, tuple(BATCH_NORM.values())):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    _zero_cbam_spatial_norms(model)
    fc = getattr(model, "fc", None)
    if isinstance(fc, nn.Linear) and classifier != "default":
        if classifier == "kaiming":
            nn.init.kaiming_normal_(fc.weight)
        else:
            nn.init.normal_(fc.weight, 0.0, 0.01)
        nn.init.zeros_(fc.bias)


def _zero_cbam_spatial_norms(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, CBAM) and getattr(module, "spatial_gate", None) is not None:
            for norm in module.spatial_gate.modules():
                if isinstance(norm, tuple(BATCH_NORM.values())):
                    nn.init.zeros_(norm.weight)
