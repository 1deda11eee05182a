"""cbam3d: CBAM, BAM and SE attention for 1D, 2D and 3D (video and volumetric) PyTorch models.

>>> import torch
>>> from cbam3d import CBAM
>>> CBAM(64, dims=3)(torch.randn(2, 64, 8, 28, 28)).shape
torch.Size([2, 64, 8, 28, 28])
"""

from .bam import BAM, BAMChannelGate, BAMSpatialGate
from .base import AttentionModule
from .cbam import CBAM
from .channel import SE, ChannelGate
from .factory import ATTENTION, create_attention
from .hooks import AttentionMaps, capture_attention
from .official import from_official, to_official
from .spatial import FactorizedSpatialGate, SpatialGate, TemporalGate

__version__ = "0.1.0"

__all__ = [
    "ATTENTION",
    "AttentionMaps",
    "AttentionModule",
    "BAM",
    "BAMChannelGate",
    "BAMSpatialGate",
    "CBAM",
    "ChannelGate",
    "FactorizedSpatialGate",
    "SE",
    "SpatialGate",
    "TemporalGate",
    "capture_attention",
    "create_attention",
    "from_official",
    "to_official",
]
