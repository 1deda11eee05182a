"""``predict_files``: the top-k classes of video files with a trained checkpoint or an export (``cbam3d predict``).

Plain PyTorch, no Lightning Trainer: a few evenly spaced centre-cropped clips per file, scored under
``torch.inference_mode`` (or by onnxruntime / ``torch.export`` for an exported model) and averaged.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cbam3d.data import VideoRecord

from .checkpoint import load_checkpoint
from .clips import checkpoint_eval_dataset
from .devices import inference_autocast_dtype, inference_device
from .export import is_exported_model, load_exported
from .scoring import format_predictions, predict_clip_scores

__all__ = ["ClipScorer", "Prediction", "load_scorer", "predict_files"]

#: (N, C, T, H, W) prepared clips -> (N, K) float32 class probabilities.
ClipScorer = Callable[[torch.Tensor], torch.Tensor]


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


def _exported_probabilities(exported: Callable[[torch.Tensor], torch.Tensor], video: torch.Tensor) -> torch.Tensor:
    return exported(video).float().softmax(dim=1)


def load_scorer(path: str | os.PathLike, *, device: str = "auto") -> tuple[ClipScorer, dict[str, Any]]:
    """The clip scorer and info (``class_names``, ``clip``) of a training checkpoint or of an exported
    ``.onnx`` / ``.pt2`` model (which runs on the CPU: onnxruntime, or ``torch.export.load``).

    Raises:
        FileNotFoundError, ValueError: a missing or unusable file; a device other than auto or cpu for an export.
    """
    if is_exported_model(path):
        if device not in ("auto", "cpu"):
            raise ValueError(f"exported models run on the CPU; device must be auto or cpu, got {device!r}")
        exported = load_exported(path)
        return functools.partial(_exported_probabilities, exported), exported.info
    torch_device = inference_device(device)
    model, info = load_checkpoint(path, map_location=torch_device)
    return functools.partial(predict_clip_scores, model, autocast_dtype=inference_autocast_dtype(torch_device)), info


def _predict_one(score: ClipScorer, info: dict[str, Any], path: Path, *, topk: int, clips: int) -> Prediction:

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
    probabilities = score(video).mean(dim=0)
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
) -> list[Prediction]:
    """Classify video files with a checkpoint written by ``cbam3d train`` or a model written by ``cbam3d export``.

    Each file gives ``clips`` evenly spaced clips, centre-cropped to the checkpoint's clip size; their softmax
    scores are averaged. A file that cannot be read gets a :class:`Prediction` with ``error`` set, and the
    others are still classified.

    Raises:
        FileNotFoundError, ValueError: for a missing or unusable checkpoint; ValueError for topk or clips < 1.
    """
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise ValueError(f"topk must be a positive integer, got {topk!r}")
    if isinstance(clips, bool) or not isinstance(clips, int) or clips < 1:
        raise ValueError(f"clips must be a positive integer, got {clips!r}")
    score, info = load_scorer(checkpoint, device=device)
    return [_predict_one(score, info, Path(p), topk=topk, clips=clips) for p in paths]
