"""Where :func:`~cbam3d.models.add_attention` puts attention in an existing network.

An attention's registered *placement* (``"block"`` or ``"stage"``, see ``cbam3d.attention.registry``) says
which kind of place it takes; this module finds those places: residual branches and stage ends found with
torch.fx, or places named by the caller.

- :func:`residual_norms`: for every residual addition ``branch + shortcut`` the last normalization layer
  on the branch (the CBAM, SE and ECA papers put block attention right after it, before the addition);
- :func:`stage_ends`: the modules whose outputs feed the network's first three spatial downsamplings
  after its first residual addition (the BAM paper puts BAM there, at the bottlenecks);
- :func:`matched_modules`: the modules named by ``fnmatch`` patterns or picked by a predicate.

The graph is traced with a :class:`torch.fx.Tracer` that keeps this package's residual blocks and
attention modules opaque (they place their own attention and check their inputs with Python control
flow). A network whose ``forward`` torch.fx cannot trace is traced child by child instead.
"""

from __future__ import annotations

import fnmatch
import operator
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import fx, nn

from cbam3d.attention.base import AttentionModule

from .blocks import ResidualBlock

NORMS: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.GroupNorm,
)
"""The normalization layers block attention follows (channels-first layers only)."""

# LayerNorms over the channels of a channels-first map, by their usual class names (torchvision's ConvNeXt,
# timm). A plain nn.LayerNorm normalizes the last axes, in vision networks channels-last ones, where a
# channels-first gate would act on the wrong axis: it is not taken.
_CHANNEL_LAYER_NORM_NAMES = ("LayerNorm2d", "LayerNorm3d")


def is_channel_norm(module: nn.Module) -> bool:
    """Whether block attention may follow ``module``: a BatchNorm, InstanceNorm or GroupNorm, or a LayerNorm
    over the channels of an (N, C, *spatial) map (``LayerNorm2d`` / ``LayerNorm3d``)."""
    if isinstance(module, NORMS):
        return True
    return isinstance(module, nn.LayerNorm) and type(module).__name__ in _CHANNEL_LAYER_NORM_NAMES


_LAYER_DIMS: dict[type[nn.Module], int] = {
    nn.BatchNorm1d: 1,
    nn.BatchNorm2d: 2,
    nn.BatchNorm3d: 3,
    nn.InstanceNorm1d: 1,
    nn.InstanceNorm2d: 2,
    nn.InstanceNorm3d: 3,
    nn.Conv1d: 1,
    nn.Conv2d: 2,
    nn.Conv3d: 3,
    nn.ConvTranspose1d: 1,
    nn.ConvTranspose2d: 2,
    nn.ConvTranspose3d: 3,
    nn.MaxPool1d: 1,
    nn.MaxPool2d: 2,
    nn.MaxPool3d: 3,
    nn.AvgPool1d: 1,
    nn.AvgPool2d: 2,
    nn.AvgPool3d: 3,
}
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_ADDITIONS = {operator.add, operator.iadd, torch.add}
_MERGES = _ADDITIONS | {torch.cat, torch.concat}

Predicate = Callable[[str, nn.Module], bool]
"""Picks places by ``(qualified module name, module)``."""


@dataclass(frozen=True)
class StageEnd:
    """A module whose output enters a downsampling stage, and its output channels (None if unknown)."""

    module: str
    channels: int | None


@dataclass(frozen=True)
class ResidualNorm:
    """The last normalization ``norm`` on the residual branch of an addition made in module ``block``
    (qualified names; ``""`` is the model itself)."""

    block: str
    norm: str


class _Tracer(fx.Tracer):
    """Traces through every module but torch.nn's own, channel LayerNorms, this package's residual blocks
    and attention."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return (
            isinstance(m, (ResidualBlock, AttentionModule))
            or is_channel_norm(m)
            or super().is_leaf_module(m, module_qualified_name)
        )


@dataclass(frozen=True)
class _Traced:
    prefix: str
    graph: fx.Graph


def _qualify(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else prefix or name


def _trace(model: nn.Module, prefix: str, failures: list[str]) -> Iterator[_Traced]:
    """The graph of ``model``, or (where torch.fx fails on it) those of its children, recursively."""
    try:
        yield _Traced(prefix, _Tracer().trace(model))
    # torch.fx reports untraceable Python as TraceError, TypeError, RuntimeError, AttributeError...
    except Exception as error:
        failures.append(f"{prefix or type(model).__name__}: {type(error).__name__}: {str(error).splitlines()[0]}")
        for name, child in model.named_children():
            yield from _trace(child, _qualify(prefix, name), failures)


def trace_model(model: nn.Module) -> tuple[list[_Traced], list[str]]:
    """The traced graphs (the whole model, or its largest traceable parts) and why any part failed."""
    failures: list[str] = []
    return list(_trace(model, "", failures)), failures


def _is_addition(node: fx.Node) -> bool:
    function = node.op == "call_function" and node.target in _ADDITIONS
    method = node.op == "call_method" and node.target in ("add", "add_")
    return (function or method) and len(node.args) >= 2 and all(isinstance(a, fx.Node) for a in node.args[:2])


def _is_merge(node: fx.Node) -> bool:
    return _is_addition(node) or (node.op == "call_function" and node.target in _MERGES)


def _ancestors(node: fx.Node) -> set[fx.Node]:
    """``node`` and every node it depends on."""
    seen, todo = {node}, [node]
    while todo:
        for parent in todo.pop().all_input_nodes:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def _walk_back(node: fx.Node, stop: set[fx.Node]) -> list[fx.Node]:
    """The nodes from ``node`` back along each node's first input, up to (excluding) ``stop``, the
    graph's inputs or another merge of two tensors (a residual addition or a concatenation)."""
    path = []
    while node not in stop and node.op in ("call_module", "call_function", "call_method"):
        if path and _is_merge(node):
            break
        path.append(node)
        if not node.all_input_nodes:
            break
        node = node.all_input_nodes[0]
    return path


