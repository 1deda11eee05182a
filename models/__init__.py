"""Video and image classifiers with CBAM / BAM / SE attention.

- :func:`resnet3d`, :func:`r2plus1d`: the 3D-ResNet family (depths 10-200) and its (2+1)D variant.
- :func:`r3d_18`, :func:`mc3_18`, :func:`r2plus1d_18`: torchvision's video ResNets, weight-compatible
  through :func:`from_torchvision`.
- :func:`resnet2d`: the CBAM/BAM papers' ImageNet ResNets, loading official checkpoints through
  ``cbam3d.from_official``.
- :func:`add_attention`: retrofit attention into any existing network (places found by torch.fx or named);
  :func:`inflate`: 2D -> 3D weights.
- :func:`create_model` / :data:`MODEL_NAMES`: video models by name.
"""

from .attention_plan import AttentionPlan, plan_attention
from .blocks import BasicBlock, Bottleneck, ResidualBlock, ZeroPadShortcut
from .complexity import count_gmacs, count_parameters
from .image import resnet2d
from .inflate import inflate, inflate_tensor
from .registry import MODEL_NAMES, create_model
from .resnet import ResNet, init_weights
from .retrofit import AttentionAfter, IdentityInitAttention, add_attention
from .torchvision_keys import from_torchvision, to_torchvision
from .video import mc3_18, r2plus1d, r2plus1d_18, r3d_18, resnet3d

__all__ = [
    "MODEL_NAMES",
    "AttentionAfter",
    "AttentionPlan",
    "BasicBlock",
    "Bottleneck",
    "IdentityInitAttention",
    "ResNet",
    "ResidualBlock",
    "ZeroPadShortcut",
    "add_attention",
    "count_gmacs",
    "count_parameters",
    "create_model",
    "from_torchvision",
    "inflate",
    "inflate_tensor",
    "init_weights",
    "mc3_18",
    "plan_attention",
    "r2plus1d",
    "r2plus1d_18",
    "r3d_18",
    "resnet2d",
    "resnet3d",
    "to_torchvision",
]
