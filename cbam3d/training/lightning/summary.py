"""The model summary at the start of training: parameters and the multiply-adds counted by :mod:`cbam3d.models`.

Lightning's own summary is turned off (``enable_model_summary=False``): its FLOPs column reads 0 for our networks.
"""

from __future__ import annotations

import functools

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from cbam3d.inference.checkpoint import build_model
from cbam3d.models.complexity import measure

from .module import VideoClassifier

__all__ = ["ComplexitySummary", "describe_complexity"]


def describe_complexity(module: VideoClassifier) -> str:
    """One line: the network, its parameters (trainable ones too) and its GMACs for one clip (batch 1).

    The multiply-adds are counted on a copy built on the ``meta`` device: no memory, no compute.
    """
    clip = module.clip
    shape = (3, clip.frames, clip.size, clip.size)
    build = functools.partial(build_model, module.model_spec, num_classes=len(module.class_names))
    complexity = measure(build, shape)
    trainable = sum(p.numel() for p in module.model.parameters() if p.requires_grad)
    spec = module.model_spec
    return (
        f"model: {spec.name} with {spec.attention or 'no'} attention, {len(module.class_names)} classes: "
        f"{complexity.parameters:,} parameters ({trainable:,} trainable), {complexity.gmacs:.3g} GMACs "
        f"(multiply-adds) per {'x'.join(map(str, shape))} clip"
    )


class ComplexitySummary(L.Callback):
    """Logs :func:`describe_complexity` once, when fitting starts, on the global-zero process."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and isinstance(pl_module, VideoClassifier):
            rank_zero_info(describe_complexity(pl_module))