def _module_calls(path: Sequence[fx.Node]) -> int:
    return sum(node.op == "call_module" for node in path)


def _stack(node: fx.Node) -> list[str]:
    """The qualified names of the modules whose forward made ``node``, outermost first."""
    return [path for path, _ in node.meta.get("nn_module_stack", {}).values()]


def _residual_branch(node: fx.Node) -> list[fx.Node] | None:
    """The residual branch of an addition (the operand with more module calls since the two operands
    split), or None when the operands are equally deep and neither is the shortcut."""
    left, right = node.args[:2]
    left_path = _walk_back(left, _ancestors(right))
    right_path = _walk_back(right, _ancestors(left))
    if _module_calls(left_path) == _module_calls(right_path):
        return None
    return left_path if _module_calls(left_path) > _module_calls(right_path) else right_path


def _residual_additions(model: nn.Module, traced: _Traced) -> Iterator[tuple[fx.Node, ResidualNorm]]:
    for node in traced.graph.nodes:
        if not _is_addition(node):
            continue
        branch = _residual_branch(node)
        norm = next(
            (
                n
                for n in branch or ()
                if n.op == "call_module" and is_channel_norm(model.get_submodule(_qualify(traced.prefix, n.target)))
            ),
            None,
        )
        if norm is not None:
            stack = _stack(node)
            block = _qualify(traced.prefix, stack[-1] if stack else "")
            yield node, ResidualNorm(block, _qualify(traced.prefix, norm.target))


def residual_norms(model: nn.Module, traced: Sequence[_Traced]) -> list[ResidualNorm]:
    """Every residual addition's last branch normalization, once each, in graph order."""
    found: dict[str, ResidualNorm] = {}
    for part in traced:
        for _, place in _residual_additions(model, part):
            found.setdefault(place.norm, place)
    return list(found.values())


def _downsamples(module: nn.Module) -> bool:
    if isinstance(module, _CONVS):
        return any(s > 1 for s in module.stride)
    if isinstance(module, _POOLS):
        stride = module.stride if isinstance(module.stride, Sequence) else (module.stride,)
        return any(s > 1 for s in stride)
    return False


def _output_module(node: fx.Node, nodes: Sequence[fx.Node]) -> str | None:
    """The outermost module (relative name) whose output ``node`` is: the last node made inside it."""
    last: dict[str, fx.Node] = {}
    for other in nodes:
        for path in _stack(other):
            last[path] = other
    return next((path for path in _stack(node) if path and last.get(path) is node), None)


def _stage_input(node: fx.Node, stage: str) -> fx.Node:
    """The first node back from ``node`` (along first inputs) made outside module ``stage``."""
    while stage in _stack(node) and node.all_input_nodes:
        node = node.all_input_nodes[0]
    return node


def _channels_of(model: nn.Module, prefix: str, node: fx.Node) -> int | None:
    """The channels of ``node``'s output: those of the last norm or conv back along first inputs."""
    while node.all_input_nodes:
        if node.op == "call_module":
            channels = layer_channels(model.get_submodule(_qualify(prefix, node.target)))
            if channels is not None:
                return channels
        node = node.all_input_nodes[0]
    return None


