"""Capturing the attention maps of any model that contains cbam3d modules, without changing its output.

>>> import torch
>>> from torch import nn
>>> from cbam3d import CBAM
>>> from cbam3d.attention.hooks import capture_attention
>>> model = nn.Sequential(nn.Conv3d(3, 16, 3, padding=1), CBAM(16, dims=3))
>>> with capture_attention(model) as maps:
...     y = model(torch.randn(2, 3, 4, 8, 8))
>>> sorted(maps)
['1.channel_gate', '1.spatial_gate']
>>> {kind: tuple(m.shape) for kind, m in maps["1.spatial_gate"].items()}
{'spatial': (2, 1, 4, 8, 8), 'temporal': (2, 1, 4, 1, 1)}

The maps are what the gates multiply the features by, after the sigmoid, one entry per module path
(the names of ``model.named_modules()``). Each holds the maps that module computes, by kind:

- ``"channel"``: channel weights (N, C, 1, ...) of :class:`~cbam3d.ChannelGate`, :class:`~cbam3d.SE`,
  :class:`~cbam3d.ECA` and :class:`~cbam3d.BAMChannelGate` (the latter's ``sigmoid(Mc)``);
- ``"spatial"``: spatial maps (N, 1, H, W), or spatio-temporal maps (N, 1, T, H, W) in 3D, of
  :class:`~cbam3d.SpatialGate`, :class:`~cbam3d.BAMSpatialGate` (``sigmoid(Ms)``) and
  :class:`~cbam3d.FactorizedSpatialGate`;
- ``"temporal"``: one weight per frame, (N, 1, T, 1, 1): the output of a :class:`~cbam3d.TemporalGate`
  (the temporal half of CBAM's ``spatial_mode="factorized"``), or, for a spatio-temporal map computed in
  one piece (``"joint"`` or ``"framewise"``), that map's mean over H and W;
- ``"combined"``: BAM's factor ``1 + sigmoid(Mc + Ms)`` (N, C, *spatial), as large as the features.

Each module declares the kind of map it reports in its class attribute
:attr:`~cbam3d.AttentionModule.map_kind` (ECA and the channel gates ``"channel"``, the spatial gates
``"spatial"``, ...). A module that leaves it None (e.g. a subclass of :class:`~cbam3d.AttentionModule`
written by a user) has its maps classified by their shape: (N, C, 1, ...) is ``"channel"``, (N, 1, ...)
``"spatial"``, anything else ``"combined"``.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from .base import AttentionModule, MapHook
from .spatial import FactorizedSpatialGate

__all__ = ["KINDS", "AttentionCapture", "AttentionMaps", "capture_attention"]

#: The kinds of maps a capture can record (see the module docstring).
KINDS: tuple[str, ...] = ("channel", "spatial", "temporal", "combined")


class AttentionMaps(dict):
    """The captured maps: module path -> {kind: map}, e.g. ``maps["layer2.0.attention.spatial_gate"]["spatial"]``.

    A module that computes its maps more than once during a capture (several forward passes) keeps the
    latest ones; call ``maps.clear()`` between passes to tell them apart.

    Attributes:
        sites: module path -> the path of its *attention site*, the outermost cbam3d module that contains
            it (e.g. the CBAM block ``"layer2.0.attention"`` for ``"layer2.0.attention.spatial_gate"``), for
            every attention module in the model, so the maps of one block can be grouped.
    """

    def __init__(self, sites: dict[str, str] | None = None) -> None:
        super().__init__()
        self.sites = {} if sites is None else sites

    def of_kind(self, kind: str) -> dict[str, torch.Tensor]:
        """The maps of one kind, path -> map, in the order the modules computed them."""
        _check_kinds([kind])
        return {path: by_kind[kind] for path, by_kind in self.items() if kind in by_kind}


def _check_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    kinds = tuple(kinds)
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown kind of attention map {kind!r}: expected one of {KINDS}")
    if not kinds:
        raise ValueError(f"kinds is empty: name at least one of {KINDS}, or pass None for all")
    return kinds


def _shape_kind(attention_map: torch.Tensor) -> str:
    """The kind of a map from a module of an unknown class, by its shape."""
    if attention_map.shape[1] == 1:
        return "spatial"
    if all(size == 1 for size in attention_map.shape[2:]):
        return "channel"
    return "combined"


def _attention_sites(modules: dict[str, AttentionModule]) -> dict[str, str]:
    """Each attention module's path -> the path of the outermost attention module containing it."""
    sites = {}
    for path in modules:
        parts = path.split(".") if path else []
        ancestors = (".".join(parts[:i]) for i in range(len(parts) + 1))
        sites[path] = next(ancestor for ancestor in ancestors if ancestor in modules)
    return sites


