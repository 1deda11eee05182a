"""Seeing what the attention looks at: attention maps of a video network drawn over the clip's frames.

Needs the ``train`` extra (matplotlib, Pillow, PyAV, torchvision); ``import cbam3d`` does not import it.
The maps themselves come from :func:`cbam3d.attention.hooks.capture_attention`, which needs torch alone.

Typical use::

    from cbam3d.viz import visualize_checkpoint

    result = visualize_checkpoint("runs/demo/checkpoints/last.ckpt", "clip.mp4", "attention/")
    result.animation, result.grid, result.temporal   # GIF, frames x layers PNG, temporal profile PNG
    result.predictions                                # [("clap", 0.83), ...]

or, for a network built in code (``ClipSpec`` from :mod:`cbam3d.inference` gives the input it takes)::

    clip = ClipSpec(frames=16, sampling_rate=4, size=112, mean=KINETICS_MEAN, std=KINETICS_STD)
    visualize_video(model, "clip.mp4", "attention/", clip, class_names=names)
"""

from cbam3d.inference.scoring import format_predictions

from .animation import ANIMATION_FORMATS, write_animation
from .frames import CLIP_MODES, VisualClip, clip_indices, read_visual_clip
from .maps import LayerAttention, attention_layers, site_label, upsample_spatial, upsample_temporal
from .render import (
    LayerOverlay,
    PanelLayout,
    animation_frames,
    animation_layout,
    heat_overlay,
    normalize_heat,
    save_grid,
    save_temporal_profiles,
)
from .visualize import Visualization, top_predictions, visualize_checkpoint, visualize_video

__all__ = [
    "ANIMATION_FORMATS",
    "CLIP_MODES",
    "LayerAttention",
    "LayerOverlay",
    "PanelLayout",
    "VisualClip",
    "Visualization",
    "animation_frames",
    "animation_layout",
    "attention_layers",
    "clip_indices",
    "format_predictions",
    "heat_overlay",
    "normalize_heat",
    "read_visual_clip",
    "save_grid",
    "save_temporal_profiles",
    "site_label",
    "top_predictions",
    "upsample_spatial",
    "upsample_temporal",
    "visualize_checkpoint",
    "visualize_video",
    "write_animation",
]
