"""``predict_files``: the top-k classes of videos (files or frame folders) with a trained checkpoint or an export
(``cbam3d predict``); for a multi-label network, also the classes scored above a threshold.

Plain PyTorch, no Lightning Trainer: a few evenly spaced centre-cropped clips per file, scored under
``torch.inference_mode`` (or by onnxruntime / ``torch.export`` for an exported model) and averaged.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cbam3d.data import VIDEO_EXTENSIONS, VideoDecodeError, VideoRecord, videos_in

from .checkpoint import is_multi_label, load_checkpoint
from .datasets import checkpoint_eval_dataset
from .devices import inference_autocast_dtype, inference_device, prepare_for_clips
from .export import is_exported_model, load_exported
from .plots import plot_timeline
from .scoring import class_probabilities, format_predictions, predict_clip_scores
from .windows import score_windows, write_windows_csv

__all__ = ["ClipScorer", "Prediction", "WindowPrediction", "load_scorer", "predict_files", "write_window_files"]

#: The most clips per file (per window): far denser than any use needs, and every clip is decoded and held
#: until the file's are averaged, so ``--clips 100000000000`` would exhaust memory rather than finish.
MAX_CLIPS = 1000

#: (N, C, T, H, W) prepared clips -> (N, K) float32 class probabilities.
ClipScorer = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class WindowPrediction:
    """One window of a video scored with ``window``: ``start`` and ``end`` in seconds, its top-k
    ``(class name, probability)`` pairs and the probability of every class."""

    start: float
    end: float
    top: list[tuple[str, float]]
    probabilities: dict[str, float]


@dataclass
class Prediction:
    """The result for one file.

    Attributes:
        path: the video file or frame folder.
        top: ``(class name, probability)`` pairs, most likely first; empty when the file could not be read.
            With windows, the mean over the windows.
        error: why the file could not be read, or None.
        windows: each window's prediction, in time order (sliding-window prediction only).
        labels: a multi-label network's classes whose probability is at least the threshold, most likely
            first; None for a single-label network.
    """

    path: Path
    top: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None
    windows: list[WindowPrediction] = field(default_factory=list)
    labels: list[tuple[str, float]] | None = None

    def format(self) -> str:
        """``path: name 97.1%, name 1.2%, ...`` (then a line per window) or ``path: could not be read (...)``."""
        if self.error is not None:
            return f"{self.path}: could not be read ({self.error})"
        lines = [f"{self.path}: {format_predictions(self.top)}"]
        if self.labels is not None:
            lines.append(f"  labels: {format_predictions(self.labels) or 'none above the threshold'}")
        lines += [f"  {w.start:8.2f}-{w.end:.2f} s: {format_predictions(w.top)}" for w in self.windows]
        return "\n".join(lines)


def _exported_probabilities(
    exported: Callable[[torch.Tensor], torch.Tensor], video: torch.Tensor, *, multi_label: bool
) -> torch.Tensor:
    return class_probabilities(exported(video), multi_label=multi_label)


def load_scorer(
    path: str | os.PathLike, *, device: str = "auto", compile: bool = False
) -> tuple[ClipScorer, dict[str, Any]]:
    """The clip scorer and info (``class_names``, ``clip``) of a training checkpoint or of an exported
    ``.onnx`` / ``.pt2`` model (which runs on the CPU: onnxruntime, or ``torch.export.load``).
    ``compile``: ``torch.compile`` a checkpoint's network (in place: ``nn.Module.compile``); exports are
    already compiled graphs and ignore it.

    Raises:
        FileNotFoundError, ValueError: a missing or unusable file; a device other than auto or cpu for an export.
    """
    if is_exported_model(path):
        if device not in ("auto", "cpu"):
            raise ValueError(f"exported models run on the CPU; device must be auto or cpu, got {device!r}")
        exported = load_exported(path)
        multi_label = is_multi_label(exported.info)
        return functools.partial(_exported_probabilities, exported, multi_label=multi_label), exported.info
    torch_device = inference_device(device)
    model, info = load_checkpoint(path, map_location=torch_device)
    channels_last = prepare_for_clips(model, torch_device)
    if compile:
        model.compile()
    scorer = functools.partial(
        predict_clip_scores,
        model,
        autocast_dtype=inference_autocast_dtype(torch_device),
        channels_last=channels_last,
        multi_label=is_multi_label(info),
    )
    return scorer, info


def _top(probabilities: torch.Tensor, names: Sequence[str], topk: int) -> list[tuple[str, float]]:
    values, indices = probabilities.topk(min(topk, probabilities.numel()))
    return [(names[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]


def _above(probabilities: torch.Tensor, info: dict[str, Any], threshold: float) -> list[tuple[str, float]] | None:
    """A multi-label network's classes scored at least ``threshold``, most likely first (None: single-label)."""
    if not is_multi_label(info):
        return None
    return [
        (name, p) for name, p in _top(probabilities, info["class_names"], len(info["class_names"])) if p >= threshold
    ]


def _predict_windows(
    score: ClipScorer,
    info: dict[str, Any],
    path: Path,
    *,
    topk: int,
    clips: int,
    window: float,
    stride: float,
    threshold: float,
) -> Prediction:
    if not path.exists():
        return Prediction(path, error="no such file")
    try:
        scores = score_windows(path, score, info["clip"], window=window, stride=stride, clips=clips, progress=True)
    except VideoDecodeError as error:
        return Prediction(path, error=str(error))
    names = info["class_names"]
    windows = [
        WindowPrediction(s.start, s.end, _top(s.probabilities, names, topk), dict(zip(names, s.probabilities.tolist())))
        for s in scores
    ]
    mean = torch.stack([s.probabilities for s in scores]).mean(dim=0)
    return Prediction(path, _top(mean, names, topk), windows=windows, labels=_above(mean, info, threshold))


