"""Training video classifiers (the ``train`` extra: Lightning, matplotlib, ...).

- settings (:class:`TrainConfig`), the learning-rate schedule, seeding, pretrained weights and the ablation
  command: no Lightning;
- :mod:`cbam3d.training.lightning`: the LightningModule, the DataModule and :func:`train`.

Reading checkpoints, evaluation, prediction and export are :mod:`cbam3d.inference`, which needs no Lightning.
``from cbam3d.training import train`` works; the Lightning names are imported on first use, so the settings
and ``cbam3d train --help`` do not wait for Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

from .curves import plot_training_curves
from .pretrained import PretrainedReport, load_pretrained
from .schedule import warmup_cosine
from .settings import TrainConfig

_LIGHTNING_NAMES = ("AtomicCheckpointIO", "VideoClassifier", "VideoDataModule", "build_trainer", "train")

__all__ = [
    "PretrainedReport",
    "TrainConfig",
    "load_pretrained",
    "plot_training_curves",
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
