"""Video-level evaluation: the class scores of every clip and crop of a video are averaged, as in the papers.

Single-label networks score with a softmax over the classes, scored by top-1 / top-5 accuracy; multi-label ones
with a sigmoid per class, scored by mean average precision (:func:`multilabel_report`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from cbam3d.data import collate_clips

__all__ = [
    "VideoScores",
    "class_probabilities",
    "classification_report",
    "format_predictions",
    "mean_average_precision",
    "multilabel_report",
    "predict_clip_scores",
    "video_scores",
]


def format_predictions(predictions: Sequence[tuple[str, float]]) -> str:
    """Top-k ``(name, probability)`` pairs as ``"clap 62.1%, wave 20.3%"``."""
    return ", ".join(f"{name} {100 * p:.1f}%" for name, p in predictions)


@dataclass
class VideoScores:
    """Per-video class probabilities.

    Attributes:
        probabilities: (V, K) mean softmax (multi-label: sigmoid) over the clips and crops of each of the V
            videos scored.
        labels: (V,) true class of each video (a multi-label video's lowest label).
        video_indices: (V,) index of each video in the evaluated record list (videos whose every clip was
            unreadable are absent).
        skipped_clips: clips that could not be decoded.
        targets: (V, K) multi-hot labels of each video when the dataset's items carry ``targets``, else None.
    """

    probabilities: torch.Tensor
    labels: torch.Tensor
    video_indices: torch.Tensor
    skipped_clips: int = 0
    targets: torch.Tensor | None = None


def class_probabilities(logits: torch.Tensor, *, multi_label: bool) -> torch.Tensor:
    """(N, K) logits -> (N, K) float32 probabilities: a softmax over the classes, or with ``multi_label`` an
    independent sigmoid per class."""
    logits = logits.float()
    return logits.sigmoid() if multi_label else logits.softmax(dim=1)


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.inference_mode()
def predict_clip_scores(
    model: nn.Module,
    video: torch.Tensor,
    *,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    multi_label: bool = False,
) -> torch.Tensor:
    """(N, C, T, H, W) clips -> (N, K) probabilities (float32) from ``model`` in eval mode (see
    :func:`class_probabilities`)."""
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    video = video.to(device, non_blocking=True)
    if channels_last:
        video = video.contiguous(memory_format=torch.channels_last_3d)
    with _autocast(device, autocast_dtype):
        logits = model(video)
    return class_probabilities(logits, multi_label=multi_label)


def video_scores(
    model: nn.Module,
    dataset: Dataset,
    *,
    num_videos: int,
    batch_size: int = 8,
    num_workers: int = 0,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    multi_label: bool = False,
) -> VideoScores:
    """Score every clip of an "eval"-mode ``cbam3d.data.VideoClipDataset`` and average the scores per video.

    Args:
        model: a classifier in eval mode (it is put in eval mode), on the device to use.
        dataset: items ``{"video": (C, T, H, W), "label": int, "video_index": int}``; several items per video.
        num_videos: the number of videos the dataset enumerates.
        batch_size, num_workers: data loading.
        autocast_dtype: e.g. ``torch.bfloat16`` on a GPU; None for full precision.
        channels_last: convert the network and its inputs to ``channels_last_3d`` (cuDNN's fastest layout).
        multi_label: sigmoid scores per class instead of a softmax (the dataset's items then carry ``targets``).
    """

    model.eval()
    if channels_last:
        model.to(memory_format=torch.channels_last_3d)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_clips,
        pin_memory=torch.cuda.is_available(),
    )
    sums: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    counts = torch.zeros(num_videos, dtype=torch.long)
    labels = torch.full((num_videos,), -1, dtype=torch.long)
    skipped = 0
    for batch in loader:
        skipped += int(batch.get("skipped", 0))
        if batch["video"].shape[0] == 0:
            continue
        probabilities = (
            predict_clip_scores(
                model,
                batch["video"],
                autocast_dtype=autocast_dtype,
                channels_last=channels_last,
                multi_label=multi_label,
            )
            .cpu()
            .double()
        )
        if sums is None:
            sums = torch.zeros(num_videos, probabilities.shape[1], dtype=torch.float64)
        index = torch.as_tensor(batch["video_index"], dtype=torch.long)
        sums.index_add_(0, index, probabilities)
        counts.index_add_(0, index, torch.ones_like(index))
        labels[index] = torch.as_tensor(batch["label"], dtype=torch.long)
        if "targets" in batch:
            if targets is None:
                targets = torch.zeros(num_videos, probabilities.shape[1])
            targets[index] = batch["targets"].float()
    scored = torch.nonzero(counts > 0).flatten()
    if sums is None or scored.numel() == 0:
        raise ValueError("no clip of any video could be decoded")
    if scored.numel() < num_videos:
        warnings.warn(
            f"{num_videos - scored.numel()} of {num_videos} videos had no readable clip and are left out", stacklevel=2
        )
    probabilities = (sums[scored] / counts[scored, None]).float()
    return VideoScores(
        probabilities, labels[scored], scored, skipped, targets=None if targets is None else targets[scored]
    )


def classification_report(probabilities: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> dict[str, Any]:
    """Top-1 / top-5 accuracy, per-class accuracy and the confusion matrix of (V, K) scores against (V,) labels.

    Returns:
        ``{"top1", "top5", "videos", "per_class": {name: accuracy or None when the class has no video},
        "confusion": K x K list (row = true class, column = predicted)}``.
    """
    if probabilities.dim() != 2 or probabilities.shape[0] != labels.shape[0]:
        raise ValueError(
            f"expected (V, K) scores and (V,) labels, got {tuple(probabilities.shape)} and {tuple(labels.shape)}"
        )
    num_classes = len(class_names)
    if probabilities.shape[1] != num_classes:
        raise ValueError(f"scores have {probabilities.shape[1]} classes but {num_classes} class names were given")
    k = min(5, num_classes)
    top = probabilities.topk(k, dim=1).indices
    predicted = top[:, 0]
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    per_class_total = confusion.sum(dim=1)
    per_class = {
        name: (confusion[i, i].item() / per_class_total[i].item() if per_class_total[i] > 0 else None)
        for i, name in enumerate(class_names)
    }
    videos = labels.shape[0]
    return {
        "top1": (predicted == labels).float().mean().item() if videos else float("nan"),
        "top5": (top == labels[:, None]).any(dim=1).float().mean().item() if videos else float("nan"),
        "videos": videos,
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def mean_average_precision(per_class: Sequence[float | None], has_positive: Sequence[bool]) -> float:
    """The mean of the per-class average precisions over the classes with a positive video (AP is undefined
    for the others); nan when no class has one."""
    kept = [float(ap) for ap, positive in zip(per_class, has_positive) if positive and ap is not None]
    return sum(kept) / len(kept) if kept else float("nan")


def multilabel_report(probabilities: torch.Tensor, targets: torch.Tensor, class_names: list[str]) -> dict[str, Any]:
    """Mean average precision and per-class average precision (scikit-learn's ``average_precision_score``) of
    (V, K) scores against (V, K) multi-hot targets.

    Returns:
        ``{"map", "per_class_ap": {name: AP, or None for a class without a positive video},
        "classes_without_positives": [names left out of the mean], "top1": share of videos whose highest score
        is one of their labels, "videos"}``.
    """
    if probabilities.shape != targets.shape or probabilities.dim() != 2:
        raise ValueError(
            f"expected (V, K) scores and targets, got {tuple(probabilities.shape)} and {tuple(targets.shape)}"
        )
    if probabilities.shape[1] != len(class_names):
        raise ValueError(f"scores have {probabilities.shape[1]} classes but {len(class_names)} class names were given")
    from sklearn.metrics import average_precision_score  # deferred: scikit-learn is slow to import

    truth = (targets > 0).numpy()
    scores = probabilities.double().numpy()
    has_positive = truth.any(axis=0).tolist()
    per_class = [
        float(average_precision_score(truth[:, k], scores[:, k])) if has_positive[k] else None
        for k in range(len(class_names))
    ]
    videos = probabilities.shape[0]
    top = probabilities.argmax(dim=1, keepdim=True)
    return {
        "map": mean_average_precision(per_class, has_positive),
        "per_class_ap": dict(zip(class_names, per_class)),
        "classes_without_positives": [name for name, positive in zip(class_names, has_positive) if not positive],
        "top1": (targets.gather(1, top) > 0).float().mean().item() if videos else float("nan"),
        "videos": videos,
    }
