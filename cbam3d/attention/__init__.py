"""The attention core (torch only): SE, CBAM, BAM and ECA in 1, 2 and 3 dimensions, their registry, the hooks
that capture their maps and the converters of the official 2D checkpoints.

Everything public here is also importable from :mod:`cbam3d` itself (``from cbam3d import CBAM``).
"""

from .bam import BAM, BAMChannelGate, BAMSpatialGate
from .base import AttentionModule
from .cbam import CBAM
from .channel import SE, ChannelGate
from .eca import ECA
from .hooks import AttentionMaps, capture_attention
from .official import from_official, to_official
from .registry import (
    ATTENTION,
    AttentionSpec,
    AttentionType,
    attention_names,
    create_attention,
    get_attention,
    register_attention,
    unregister_attention,
)
from .spatial import FactorizedSpatialGate, SpatialGate, TemporalGate

__all__ = [
    "ATTENTION",
    "BAM",
    "CBAM",
    "ECA",
    "SE",
    "AttentionMaps",
    "AttentionModule",
    "AttentionSpec",
    "AttentionType",
    "BAMChannelGate",
    "BAMSpatialGate",
    "ChannelGate",
    "FactorizedSpatialGate",
    "SpatialGate",
    "TemporalGate",
    "attention_names",
    "capture_attention",
    "create_attention",
    "from_official",
    "get_attention",
    "register_attention",
    "to_official",
    "unregister_attention",
]
