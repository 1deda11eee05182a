"""The Lightning half of :mod:`cbam3d.training`: the LightningModule, the DataModule, the atomic checkpoint
writer and :func:`train`, which builds the Trainer. Everything else in :mod:`cbam3d.training` (settings,
checkpoint reading, clips, scoring, evaluation, prediction, devices) works without Lightning.
"""

from .checkpoint_io import AtomicCheckpointIO
from .datamodule import VideoDataModule
from .module import VideoClassifier, topk_correct
from .summary import ComplexitySummary
from .trainer import build_trainer, train

__all__ = [
    "AtomicCheckpointIO",
    "ComplexitySummary",
    "VideoClassifier",
    "VideoDataModule",
    "build_trainer",
    "topk_correct",
    "train",
]
