"""PNG figures of inference: confusion matrices and prediction timelines (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cbam3d.utils.atomic import atomic_write

__all__ = ["plot_confusion_matrix", "plot_timeline", "pyplot", "save_png"]


def pyplot():
    """matplotlib.pyplot with the Agg backend (no display needed)."""
    # Deferred: matplotlib is slow to import and only the plots need it.
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_png(figure, path: str | os.PathLike) -> Path:
    """Write ``figure`` as a PNG, atomically, and close it."""
    plt = pyplot()
    try:
        return atomic_write(path, lambda file: figure.savefig(file, format="png", dpi=120))
    finally:
        plt.close(figure)


def plot_confusion_matrix(
    confusion: Sequence[Sequence[int]],
    class_names: Sequence[str],
    path: str | os.PathLike,
    *,
    title: str = "Confusion matrix",
) -> Path:
    """A K x K confusion matrix (rows: true class, columns: predicted), shaded by row-normalised rate,
    with the counts written in the cells when K <= 30."""

    counts = np.asarray(confusion, dtype=np.int64)
    k = len(class_names)
    if counts.shape != (k, k):
        raise ValueError(f"confusion matrix of shape {counts.shape} does not match {k} class names")
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    plt = pyplot()
    side = min(4 + 0.45 * k, 40)
    figure, axes = plt.subplots(figsize=(side + 1.5, side))
    image = axes.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="fraction of the true class")
    axes.set(title=title, xlabel="predicted class", ylabel="true class", xticks=range(k), yticks=range(k))
    if k <= 60:
        axes.set_xticklabels(class_names, rotation=60, ha="right", fontsize=8)
        axes.set_yticklabels(class_names, fontsize=8)
    if k <= 30:
        for row in range(k):
            for column in range(k):
                if counts[row, column]:
                    axes.text(
                        column,
                        row,
                        str(counts[row, column]),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if rates[row, column] > 0.5 else "black",
                    )
    figure.tight_layout()
    return save_png(figure, path)


def plot_timeline(
    times: Sequence[tuple[float, float]],
    probabilities: dict[str, Sequence[float]],
    path: str | os.PathLike,
    *,
    title: str = "Class probabilities over time",
) -> Path:
    """Each class's probability per window over time, drawn at the windows' centres.

    Args:
        times: ``(start, end)`` seconds of each window, in order.
        probabilities: class name -> one probability per window (the classes to draw, most likely first).
        path: the PNG file to write.
    """
    if not times:
        raise ValueError("no window to plot")
    if any(len(values) != len(times) for values in probabilities.values()):
        raise ValueError(f"every class needs one probability per window ({len(times)})")
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(10, 3.5))
    centres = [(start + end) / 2 for start, end in times]
    for name, values in probabilities.items():
        axes.plot(centres, [100 * value for value in values], "o-" if len(times) < 50 else "-", ms=3, label=name)
    axes.set(title=title, xlabel="time (s, window centre)", ylabel="probability (%)", ylim=(0, 100))
    axes.set_xlim(times[0][0], times[-1][1])
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    return save_png(figure, path)
