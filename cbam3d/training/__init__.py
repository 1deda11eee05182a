"""Training, evaluation and prediction of video classifiers (the ``train`` extra: Lightning, matplotlib, ...).

Public API::

    from cbam3d.training import (
        TrainConfig, train,             # train(TrainConfig(...)) -> metrics dict (scripts/train.py)
        load_checkpoint,                # (path, map_location="cpu") -> (model in eval mode, info dict)
        evaluate_checkpoint,            # video-level top-1/top-5, per-class accuracy, confusion matrix
        predict_files,                  # top-k labels with probabilities for video files
        VideoClassifier, VideoDataModule, AtomicCheckpointIO, load_pretrained,
    )

Names are imported on first use, so ``load_checkpoint`` and ``predict_files`` do not import Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_LOCATIONS = {
    "TrainConfig": "config",
    "UsageError": "config",
    "train": "trainer",
    "build_trainer": "trainer",
    "load_checkpoint": "checkpoint",
    "ModelSpec": "checkpoint",
    "ClipSpec": "checkpoint",
    "evaluate_checkpoint": "evaluate",
    "predict_files": "predict",
    "Prediction": "predict",
    "VideoClassifier": "module",
    "VideoDataModule": "datamodule",
    "AtomicCheckpointIO": "checkpoint_io",
    "load_pretrained": "pretrained",
    "PretrainedReport": "pretrained",
    "classification_report": "scoring",
    "video_scores": "scoring",
    "plot_training_curves": "plots",
    "plot_confusion_matrix": "plots",
    "warmup_cosine": "schedule",
}

__all__ = sorted(_LOCATIONS)


def __getattr__(name: str) -> Any:
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module 'cbam3d.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LOCATIONS))
