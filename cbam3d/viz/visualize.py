"""What ``cbam3d visualize`` does: run a video network on one clip with the map hooks and draw its attention."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import torch
from torch import nn

from cbam3d.attention.dims import check_positive_int
from cbam3d.attention.hooks import capture_attention
from cbam3d.inference.checkpoint import ClipSpec, is_multi_label, load_checkpoint
from cbam3d.inference.devices import inference_device
from cbam3d.inference.scoring import class_probabilities, format_predictions
from cbam3d.utils.atomic import check_output_folder

from .animation import ANIMATION_FORMATS, check_fps, write_animation
from .frames import VisualClip, read_visual_clip
from .maps import LayerAttention, attention_layers, upsample_spatial
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

__all__ = ["Visualization", "format_predictions", "top_predictions", "visualize_checkpoint", "visualize_video"]


@dataclass(frozen=True)
class Visualization:
    """What :func:`visualize_video` wrote and found.

    Attributes:
        animation: the GIF or MP4: each frame with every layer's spatial attention blended in.
        grid: PNG, frames x layers.
        temporal: PNG, each layer's temporal attention over the clip's frames.
        summary: JSON with the predictions, the frame indices and each layer's maps' shapes and ranges.
        predictions: ``(class name, probability)``, most likely first.
        layers: the layers' labels, in network order.
        frame_indices: the clip's frames in the video file.
        panels: where the input and each layer lie in the animation's pictures, ``display_size`` pixels square.
    """

    animation: Path
    grid: Path
    temporal: Path
    summary: Path
    predictions: list[tuple[str, float]]
    layers: list[str]
    frame_indices: list[int]
    panels: PanelLayout


def top_predictions(
    logits: torch.Tensor, class_names: Sequence[str], k: int, *, multi_label: bool = False
) -> list[tuple[str, float]]:
    """The ``k`` most likely classes of (num_classes,) logits, as ``(name, probability)``: a softmax, or with
    ``multi_label`` each class's sigmoid."""
    probabilities = class_probabilities(logits[None], multi_label=multi_label)[0]
    values, indices = probabilities.topk(min(k, probabilities.numel()))
    return [(class_names[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return torch.device("cpu") if parameter is None else parameter.device


def _run(model: nn.Module, clip: torch.Tensor) -> tuple[torch.Tensor, list[LayerAttention]]:
    """Logits (num_classes,) and the attention layers of one clip, in eval mode (restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), capture_attention(model, ("spatial", "temporal"), device="cpu") as maps:
            logits = model(clip.to(_model_device(model)))
    finally:
        model.train(was_training)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != 1:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"the model should return (1, num_classes) logits for one clip, got {got}")
    return logits[0].cpu(), attention_layers(maps)


def _check_drawing_options(top_k: int, animation_format: str, fps: float, alpha: float, cmap: str) -> None:
    check_positive_int(top_k, "top_k")
    if animation_format not in ANIMATION_FORMATS:
        raise ValueError(f"unknown animation format {animation_format!r}: expected one of {ANIMATION_FORMATS}")
    check_fps(fps)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if cmap not in matplotlib.colormaps:
        raise ValueError(f"unknown colour map {cmap!r}: expected a matplotlib colour map such as 'jet' or 'inferno'")


def _overlay(layer: LayerAttention, visual: VisualClip, alpha: float, cmap: str, stretch: bool) -> LayerOverlay:
    """The layer's map upsampled trilinearly to the drawn frames, coloured and blended in."""
    num_frames, height, width = visual.frames.shape[:3]
    heat, low, high = normalize_heat(upsample_spatial(layer.spatial, (num_frames, height, width)), stretch)
    return LayerOverlay(layer.label, heat_overlay(visual.frames, heat, alpha, cmap), low, high)


def visualize_video(
    model: nn.Module,
    video: str | os.PathLike,
    output: str | os.PathLike,
    clip: ClipSpec,
    *,
    class_names: Sequence[str] | None = None,
    clip_mode: str = "spread",
    top_k: int = 5,
    animation_format: str = "gif",
    fps: float = 4.0,
    alpha: float = 0.5,
    cmap: str = "jet",
    stretch: bool = True,
    display_size: int | None = None,
    multi_label: bool = False,
) -> Visualization:
    """Show where a video network's attention goes on one clip of ``video``.

    Decodes one clip (``clip.frames`` frames, short side resized and centre cropped as in evaluation), runs
    ``model`` on it in eval mode with :func:`cbam3d.attention.hooks.capture_attention`, upsamples each attention site's
    spatio-temporal map trilinearly to the frames and blends it in as a heat map, and writes under ``output``
    (named after the video, ``<stem>_...``): the animation, the frames x layers grid, the temporal profiles
    and a JSON summary. The titles give the ``top_k`` predicted classes with their probabilities.

    Args:
        model: a video classifier with cbam3d attention (CBAM or BAM: SE has no spatial map), (N, 3, T, H, W)
            -> (N, num_classes); it runs on the device of its parameters.
        video: any video file PyAV can read, of any frame size and length, or a folder of frames.
        output: the folder to write to (created if missing).
        clip: the input the network expects (frames, sampling_rate, size, mean, std).
        class_names: index -> name; default ``"class <i>"``.
        clip_mode: ``"spread"`` (frames spread over the whole video) or ``"centre"`` (evaluation's centre
            clip; see :func:`cbam3d.viz.clip_indices`).
        top_k: how many predictions to name.
        animation_format: ``"gif"`` or ``"mp4"``.
        fps: animation speed, clip frames per second.
        alpha: heat-map opacity in [0, 1].
        cmap: matplotlib colour map of the heat maps.
        stretch: colour each layer from its lowest to its highest value over the clip (ranges in the grid);
            False colours absolute values in [0, 1].
        display_size: height and width of the drawn frames; default ``max(clip.size, 224)``.
        multi_label: the network gives one sigmoid per class (a multi-label checkpoint), not a softmax.

    Raises:
        ValueError: the model has no spatial attention map, returns no (1, num_classes) logits, or a setting
            is out of range; ``cbam3d.data.VideoDecodeError`` for an unreadable video.
    """
    _check_drawing_options(top_k, animation_format, fps, alpha, cmap)
    try:
        check_output_folder(output)
    except ValueError as error:
        raise ValueError(f"output {error}") from error
    video = Path(video)
    visual = read_visual_clip(
        video,
        frames=clip.frames,
        size=clip.size,
        sampling_rate=clip.sampling_rate,
        mode=clip_mode,
        mean=clip.mean,
        std=clip.std,
        eval_resize=clip.eval_resize,
        display_size=display_size,
    )
    logits, layers = _run(model, visual.input)
    names = list(class_names) if class_names is not None else [f"class {i}" for i in range(logits.numel())]
    if len(names) != logits.numel():
        raise ValueError(f"{len(names)} class names for a model with {logits.numel()} outputs")
    spatial_layers = [layer for layer in layers if layer.spatial is not None]
    if not spatial_layers:
        raise ValueError(
            f"{type(model).__name__} computes no spatial attention map to draw (SE only weights channels); "
            "visualise a network with CBAM or BAM"
        )
    predictions = top_predictions(logits, names, top_k, multi_label=multi_label)
    title = f"{video.name} | predicted: {format_predictions(predictions)}"
    overlays = [_overlay(layer, visual, alpha, cmap, stretch) for layer in spatial_layers]
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    stem = video.stem
    pictures = animation_frames(visual.frames, overlays, visual.indices, title)
    animation = write_animation(pictures, output / f"{stem}_attention.{animation_format}", fps)
    grid = save_grid(visual.frames, overlays, visual.indices, title, output / f"{stem}_grid.png", cmap=cmap)
    profiles = [(layer.label, layer.temporal) for layer in layers if layer.temporal is not None]
    temporal = save_temporal_profiles(profiles, visual.indices, title, output / f"{stem}_temporal.png")
    summary = output / f"{stem}_attention.json"
    ranges = {layer.site: [overlay.low, overlay.high] for layer, overlay in zip(spatial_layers, overlays)}
    summary.write_text(json.dumps(_summary(video, predictions, visual.indices, layers, ranges), indent=2) + "\n")
    return Visualization(
        animation,
        grid,
        temporal,
        summary,
        predictions,
        [layer.label for layer in layers],
        visual.indices,
        animation_layout(visual.frames, overlays, title),
    )


def _summary(
    video: Path,
    predictions: list[tuple[str, float]],
    indices: list[int],
    layers: list[LayerAttention],
    ranges: dict[str, list[float]],
) -> dict[str, Any]:
    return {
        "video": str(video),
        "predictions": [{"class": name, "probability": p} for name, p in predictions],
        "frame_indices": list(indices),
        "layers": [
            {
                "label": layer.label,
                "site": layer.site,
                "spatial_shape": None if layer.spatial is None else list(layer.spatial.shape),
                "spatial_range": ranges.get(layer.site),
                "temporal": None if layer.temporal is None else layer.temporal.tolist(),
            }
            for layer in layers
        ],
    }


def visualize_checkpoint(
    checkpoint: str | os.PathLike,
    video: str | os.PathLike,
    output: str | os.PathLike,
    *,
    device: str = "auto",
    **options: Any,
) -> Visualization:
    """:func:`visualize_video` with the network, clip settings and class names of a training checkpoint.

    Args:
        checkpoint: a ``.ckpt`` written by ``cbam3d train``.
        video, output: as for :func:`visualize_video`.
        device: ``"auto"`` (a GPU if there is one), ``"cpu"``, ``"cuda:1"``, ...
        **options: the keyword options of :func:`visualize_video` (``clip_mode``, ``top_k``, ...).

    Raises:
        FileNotFoundError, ValueError: an unusable checkpoint, and as :func:`visualize_video`.
    """

    model, info = load_checkpoint(checkpoint, map_location=inference_device(device))
    clip = info["clip"]
    spec = ClipSpec(**{**clip, "mean": tuple(clip["mean"]), "std": tuple(clip["std"])})
    return visualize_video(
        model, video, output, spec, class_names=info["class_names"], multi_label=is_multi_label(info), **options
    )
