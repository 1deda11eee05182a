"""Retrofit: put attention into an existing network, in place, leaving its weights untouched.

``at="auto"`` finds the places in any network torch.fx can trace (see :mod:`models.places`): block
attention (SE, CBAM, ECA, registered "block" ones) goes on the residual branch of every residual
addition, right after the branch's last normalization layer and before the addition; stage attention
(BAM) goes on the feature map entering each of the first three downsampling stages. ``at=`` names the
places instead, by module-name patterns or a predicate, for networks without residual additions (plain
UNets, DenseNets) or other placements.

The new modules are attributes (``<block>.attention``, ``<owner>.<path>_attention``, ``bam1``..``bam3``)
applied by a forward hook (:class:`AttentionAfter`) on the module whose output they act on, so existing
parameter names do not change and a pretrained state_dict still loads by name. This package's residual
blocks and ResNets use their own ``attention`` and ``bam1``..``bam3`` slots instead of hooks.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from cbam3d.attention.after_norm import attend_after_norm
from cbam3d.attention.registry import AttentionBuilder, AttentionSpec

from .attention_plan import plan_attention
from .blocks import ResidualBlock
from .places import (
    Predicate,
    attribute_owner,
    layer_channels,
    layer_dims,
    matched_modules,
    model_dims,
    residual_norms,
    stage_ends,
    trace_model,
)
from .resnet import ResNet

Places = Literal["auto"] | Sequence[str] | Predicate
"""What ``add_attention``'s ``at`` takes: ``"auto"``, module-name patterns or a predicate."""


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


class AttentionAfter:
    """Forward hook that passes a module's output ``(N, C, *S)`` through ``owner.<name>``.

    The attention is looked up at call time, so the hook follows the model through ``copy.deepcopy``
    and pickling (it is a plain class, not a closure) and through replacing ``owner.<name>``.
    """

    def __init__(self, owner: nn.Module, name: str) -> None:
        self.owner = owner
        self.name = name

    def __call__(self, module: nn.Module, inputs: tuple[Any, ...], output: Tensor) -> Tensor:
        attention = getattr(self.owner, self.name)
        if not inputs:  # a module called with keyword arguments only: nothing to recompute from
            return attention(output)
        return attend_after_norm(attention, module, inputs[0], output)


def add_attention(
    model: nn.Module,
    attention: AttentionSpec,
    attention_kwargs: Mapping[str, Any] | None = None,
    *,
    at: Places = "auto",
    identity_init: bool = False,
) -> nn.Module:
    """Add attention to ``model`` in place and return it; existing parameters are not touched.

    Args:
        model: any network; with ``at="auto"`` one whose ``forward`` torch.fx can trace (or whose
            children it can), or one of this package's networks.
        attention: a registered name (``"se"``, ``"cbam"``, ``"eca"``, ``"bam"``, yours) or a callable
            ``(channels, dims) -> nn.Module``.
        attention_kwargs: passed to each attention module.
        at: where the modules go.

            - ``"auto"``: block attention after the last normalization layer (BatchNorm, InstanceNorm,
              GroupNorm, a channel LayerNorm: :func:`cbam3d.models.places.is_channel_norm`) of the
              residual branch of every residual addition, before the addition,
              registered as ``<block>.attention`` (``<block>`` holds the addition); stage attention
              (BAM) on the output of the module that feeds each of the first three downsampling
              stages after the first residual addition (``layer1``..``layer3`` of a ResNet),
              registered as ``model.bam1``..``bam3``.
            - a list of ``fnmatch`` patterns over module names (``["encoder.*.conv2"]``) or a
              predicate ``(name, module) -> bool``: on the output of each matched module, registered
              as ``<owner>.<path>_attention`` on the nearest enclosing module that is not a container.
              ``*`` also matches dots, so ``layer1*`` picks ``layer1``, its blocks and their layers: a
              choice that nests one picked module in another is warned about; ``layer1.?`` picks the
              blocks only.

            Channels and dims come from the layer (``num_features``, ``num_channels``,
            ``out_channels``; the conv or norm class), else channels from the first input (lazy:
            run one batch before exporting or loading a state_dict) and dims from the model's first conv.
        identity_init: wrap every new module in :class:`IdentityInitAttention`
            (``x + scale * (attention(x) - x)``, ``scale`` a learnable scalar starting at 0), so the
            retrofitted model first computes exactly what the original did. Use it to fine-tune a
            pretrained network. Parameter names are then ``...attention.attention.*`` plus
            ``...attention.scale``.

    The hooks survive ``copy.deepcopy``, pickling, ``torch.export`` and ONNX (dynamo) export, not
    ``torch.jit``.

    Raises:
        ValueError: unknown attention name; under ``at="auto"`` no residual addition with a
            normalization layer on its branch (or too few stages for BAM); an empty ``at`` list or an ``at``
            pattern that matches nothing; a place that already has attention.
        TypeError: ``at`` is neither ``"auto"``, a list of strings nor a callable; ``model`` is wrapped in
            ``DistributedDataParallel``, ``DataParallel`` or ``torch.compile`` (add attention before wrapping:
            a wrapper built before does not know the new parameters, DDP would not reduce their gradients).
    """
    _refuse_wrapped(model)
    plan = plan_attention(attention, attention_kwargs)
    if plan.placement == "none":
        raise ValueError("add_attention needs an attention: 'se', 'cbam', 'eca', 'bam' or a callable")
    if isinstance(at, str):
        if at != "auto":
            raise ValueError(f'at must be "auto", a list of module-name patterns or a predicate, got {at!r}')
        if plan.placement == "stage":
            _add_stage_attention(model, plan.builder, identity_init)
        else:
            _add_block_attention(model, plan.builder, identity_init)
    else:
        _add_named_attention(model, plan.builder, matched_modules(model, at), identity_init)
    return model


