"""cbam3d: CBAM, BAM, SE and ECA attention for 1D, 2D and 3D (video and volumetric) PyTorch models.

>>> import torch
>>> from cbam3d import CBAM
>>> CBAM(64, dims=3)(torch.randn(2, 64, 8, 28, 28)).shape
torch.Size([2, 64, 8, 28, 28])

The attention types are declared in one registry (:mod:`cbam3d.registry`): :func:`register_attention`
adds one, and every ``attention=`` argument of the library (``cbam3d.models``, the commands) takes its
name. The networks live in :mod:`cbam3d.models` (torchvision needed); data, training and visualisation
in :mod:`cbam3d.data`, :mod:`cbam3d.training` and :mod:`cbam3d.viz`.
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

__version__ = "0.1.0"

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
