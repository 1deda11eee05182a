"""cbam3d: CBAM, BAM, SE and ECA attention for 1D, 2D and 3D (video and volumetric) PyTorch models.

>>> import torch
>>> from cbam3d import CBAM
>>> CBAM(64, dims=3)(torch.randn(2, 64, 8, 28, 28)).shape
torch.Size([2, 64, 8, 28, 28])

The top level is the attention core, :mod:`cbam3d.attention` (torch only). The attention types are declared
in one registry: :func:`register_attention` adds one, and every ``attention=`` argument of the library
(``cbam3d.models``, the commands) takes its name. The networks live in :mod:`cbam3d.models` (torchvision
needed); video data in :mod:`cbam3d.data`; evaluation, prediction and export in :mod:`cbam3d.inference`;
training in :mod:`cbam3d.training`; attention maps drawn over video in :mod:`cbam3d.viz`.
"""

# The attention core's public names are the package's: its __all__ is declared once, there.
from .attention import *  # noqa: F403
from .attention import __all__ as __all__

__version__ = "0.1.0"
