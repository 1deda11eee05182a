"""From captured maps to one spatio-temporal map and one temporal profile per attention site, at frame size."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cbam3d.attention.hooks import AttentionMaps

__all__ = ["LayerAttention", "attention_layers", "site_label", "upsample_spatial", "upsample_temporal"]


@dataclass(frozen=True)
class LayerAttention:
    """The maps of one attention site (a CBAM block, a BAM module, ...) for one clip.

    Attributes:
        label: a short name for figures, e.g. ``"layer2.0"`` for the site ``"layer2.0.attention"``.
        site: the site's module path.
        spatial: float32 (T', H', W') spatio-temporal map at the site's resolution, or None (SE, channel only).
        temporal: float32 (T',) weight per frame at the site's resolution, or None.
    """

    label: str
    site: str
    spatial: torch.Tensor | None
    temporal: torch.Tensor | None


def site_label(site: str) -> str:
    """``"layer2.0.attention"`` -> ``"layer2.0"``; ``"layer1.0.attention.attention"`` (a retrofit with
    ``identity_init``) -> ``"layer1.0"``; ``"bam1"`` stays; the model itself (``""``) is ``"model"``."""
    parts = site.split(".") if site else []
    while len(parts) > 1 and parts[-1] == "attention":
        parts.pop()
    return ".".join(parts) or "model"


def _shallowest(maps: AttentionMaps, paths: list[str], kind: str) -> torch.Tensor | None:
    """The ``kind`` map of the outermost of ``paths`` that has one (e.g. a factorized gate's combined map
    rather than the map of the spatial gate inside it)."""
    candidates = [path for path in paths if kind in maps[path]]
    if not candidates:
        return None
    return maps[min(candidates, key=lambda path: path.count("."))][kind]


def attention_layers(maps: AttentionMaps, sample: int = 0) -> list[LayerAttention]:
    """One :class:`LayerAttention` per attention site with 3D maps, in the order the sites ran.

    Args:
        maps: from :func:`cbam3d.attention.hooks.capture_attention` on a video network, with ``"spatial"`` and/or
            ``"temporal"`` maps of (N, 1, T', H', W') and (N, 1, T', 1, 1).
        sample: which clip of the batch.

    Raises:
        ValueError: a map is not 3D (N, 1, T', H', W'), or ``sample`` is out of the batch.
    """
    by_site: dict[str, list[str]] = {}
    for path in maps:
        by_site.setdefault(maps.sites[path], []).append(path)
    layers = []
    for site, paths in by_site.items():
        spatial, temporal = _shallowest(maps, paths, "spatial"), _shallowest(maps, paths, "temporal")
        if spatial is None and temporal is None:
            continue
        for name, tensor in (("spatial", spatial), ("temporal", temporal)):
            if tensor is not None and (tensor.ndim != 5 or tensor.shape[1] != 1):
                raise ValueError(
                    f"the {name} map of {site!r} has shape {tuple(tensor.shape)}; expected (N, 1, T, H, W) "
                    "from a video network (dims=3)"
                )
            if tensor is not None and not -tensor.shape[0] <= sample < tensor.shape[0]:
                raise ValueError(f"sample {sample} is out of a batch of {tensor.shape[0]} clips")
        layers.append(
            LayerAttention(
                label=site_label(site),
                site=site,
                spatial=None if spatial is None else spatial[sample, 0].float().cpu(),
                temporal=None if temporal is None else temporal[sample, 0, :, 0, 0].float().cpu(),
            )
        )
    return layers


def upsample_spatial(spatial: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
    """(T', H', W') -> (T, H, W) by trilinear interpolation, cell centres aligned (``align_corners=False``),
    as each cell of a feature map covers a block of the input clip."""
    if spatial.ndim != 3:
        raise ValueError(f"expected a (T, H, W) map, got shape {tuple(spatial.shape)}")
    return F.interpolate(spatial[None, None].float(), size=size, mode="trilinear", align_corners=False)[0, 0]


def upsample_temporal(temporal: torch.Tensor, frames: int) -> torch.Tensor:
    """(T',) -> (T,) by linear interpolation with cell centres aligned, as :func:`upsample_spatial` does in time."""
    if temporal.ndim != 1:
        raise ValueError(f"expected a (T,) profile, got shape {tuple(temporal.shape)}")
    return F.interpolate(temporal[None, None].float(), size=frames, mode="linear", align_corners=False)[0, 0]
