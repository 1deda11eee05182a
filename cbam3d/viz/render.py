"""Drawing: heat-map overlays on frames, the frames x layers grid, the temporal profiles and animation frames.

Figures are built with matplotlib's object API on the Agg canvas, so nothing needs a display and no global
pyplot state is touched.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

__all__ = [
    "LayerOverlay",
    "PanelLayout",
    "animation_frames",
    "animation_layout",
    "heat_overlay",
    "normalize_heat",
    "save_grid",
    "save_temporal_profiles",
]


@dataclass(frozen=True)
class LayerOverlay:
    """One layer's attention drawn on the clip.

    Attributes:
        label: the layer's name in the figures.
        images: uint8 (T, D, D, 3): the frames with the heat map blended in.
        low, high: the attention values the colour map's ends stand for.
    """

    label: str
    images: np.ndarray
    low: float
    high: float


def normalize_heat(values: torch.Tensor, stretch: bool = True) -> tuple[torch.Tensor, float, float]:
    """Map attention values to [0, 1] for colouring; returns ``(heat, low, high)``.

    With ``stretch`` the clip's lowest value becomes 0 and its highest 1 (one range for all frames of a
    layer, so changes over time stay visible); a constant map is drawn at 0.5. Without it, values are
    clamped to [0, 1], the range of a sigmoid gate.
    """
    if not stretch:
        return values.clamp(0, 1), 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-12:
        return torch.full_like(values, 0.5), low, high
    return (values - low) / (high - low), low, high


def heat_overlay(frames: np.ndarray, heat: torch.Tensor, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blend a heat map into frames: ``(1 - alpha) * frame + alpha * cmap(heat)``.

    Args:
        frames: uint8 (T, H, W, 3) RGB.
        heat: (T, H, W) in [0, 1].
        alpha: weight of the heat map, in [0, 1].
        cmap: a matplotlib colour map name.

    Returns:
        uint8 (T, H, W, 3).
    """
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if tuple(heat.shape) != frames.shape[:3]:
        raise ValueError(f"heat has shape {tuple(heat.shape)}; expected the frames' (T, H, W) {frames.shape[:3]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    colours = matplotlib.colormaps[cmap](heat.clamp(0, 1).numpy())[..., :3]
    blended = (1 - alpha) * frames.astype(np.float32) + alpha * 255.0 * colours
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def _wrap(title: str, width: int) -> str:
    return "\n".join(textwrap.wrap(title, width=max(width, 20))) or title


def _save(figure: Figure, path: str | os.PathLike, dpi: int) -> Path:
    path = Path(path)
    FigureCanvasAgg(figure)
    figure.savefig(path, format="png", dpi=dpi)
    return path


def _hide_ticks(axes) -> None:
    axes.set_xticks([])
    axes.set_yticks([])


def save_grid(
    frames: np.ndarray,
    overlays: Sequence[LayerOverlay],
    frame_numbers: Sequence[int],
    title: str,
    path: str | os.PathLike,
    *,
    max_columns: int = 16,
    cmap: str = "jet",
    dpi: int = 100,
) -> Path:
    """A PNG grid: one column per frame (at most ``max_columns``, evenly chosen), the input frames in the
    first row and one row per layer below, labelled with the layer and its value range, with a colour bar.

    Args:
        frames: uint8 (T, D, D, 3) input frames.
        overlays: the layers to draw, top to bottom.
        frame_numbers: the T frames' indices in the video, for the column titles.
        title: the figure's title (the predictions).
        path: the PNG file to write.
    """
    num_frames = frames.shape[0]
    columns = np.unique(np.linspace(0, num_frames - 1, min(num_frames, max_columns)).round().astype(int))
    rows = [("input", frames)] + [(f"{o.label}\n[{o.low:.3g}, {o.high:.3g}]", o.images) for o in overlays]
    cell = 1.3
    figure = Figure(figsize=(cell * len(columns) + 1.8, cell * len(rows) + 0.9), layout="constrained")
    axes = figure.subplots(len(rows), len(columns), squeeze=False)
    for row, (label, images) in enumerate(rows):
        for column, t in enumerate(columns):
            ax = axes[row, column]
            ax.imshow(images[t])
            _hide_ticks(ax)
            if row == 0:
                ax.set_title(f"frame {frame_numbers[t]}", fontsize=8)
        axes[row, 0].set_ylabel(label, fontsize=8)
    if overlays:
        mappable = ScalarMappable(norm=Normalize(0, 1), cmap=cmap)
        bar = figure.colorbar(mappable, ax=axes[1:, -1].tolist(), shrink=0.8, ticks=[0, 1])
        bar.ax.set_yticklabels(["low", "high"], fontsize=8)
    figure.suptitle(_wrap(title, int(12 * len(columns))), fontsize=10)
    return _save(figure, path, dpi)


def save_temporal_profiles(
    profiles: Sequence[tuple[str, torch.Tensor]],
    frame_numbers: Sequence[int],
    title: str,
    path: str | os.PathLike,
    *,
    dpi: int = 100,
) -> Path:
    """A PNG plot of each layer's weight per frame over the clip.

    Each profile (T',) is drawn at its own temporal resolution: point ``i`` sits at the centre of the clip
    frames it covers, ``(i + 0.5) * T / T' - 0.5``, so a layer that sees 2 time steps of a 16-frame clip
    shows 2 points.

    Args:
        profiles: ``(label, values (T',))`` per layer.
        frame_numbers: the clip's T frame indices in the video, for the x axis.
        title: the figure's title (the predictions).
        path: the PNG file to write.
    """
    num_frames = len(frame_numbers)
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    ax = figure.subplots()
    for label, values in profiles:
        steps = values.numel()
        positions = (np.arange(steps) + 0.5) * num_frames / steps - 0.5
        ax.plot(positions, values.numpy(), "o-", label=f"{label} (T'={steps})")
    ticks = np.unique(np.linspace(0, num_frames - 1, min(num_frames, 16)).round().astype(int))
    ax.set_xticks(ticks, [str(frame_numbers[t]) for t in ticks])
    ax.set_xlim(-0.5, num_frames - 0.5)
    ax.set(xlabel="video frame", ylabel="temporal attention (mean weight per frame)")
    ax.grid(alpha=0.3)
    if profiles:
        ax.legend(fontsize=8, loc="best", ncol=1 + len(profiles) // 8)
    figure.suptitle(_wrap(title, 90), fontsize=10)
    return _save(figure, path, dpi)


#: Pixels around and between the animation's panels, of a panel's label strip, and of a title line (9 pt at
#: 100 dpi with matplotlib's line spacing of 1.2).
_GAP, _LABEL, _LINE = 6, 16, 15
_TITLE_POINTS, _LABEL_POINTS, _DPI = 9, 8, 100


@dataclass(frozen=True)
class PanelLayout:
    """Where the panels of an animation picture lie, in pixels: each shows a D x D frame pixel for pixel.

    Attributes:
        width, height: the picture's size.
        size: D, a panel's height and width.
        corners: ``(top, left)`` of each panel, in the order the panels are given (rows of at most
            ``max_panels_per_row``).
        title_lines: lines of the title strip above the panels.
    """

    width: int
    height: int
    size: int
    corners: list[tuple[int, int]]
    title_lines: int


def _panel_layout(panels: int, size: int, *, title_lines: int, max_panels_per_row: int = 5) -> PanelLayout:
    """The :class:`PanelLayout` of ``panels`` panels of ``size`` pixels under a title of ``title_lines`` lines."""
    columns = min(panels, max_panels_per_row)
    header = _GAP + _LINE * title_lines
    cells = [divmod(index, columns) for index in range(panels)]
    corners = [(header + row * (_LABEL + size) + _LABEL, _GAP + column * (size + _GAP)) for row, column in cells]
    rows = -(-panels // columns)
    return PanelLayout(
        width=columns * size + (columns + 1) * _GAP,
        height=header + rows * (_LABEL + size) + _GAP,
        size=size,
        corners=corners,
        title_lines=title_lines,
    )


def _title_lines(title: str, width: int) -> list[str]:
    """``title`` wrapped to a picture ``width`` pixels wide (about 7 pixels a character at 9 pt)."""
    return _wrap(title, width // 7).splitlines()


def animation_frames(
    frames: np.ndarray,
    overlays: Sequence[LayerOverlay],
    frame_numbers: Sequence[int],
    title: str,
    *,
    max_panels_per_row: int = 5,
) -> list[np.ndarray]:
    """One picture per clip frame: the input frame and each layer's overlay side by side, titled.

    Each panel shows its (D, D) frame pixel for pixel, so ``display_size`` is the size of the frames in the
    animation; :func:`animation_layout` gives the picture's size and where each panel lies.

    Args:
        frames: uint8 (T, D, D, 3) input frames.
        overlays: the layers, drawn after the input in this order.
        frame_numbers: the T frames' indices in the video, for the title.
        title: the title (the predictions), wrapped to the picture's width.

    Returns:
        T uint8 (height, width, 3) images, all of one size.
    """
    layout = animation_layout(frames, overlays, title, max_panels_per_row=max_panels_per_row)
    width, height = layout.width, layout.height
    figure = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    canvas = FigureCanvasAgg(figure)
    panels = [("input", frames)] + [(o.label, o.images) for o in overlays]
    shown = []
    for (top, left), (label, images) in zip(layout.corners, panels):
        box = (left / width, 1 - (top + layout.size) / height, layout.size / width, layout.size / height)
        axes = figure.add_axes(box)
        axes.set_axis_off()
        shown.append(axes.imshow(images[0], interpolation="nearest", aspect="auto"))
        centre = (left + layout.size / 2) / width
        figure.text(centre, 1 - (top - 2) / height, label, ha="center", va="bottom", fontsize=_LABEL_POINTS)
    heading = figure.text(0.5, 1 - _GAP / height, "", ha="center", va="top", fontsize=_TITLE_POINTS)
    wrapped = "\n".join(_title_lines(title, width))
    pictures = []
    for t in range(frames.shape[0]):
        for image, (_, images) in zip(shown, panels):
            image.set_data(images[t])
        heading.set_text(f"{wrapped}\nframe {t + 1}/{frames.shape[0]} (video frame {frame_numbers[t]})")
        canvas.draw()
        pictures.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    return pictures


def animation_layout(
    frames: np.ndarray, overlays: Sequence[LayerOverlay], title: str, *, max_panels_per_row: int = 5
) -> PanelLayout:
    """The :class:`PanelLayout` of :func:`animation_frames`' pictures for these frames, layers and title."""
    if frames.ndim != 4 or frames.shape[1] != frames.shape[2]:
        raise ValueError(f"frames must be square (T, D, D, 3) pictures, got shape {frames.shape}")
    panels, size = 1 + len(overlays), frames.shape[1]
    width = _panel_layout(panels, size, title_lines=1, max_panels_per_row=max_panels_per_row).width
    lines = len(_title_lines(title, width)) + 1  # and the line naming the frame
    return _panel_layout(panels, size, title_lines=lines, max_panels_per_row=max_panels_per_row)
