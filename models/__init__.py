"""Video and image classifiers with CBAM / BAM / SE attention.

- :func:`resnet3d`, :func:`r2plus1d`: the 3D-ResNet family (depths 10-200) and its (2+1)D variant.
- :func:`r3d_18`, :func:`mc3_18`, :func:`r2plus1d_18`: torchvision's video ResNets, weight-compatible
  through :func:`from_torchvision` / :func:`to_torchvision`.
- :func:`resnet2d`: the CBAM/BAM papers' ImageNet ResNets, loading official checkpoints through
  ``cbam3d.from_official``.
- :func:`add_attention`: retrofit attention into any existing network (places found by torch.fx or named);
  :func:`inflate`: 2D -> 3D weights.
- :func:`create_model` / :data:`MODEL_NAMES`: networks by name; :func:`register_model` adds one.
- :func:`count_parameters`, :func:`count_gmacs`: size and cost.
- :class:`ResNet`, :class:`ResidualBlock`: the types the builders return and the networks are made of.

The building blocks stay in their modules: :mod:`~cbam3d.models.blocks` (``BasicBlock``, ``Bottleneck``,
``ZeroPadShortcut``), :mod:`~cbam3d.models.retrofit` (``IdentityInitAttention``, ``AttentionAfter``),
:mod:`~cbam3d.models.inflation` (``inflate_tensor``), :mod:`~cbam3d.models.complexity` (``measure``).
"""

from .blocks import ResidualBlock
from .complexity import count_gmacs, count_parameters
from .image import resnet2d
from .inflation import inflate
from .registry import MODEL_NAMES, create_model, model_builder, register_model, unregister_model
from .resnet import ResNet
from .retrofit import add_attention
from .torchvision_keys import from_torchvision, to_torchvision
from .video import mc3_18, r2plus1d, r2plus1d_18, r3d_18, resnet3d

__all__ = [
    "MODEL_NAMES",
    "ResNet",
    "ResidualBlock",
    "add_attention",
    "count_gmacs",
    "count_parameters",
    "create_model",
    "from_torchvision",
    "inflate",
    "mc3_18",
    "model_builder",
    "r2plus1d",
    "r2plus1d_18",
    "r3d_18",
    "register_model",
    "resnet2d",
    "resnet3d",
    "to_torchvision",
    "unregister_model",
]
