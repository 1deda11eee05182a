"""Retrofit: put attention into an existing residual network, in place, leaving its weights untouched.

Supported networks: this package's, torchvision's 2D ResNets (``torchvision.models.resnet*``) and video
ResNets (``r3d_18``, ``mc3_18``, ``r2plus1d_18``), and pytorchvideo's ``create_resnet``. Block attention
(SE, CBAM, custom) goes on each residual branch after its last BatchNorm and before the addition; BAM
goes after stages 1-3. The new modules are registered as ``<block>.attention`` and ``bam1``..``bam3``,
so existing parameter names do not change and a pretrained state_dict still loads by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from cbam3d.after_norm import attend_after_norm
from cbam3d.layers import BATCH_NORM
from cbam3d.registry import AttentionBuilder, AttentionSpec

from .attention import plan_attention
from .blocks import ResidualBlock
from .resnet import ResNet

_FOREIGN_BLOCKS = {
    ("torchvision.models.resnet", "BasicBlock"),
    ("torchvision.models.resnet", "Bottleneck"),
    ("torchvision.models.video.resnet", "BasicBlock"),
    ("torchvision.models.video.resnet", "Bottleneck"),
    ("pytorchvideo.models.resnet", "ResBlock"),
}
_NOT_ON_BRANCH = {"downsample", "branch1_conv", "branch1_norm", "attention"}
_NORM_DIMS = {norm: dims for dims, norm in BATCH_NORM.items()}


class IdentityInitAttention(nn.Module):
    """``x + scale * (attention(x) - x)`` with a learnable scalar ``scale`` that starts at 0.

    At initialisation the output is exactly ``x``, so a pretrained network retrofitted with these
    computes what it computed before. ``d out / d scale = attention(x) - x`` is not zero, so ``scale``
    moves on the first optimiser step and the attention's own parameters train from then on; at
    ``scale = 1`` the module is the plain attention. Input and output ``(N, C, *S)``.
    """

    def __init__(self, attention: nn.Module) -> None:
        super().__init__()
        self.attention = attention
        self.scale = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.scale * (self.attention(x) - x)


class _AttentionAfter:
    """Forward hook that passes a module's output through ``owner.<name>`` (looked up at call time)."""

    def __init__(self, owner: nn.Module, name: str) -> None:
        self.owner = owner
        self.name = name

    def __call__(self, module: nn.Module, inputs: Any, output: Tensor) -> Tensor:
        return attend_after_norm(getattr(self.owner, self.name), module, inputs[0], output)


def _is_foreign_block(module: nn.Module) -> bool:
    return (type(module).__module__, type(module).__name__) in _FOREIGN_BLOCKS


def _last_branch_norm(block: nn.Module) -> nn.Module:
    """The last BatchNorm of the residual branch (registration order; shortcut and attention excluded)."""
    last = None
    for name, child in block.named_children():
        if name in _NOT_ON_BRANCH:
            continue
        for module in child.modules():
            if type(module) in _NORM_DIMS:
                last = module
    if last is None:
        raise ValueError(f"{type(block).__name__} has no BatchNorm on its residual branch to place attention after")
    return last


def _build_like(builder: AttentionBuilder, norm: nn.Module, identity_init: bool) -> nn.Module:
    module = builder(norm.num_features, _NORM_DIMS[type(norm)])
    module = module.to(device=norm.weight.device, dtype=norm.weight.dtype)
    return IdentityInitAttention(module) if identity_init else module


def _check_free(owner: nn.Module, name: str, where: str) -> None:
    if getattr(owner, name, None) is not None:
        raise ValueError(f"{where} already has attention ({name}); add_attention does not stack attention")


def _residual_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, ResidualBlock) or _is_foreign_block(m)]


def _stages(model: nn.Module) -> list[nn.Module]:
    """Stages 1-3: ``layer1``..``layer3`` (torchvision, ours) or pytorchvideo's first three ``ResStage``."""
    if all(isinstance(getattr(model, f"layer{i}", None), nn.Module) for i in (1, 2, 3)):
        return [getattr(model, f"layer{i}") for i in (1, 2, 3)]
    stages = [m for m in model.modules() if type(m).__name__ == "ResStage"]
    if len(stages) >= 3:
        return stages[:3]
    raise ValueError(f"cannot find stages 1-3 (layer1..layer3 or ResStage) in {type(model).__name__} for BAM")


def add_attention(
    model: nn.Module,
    attention: AttentionSpec,
    attention_kwargs: Mapping[str, Any] | None = None,
    *,
    identity_init: bool = False,
) -> nn.Module:
    """Add attention to ``model`` in place and return it; existing parameters are not touched.

    Args:
        model: one of this package's networks, a torchvision 2D or video ResNet, or a pytorchvideo
            ``create_resnet`` network.
        attention: ``"se"`` / ``"cbam"`` / a callable ``(channels, dims) -> nn.Module`` (one module per
            residual block, registered as ``block.attention``, acting after the branch's last BatchNorm
            and before the residual addition), or ``"bam"`` (after stages 1-3, registered as
            ``model.bam1``..``bam3``).
        attention_kwargs: passed to each attention module.
        identity_init: wrap every new module in :class:`IdentityInitAttention`
            (``x + scale * (attention(x) - x)``, ``scale`` a learnable scalar starting at 0), so the
            retrofitted model first computes exactly what the original did. Use it to fine-tune a
            pretrained network: training starts from the pretrained function instead of one perturbed
            by freshly initialised gates (a sigmoid gate is never the identity). Parameter names are
            then ``...attention.attention.*`` plus ``...attention.scale``.

    For foreign networks the module is applied through a forward hook on that last BatchNorm (BAM: on
    the stage), so it survives ``copy.deepcopy`` and pickling of the whole model but not ``torch.jit``.

    Raises:
        ValueError: unknown attention name, no residual blocks found, or a block / stage that already
            has attention.
    """
    plan = plan_attention(attention, attention_kwargs)
    if plan.placement == "none":
        raise ValueError("add_attention needs an attention: 'se', 'cbam', 'bam' or a callable")
    if plan.placement == "stage":
        _add_stage_attention(model, plan.builder, identity_init)
    else:
        _add_block_attention(model, plan.builder, identity_init)
    return model


def _add_block_attention(model: nn.Module, builder: AttentionBuilder, identity_init: bool) -> None:
    blocks = _residual_blocks(model)
    if not blocks:
        raise ValueError(
            f"found no residual blocks in {type(model).__name__}; supported: this package's networks, "
            "torchvision ResNets and video ResNets, pytorchvideo create_resnet"
        )
    for name, block in blocks:
        _check_free(block, "attention", f"block {name!r}")
    for _, block in blocks:
        norm = _last_branch_norm(block)
        block.attention = _build_like(builder, norm, identity_init)
        if not isinstance(block, ResidualBlock):
            norm.register_forward_hook(_AttentionAfter(block, "attention"))


def _add_stage_attention(model: nn.Module, builder: AttentionBuilder, identity_init: bool) -> None:
    stages = _stages(model)
    for index in (1, 2, 3):
        _check_free(model, f"bam{index}", type(model).__name__)
    for index, stage in enumerate(stages, start=1):
        blocks = _residual_blocks(stage)
        if not blocks:
            raise ValueError(f"stage {index} of {type(model).__name__} holds no residual blocks")
        norm = _last_branch_norm(blocks[-1][1])
        setattr(model, f"bam{index}", _build_like(builder, norm, identity_init))
        if not isinstance(model, ResNet):
            stage.register_forward_hook(_AttentionAfter(model, f"bam{index}"))
