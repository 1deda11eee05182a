"""Training, evaluation and prediction of video classifiers (the ``train`` extra: Lightning, matplotlib, ...).

Two halves, visible in the layout:

- this package: settings (:class:`TrainConfig`), checkpoint reading (:func:`load_checkpoint`), clips,
  scoring, :func:`evaluate_checkpoint`, :func:`predict_files`, devices, pretrained weights; no Lightning;
- :mod:`cbam3d.training.lightning`: the LightningModule, the DataModule and :func:`train`.

``from cbam3d.training import train`` works too; the Lightning names are imported on first use, so
evaluation and prediction do not import Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

from .checkpoint import ClipSpec, ModelSpec, load_checkpoint
from .config import TrainConfig, UsageError
from .evaluate import evaluate_checkpoint
from .plots import plot_confusion_matrix, plot_training_curves
from .predict import Prediction, predict_files
from .pretrained import PretrainedReport, load_pretrained
from .schedule import warmup_cosine
from .scoring import classification_report, video_scores

_LIGHTNING_NAMES = ("AtomicCheckpointIO", "VideoClassifier", "VideoDataModule", "build_trainer", "train")

__all__ = [
    "ClipSpec",
    "ModelSpec",
    "Prediction",
    "PretrainedReport",
    "TrainConfig",
    "UsageError",
    "classification_report",
    "evaluate_checkpoint",
    "load_checkpoint",
    "load_pretrained",
    "plot_confusion_matrix",
    "plot_training_curves",
    "predict_files",
    "video_scores",
    "warmup_cosine",
    *_LIGHTNING_NAMES,
]


def __getattr__(name: str) -> Any:
    # Lightning takes seconds to import: only the names of its half import it, on first use.
    if name in _LIGHTNING_NAMES:
        value = getattr(importlib.import_module(".lightning", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cbam3d.training' has no attribute {name!r}")