def _predict_one(
    score: ClipScorer, info: dict[str, Any], path: Path, *, topk: int, clips: int, threshold: float
) -> Prediction:
    if not path.exists():
        return Prediction(path, error="no such file")
    dataset = checkpoint_eval_dataset([VideoRecord(path, 0)], info["clip"], clips_per_video=clips)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = [dataset[i] for i in range(len(dataset))]
    if any(item is None for item in items):
        reason = str(caught[-1].message) if caught else "decoding failed"
        return Prediction(path, error=reason)
    video = torch.stack([item["video"] for item in items])
    mean = score(video).mean(dim=0)
    return Prediction(path, _top(mean, info["class_names"], topk), labels=_above(mean, info, threshold))


def _video_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """``paths`` with each folder replaced by the videos in it and its sub-folders (as a class folder of
    ``--data`` is read); files stay as given, also those that do not exist (they get their error).

    Raises:
        ValueError: a folder that holds no video file.
    """
    files: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            files.append(path)
            continue
        videos = videos_in(path)
        if not videos:
            raise ValueError(
                f"{path} is a folder without video files (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})"
            )
        files.extend(videos)
    return files


def predict_files(
    paths: Sequence[str | os.PathLike],
    checkpoint: str | os.PathLike,
    *,
    topk: int = 5,
    clips: int = 3,
    device: str = "auto",
    window: float | None = None,
    stride: float | None = None,
    compile: bool = False,
    threshold: float = 0.5,
) -> list[Prediction]:
    """Classify videos (files or frame folders) with a checkpoint written by ``cbam3d train`` or a model written
    by ``cbam3d export``.

    Each video gives ``clips`` evenly spaced clips, centre-cropped to the checkpoint's clip size; their softmax
    scores are averaged. A multi-label network's sigmoid scores are averaged likewise, and
    ``Prediction.labels`` holds the classes whose mean is at least ``threshold``. A video that cannot be read
    gets a :class:`Prediction` with ``error`` set, and the others are still classified. A folder in ``paths``
    that is not itself a frame folder stands for every video (file or frame folder) in it and its sub-folders.
    ``compile``: ``torch.compile`` the network (in place: ``nn.Module.compile``).

    With ``window`` (seconds), each file is scored in windows of that length every ``stride`` seconds
    (default: ``window``) in one streaming pass (memory does not grow with the file's length; a progress bar
    on stderr for long files), ``clips`` clips per window; ``Prediction.windows`` holds each window and
    ``Prediction.top`` their mean.

    Raises:
        FileNotFoundError, ValueError: for a missing or unusable checkpoint; ValueError for topk < 1, clips not
            in 1..MAX_CLIPS, window or stride not a positive finite number, stride without window, a threshold
            outside [0, 1], or a folder without videos.
    """
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise ValueError(f"topk must be a positive integer, got {topk!r}")
    if isinstance(clips, bool) or not isinstance(clips, int) or not 1 <= clips <= MAX_CLIPS:
        raise ValueError(f"clips must be an integer from 1 to {MAX_CLIPS}, got {clips!r}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a probability in [0, 1], got {threshold}")
    if window is None and stride is not None:
        raise ValueError("stride needs window: the step between windows of the sliding-window prediction")
    for name, seconds in (("window", window), ("stride", stride)):
        if seconds is not None and not 0 < seconds < math.inf:
            raise ValueError(f"{name} must be a positive finite number of seconds, got {seconds}")
    paths = _video_files(paths)
    score, info = load_scorer(checkpoint, device=device, compile=compile)
    if window is None:
        return [_predict_one(score, info, Path(p), topk=topk, clips=clips, threshold=threshold) for p in paths]
    stride = window if stride is None else stride
    return [
        _predict_windows(
            score, info, Path(p), topk=topk, clips=clips, window=window, stride=stride, threshold=threshold
        )
        for p in paths
    ]


def write_window_files(prediction: Prediction, folder: str | os.PathLike, *, classes: int = 5) -> tuple[Path, Path]:
    """``<stem>_windows.csv`` (each window's start, end and top-k) and ``<stem>_timeline.png`` (the probability
    over time of the video's ``classes`` most likely classes) in ``folder``, written atomically.

    Raises:
        ValueError: the prediction has no windows.
    """
    if not prediction.windows:
        raise ValueError(f"{prediction.path} has no windows to write (predict with window=...)")
    folder, stem = Path(folder), prediction.path.stem
    table = write_windows_csv([(w.start, w.end, w.top) for w in prediction.windows], folder / f"{stem}_windows.csv")
    names = prediction.windows[0].probabilities
    totals = {name: sum(w.probabilities[name] for w in prediction.windows) for name in names}
    shown = sorted(totals, key=totals.__getitem__, reverse=True)[:classes]
    timeline = plot_timeline(
        [(w.start, w.end) for w in prediction.windows],
        {name: [w.probabilities[name] for w in prediction.windows] for name in shown},
        folder / f"{stem}_timeline.png",
        title=f"{prediction.path.name}: class probabilities over time",
    )
    return table, timeline