def stage_ends(model: nn.Module, traced: Sequence[_Traced], count: int = 3) -> list[StageEnd]:
    """The modules whose outputs enter the first ``count`` downsampling stages after the first residual
    addition (a strided conv or pool starts a stage; its outermost enclosing module is the stage).

    For ResNets these are ``layer1``..``layer3`` (pytorchvideo: the first three ``ResStage``).

    Raises:
        ValueError: fewer than ``count`` such stages.
    """
    for part in traced:
        nodes = list(part.graph.nodes)
        first = next((node for node, _ in _residual_additions(model, part)), None)
        if first is None:
            continue
        ends: list[StageEnd] = []
        stages: set[str] = set()
        for node in nodes[nodes.index(first) :]:
            if node.op != "call_module" or not _downsamples(model.get_submodule(_qualify(part.prefix, node.target))):
                continue
            stage = _stack(node)[0]
            if stage in stages:
                continue
            stages.add(stage)
            feeder = _stage_input(node, stage)
            end = _output_module(feeder, nodes)
            if end is None:
                raise ValueError(
                    f"the input of stage {_qualify(part.prefix, stage)!r} is not the output of one module; "
                    "name the places with at="
                )
            ends.append(StageEnd(_qualify(part.prefix, end), _channels_of(model, part.prefix, feeder)))
            if len(ends) == count:
                return ends
        raise ValueError(
            f"found {len(ends)} downsampling stages after the first residual addition of "
            f"{type(model).__name__}, stage attention needs {count}; name the places with at="
        )
    raise ValueError(f"found no residual addition in {type(model).__name__} to find its stages; use at=")


def matched_modules(model: nn.Module, at: Sequence[str] | Predicate) -> list[str]:
    """The qualified names of the modules ``at`` picks (fnmatch patterns or a predicate), in model order.

    Raises:
        ValueError: a pattern that matches no module, or nothing matched at all.
        TypeError: ``at`` is neither a sequence of strings nor a callable.
    """
    names = [name for name, _ in model.named_modules() if name]
    if callable(at):
        chosen = [name for name, module in model.named_modules() if name and at(name, module)]
        if not chosen:
            raise ValueError(f"the at= predicate picked no module; module names look like {names[:6]}")
        _warn_nested(chosen)
        return chosen
    if isinstance(at, str) or not isinstance(at, Sequence) or not all(isinstance(p, str) for p in at):
        raise TypeError(f'at must be "auto", a list of module-name patterns or a predicate, got {at!r}')
    if not at:
        raise ValueError(f"at= names no module (an empty list); module names look like {names[:6]}")
    for pattern in at:
        if not fnmatch.filter(names, pattern):
            close = [n for n in names if n.split(".")[-1] == pattern.split(".")[-1]][:6] or names[:6]
            raise ValueError(f"at= pattern {pattern!r} matches no module; module names look like {close}")
    chosen = [name for name in names if any(fnmatch.fnmatchcase(name, p) for p in at)]
    _warn_nested(chosen)
    return chosen


def _warn_nested(chosen: Sequence[str]) -> None:
    """Warn when a chosen module holds another chosen one: attention would act at several nesting levels of
    one path (``layer1*`` matches ``layer1``, ``layer1.0`` and ``layer1.0.conv1``; fnmatch's ``*`` crosses
    dots)."""
    picked = set(chosen)
    nested = [(outer, name) for name in chosen for outer in _enclosing_names(name) if outer in picked]
    if nested:
        shown = ", ".join(f"{outer!r} and {inner!r}" for outer, inner in nested[:3])
        warnings.warn(
            f"at= places attention at several nesting levels of one path ({len(nested)} pairs, e.g. {shown}); "
            "to match one level, use '?' for one character per name part (e.g. 'layer1.?' for layer1's blocks) or "
            "a predicate",
            UserWarning,
            stacklevel=4,
        )


def _enclosing_names(name: str) -> list[str]:
    """``"a.b.c"`` -> ``["a", "a.b"]``."""
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


def layer_dims(module: nn.Module) -> int | None:
    """The spatial dims of a conv, pool, BatchNorm or InstanceNorm; None for layers that do not say."""
    return next((dims for kind, dims in _LAYER_DIMS.items() if isinstance(module, kind)), None)


def layer_channels(module: nn.Module) -> int | None:
    """The output channels a norm or conv says it has (``num_features``, ``num_channels``,
    ``out_channels``, a channel LayerNorm's ``normalized_shape``); None for any other module (a container's
    output need not be its last layer's)."""
    if isinstance(module, nn.LayerNorm) and is_channel_norm(module):
        return module.normalized_shape[0]
    for attribute in ("num_features", "num_channels", "out_channels"):
        value = getattr(module, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def model_dims(model: nn.Module) -> int | None:
    """The spatial dims of the first layer of ``model`` that says (see :func:`layer_dims`)."""
    return next((d for m in model.modules() if (d := layer_dims(m)) is not None), None)


def attribute_owner(model: nn.Module, name: str) -> tuple[str, nn.Module]:
    """The nearest module at or above ``name`` that new attributes can join without changing its forward
    (not a Sequential, ModuleList or ModuleDict, which would run or iterate them)."""
    parts = name.split(".") if name else []
    while parts:
        module = model.get_submodule(".".join(parts))
        if not isinstance(module, _CONTAINERS):
            return ".".join(parts), module
        parts.pop()
    if isinstance(model, _CONTAINERS):
        raise ValueError(
            f"cannot register attention on a bare {type(model).__name__}: its forward would run it; "
            "wrap the network in an nn.Module"
        )
    return "", model