def _has_own_temporal_gate(path: str, module: nn.Module, modules: dict[str, AttentionModule]) -> bool:
    """True for a factorized gate and the spatial gate inside it: their temporal profile is the
    :class:`TemporalGate`'s, not a mean of their spatial map."""
    parent = modules.get(path.rpartition(".")[0]) if path else None
    return isinstance(module, FactorizedSpatialGate) or isinstance(parent, FactorizedSpatialGate)


class AttentionCapture:
    """Records the attention maps of every cbam3d module in ``model`` while its hooks are registered.

    Use :func:`capture_attention` to make one. As a context manager (entered once: a second ``with`` raises a
    RuntimeError) it returns its :class:`AttentionMaps` and removes its hooks on exit, also when the block
    raises; outside a ``with`` block call :meth:`remove`.
    """

    def __init__(
        self,
        model: nn.Module,
        kinds: str | Iterable[str] | None = None,
        *,
        device: torch.device | str | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"capture_attention expects an nn.Module, got {type(model).__name__}")
        self.kinds = KINDS if kinds is None else _check_kinds([kinds] if isinstance(kinds, str) else kinds)
        self.device = None if device is None else torch.device(device)
        modules = {path: m for path, m in model.named_modules() if isinstance(m, AttentionModule)}
        if not modules:
            raise ValueError(
                f"{type(model).__name__} contains no cbam3d attention module (SE, CBAM, BAM, ECA or their gates) "
                "whose maps could be captured"
            )
        self.maps = AttentionMaps(_attention_sites(modules))
        self._handles: list[RemovableHandle] = []
        self._entered = False
        for path, module in modules.items():
            kind = module.map_kind
            derives_temporal = not _has_own_temporal_gate(path, module, modules)
            wanted = {kind, "temporal"} if kind == "spatial" and derives_temporal else {kind}
            if kind is None or wanted & set(self.kinds):
                self._handles.append(module.register_map_hook(self._hook(path, kind, derives_temporal)))

    def _hook(self, path: str, kind: str | None, derives_temporal: bool) -> MapHook:
        def record(module: nn.Module, attention_map: torch.Tensor) -> None:
            map_kind = kind or _shape_kind(attention_map)
            entry = {}
            if map_kind in self.kinds:
                entry[map_kind] = self._keep(attention_map)
            if map_kind == "spatial" and derives_temporal and attention_map.ndim == 5 and "temporal" in self.kinds:
                entry["temporal"] = self._keep(attention_map.detach().mean(dim=(3, 4), keepdim=True))
            if entry:
                self.maps.setdefault(path, {}).update(entry)

        return record

    def _keep(self, attention_map: torch.Tensor) -> torch.Tensor:
        # A copy: the map stays as it was even if the model later changes its tensor in place.
        return attention_map.detach().to(device=self.device, copy=True)

    def remove(self) -> None:
        """Unregister the hooks; the maps recorded so far stay in :attr:`maps`."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> AttentionMaps:
        # A second entry would record nothing (the first exit removed the hooks) and hand back the first pass's
        # maps as if they were new: refused, rather than clearing maps a caller may still hold.
        if self._entered:
            raise RuntimeError(
                "this capture_attention was already entered once (its hooks are removed on exit); make a new one "
                "for each pass: with capture_attention(model) as maps: ..."
            )
        self._entered = True
        return self.maps

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.remove()


def capture_attention(
    model: nn.Module,
    kinds: str | Iterable[str] | None = None,
    *,
    device: torch.device | str | None = None,
) -> AttentionCapture:
    """Record the attention maps of every cbam3d module in ``model`` (see the module docstring).

    ``with capture_attention(model) as maps: model(x)`` fills ``maps`` (an :class:`AttentionMaps`,
    module path -> {kind: map}) and removes the hooks on leaving the block, even on an error. The maps are
    detached copies; the model's outputs and gradients are exactly what they are without the capture.
    It works on any model: this package's networks, torchvision or pytorchvideo networks retrofitted with
    ``cbam3d.models.add_attention``, or a model of your own.

    Args:
        model: any module containing cbam3d attention modules.
        kinds: record only these kinds (one or several of :data:`KINDS`); None records all. Leaving out
            ``"combined"`` saves memory with BAM, whose combined factor is as large as the features.
        device: move the maps there (e.g. ``"cpu"``); None keeps them where they were computed.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: ``model`` has no cbam3d attention module, or ``kinds`` names an unknown kind.
    """
    return AttentionCapture(model, kinds, device=device)