def _refuse_wrapped(model: nn.Module) -> None:
    """Refuse a network inside a wrapper that captured its parameters or graph when it was made."""
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        inner = "model.module"
    elif hasattr(model, "_orig_mod"):  # torch.compile's OptimizedModule
        inner = "model._orig_mod"
    else:
        return
    raise TypeError(
        f"add_attention got a {type(model).__name__}, which wraps the network ({inner}): add attention before "
        "wrapping it (DistributedDataParallel would not reduce the new parameters' gradients, and a compiled "
        "graph would not run them), then wrap the result"
    )


def _has_attention_hook(module: nn.Module) -> bool:
    return any(isinstance(hook, AttentionAfter) for hook in module._forward_hooks.values())


def _build(
    model: nn.Module, builder: AttentionBuilder, layer: nn.Module, channels: int | None, identity_init: bool
) -> nn.Module:
    """One attention module for the output of ``layer``, on its device and in its floating dtype."""
    dims = layer_dims(layer) or model_dims(model)
    if dims is None:
        raise ValueError(f"cannot tell the spatial dims of {type(layer).__name__}: the model has no conv or norm")
    module = builder(channels, dims)
    tensors = itertools.chain(layer.parameters(), layer.buffers(), model.parameters())
    like = next((t for t in tensors if t.is_floating_point()), None)
    if like is not None:
        module = module.to(device=like.device, dtype=like.dtype)
    module = IdentityInitAttention(module) if identity_init else module
    return module.train(layer.training)


def _check_free(module: nn.Module, where: str) -> None:
    if _has_attention_hook(module):
        raise ValueError(f"{where} already has attention; add_attention does not stack attention")


def _attach(model: nn.Module, target: str, owner_path: str, name: str, attention: nn.Module) -> None:
    """Register ``attention`` as ``<owner_path>.<name>`` and apply it to the output of module ``target``."""
    owner = model.get_submodule(owner_path)
    if hasattr(owner, name):
        raise ValueError(f"{owner_path or type(model).__name__} already has an attribute {name!r}")
    owner.add_module(name, attention)
    model.get_submodule(target).register_forward_hook(AttentionAfter(owner, name))


def _no_place_error(model: nn.Module, failures: Sequence[str]) -> ValueError:
    why = f" (torch.fx could not trace {failures[0]})" if failures else ""
    names = [name for name, _ in model.named_modules() if name][:6]
    return ValueError(
        f"found no residual addition with a normalization layer on its branch in {type(model).__name__}{why}; "
        f"name the places with at=[module-name patterns] or a predicate; module names look like {names}"
    )


def _add_block_attention(model: nn.Module, builder: AttentionBuilder, identity_init: bool) -> None:
    ours = [(name, m) for name, m in model.named_modules() if isinstance(m, ResidualBlock)]
    traced, failures = trace_model(model)
    places = residual_norms(model, traced)
    if not ours and not places:
        raise _no_place_error(model, failures)
    for name, block in ours:
        if block.attention is not None:
            raise ValueError(f"block {name!r} already has attention; add_attention does not stack attention")
    for place in places:
        _check_free(model.get_submodule(place.norm), f"the branch of {place.norm!r}")
    for _, block in ours:
        norm = _last_norm(block)
        block.attention = _build(model, builder, norm, norm.num_features, identity_init)
    for place in places:
        norm = model.get_submodule(place.norm)
        owner_path, owner = attribute_owner(model, place.block)
        name = "attention" if not hasattr(owner, "attention") else _relative_name(owner_path, place.norm)
        _attach(model, place.norm, owner_path, name, _build(model, builder, norm, layer_channels(norm), identity_init))


def _last_norm(block: ResidualBlock) -> nn.Module:
    """The BatchNorm that ends the residual branch of one of this package's blocks."""
    return getattr(block, block.chain[-1][1])


def _relative_name(owner_path: str, target: str) -> str:
    """``<target relative to owner>_attention`` with dots as underscores (a valid attribute name)."""
    relative = target[len(owner_path) + 1 :] if owner_path else target
    return relative.replace(".", "_") + "_attention"


def _add_stage_attention(model: nn.Module, builder: AttentionBuilder, identity_init: bool) -> None:
    names = [f"bam{index}" for index in (1, 2, 3)]
    if isinstance(model, ResNet):
        if any(getattr(model, name) is not None for name in names):
            raise ValueError(f"{type(model).__name__} already has attention (bam1..bam3)")
        for index, name in enumerate(names, start=1):
            stage = getattr(model, f"layer{index}")
            setattr(model, name, _build(model, builder, stage, _last_norm(stage[-1]).num_features, identity_init))
        return
    traced, failures = trace_model(model)
    if not residual_norms(model, traced):
        raise _no_place_error(model, failures)
    ends = stage_ends(model, traced, count=len(names))
    for end in ends:
        _check_free(model.get_submodule(end.module), f"stage end {end.module!r}")
    attribute_owner(model, "")  # refuses a bare Sequential or ModuleList, whose forward would run bam1..bam3
    for name, end in zip(names, ends):
        stage = model.get_submodule(end.module)
        _attach(model, end.module, "", name, _build(model, builder, stage, end.channels, identity_init))


def _add_named_attention(
    model: nn.Module, builder: AttentionBuilder, targets: Sequence[str], identity_init: bool
) -> None:
    for target in targets:
        _check_free(model.get_submodule(target), f"module {target!r}")
    for target in targets:
        layer = model.get_submodule(target)
        owner_path, _ = attribute_owner(model, target.rpartition(".")[0])
        attention = _build(model, builder, layer, layer_channels(layer), identity_init)
        _attach(model, target, owner_path, _relative_name(owner_path, target), attention)
