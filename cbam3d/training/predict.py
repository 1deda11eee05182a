"""``predict_files``: the top-k classes of video files with a trained checkpoint (scripts/predict.py).

Plain PyTorch, no Lightning Trainer: a few evenly spaced centre-cropped clips per file, scored under
``torch.inference_mode`` and averaged.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cbam3d.data import VideoRecord

from .checkpoint import load_checkpoint
from .clips import checkpoint_eval_dataset
from .devices import inference_autocast_dtype, inference_device
from .scoring import format_predictions, predict_clip_scores

__all__ = ["Prediction", "predict_files"]


@dataclass
class Prediction:
    """The result for one file.

    Attributes:
        path: the video file.
        top: ``(class name, probability)`` pairs, most likely first; empty when the file could not be read.
        error: why the file could not be read, or None.
    """

    path: Path
    top: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None

    def format(self) -> str:
        """``path: name 97.1%, name 1.2%, ...`` or ``path: could not be read (...)``."""
        if self.error is not None:
            return f"{self.path}: could not be read ({self.error})"
        return f"{self.path}: {format_predictions(self.top)}"


def _predict_one(
    model: nn.Module, info: dict[str, Any], path: Path, *, topk: int, clips: int, autocast_dtype: torch.dtype | None
) -> Prediction:

    if not path.is_file():
        return Prediction(path, error="no such file")
    dataset = checkpoint_eval_dataset([VideoRecord(path, 0)], info["clip"], clips_per_video=clips)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = [dataset[i] for i in range(len(dataset))]
    if any(item is None for item in items):
        reason = str(caught[-1].message) if caught else "decoding failed"
        return Prediction(path, error=reason)
    video = torch.stack([item["video"] for item in items])
    probabilities = predict_clip_scores(model, video, autocast_dtype=autocast_dtype).mean(dim=0)
    values, indices = probabilities.topk(min(topk, probabilities.numel()))
    names = info["class_names"]
    return Prediction(path, [(names[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())])


def predict_files(
    paths: Sequence[str | os.PathLike],
    checkpoint: str | os.PathLike,
    *,
    topk: int = 5,
    clips: int = 3,
    device: str = "auto",
    compile: bool = False,
) -> list[Prediction]:
    """Classify video files with a checkpoint written by ``scripts/train.py``.

    Each file gives ``clips`` evenly spaced clips, centre-cropped to the checkpoint's clip size; their softmax
    scores are averaged. A file that cannot be read gets a :class:`Prediction` with ``error`` set, and the
    others are still classified. ``compile``: ``torch.compile`` the network (in place: ``nn.Module.compile``).

    Raises:
        FileNotFoundError, ValueError: for a missing or unusable checkpoint; ValueError for topk or clips < 1.
    """
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise ValueError(f"topk must be a positive integer, got {topk!r}")
    if isinstance(clips, bool) or not isinstance(clips, int) or clips < 1:
        raise ValueError(f"clips must be a positive integer, got {clips!r}")
    torch_device = inference_device(device)
    model, info = load_checkpoint(checkpoint, map_location=torch_device)
    if compile:
        model.compile()
    autocast_dtype = inference_autocast_dtype(torch_device)
    return [_predict_one(model, info, Path(p), topk=topk, clips=clips, autocast_dtype=autocast_dtype) for p in paths]
