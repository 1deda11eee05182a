"""The training curves of a run as a PNG (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cbam3d.inference.plots import pyplot, save_png

__all__ = ["plot_training_curves"]


def plot_training_curves(history: Sequence[dict[str, float]], path: str | os.PathLike) -> Path:
    """Loss and top-1 accuracy per epoch, training and validation, side by side.

    Args:
        history: one dict per epoch with ``epoch``, ``train_loss``, ``val_loss``, ``train_top1``, ``val_top1``.
        path: the PNG file to write.

    Raises:
        ValueError: if ``history`` is empty.
    """
    if not history:
        raise ValueError("no completed epoch to plot")
    plt = pyplot()
    epochs = [entry["epoch"] + 1 for entry in history]
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label, style in (("train_loss", "train (label-smoothed)", "o-"), ("val_loss", "validation", "s-")):
        loss_axes.plot(epochs, [entry[key] for entry in history], style, label=label)
    accuracy_series = (("train_top1", "train (random clips)", "o-"), ("val_top1", "validation (centre clip)", "s-"))
    for key, label, style in accuracy_series:
        accuracy_axes.plot(epochs, [100 * entry[key] for entry in history], style, label=label)
    loss_axes.set(title="Cross-entropy loss", xlabel="epoch", ylabel="loss")
    accuracy_axes.set(title="Clip top-1 accuracy", xlabel="epoch", ylabel="top-1 (%)", ylim=(0, 100))
    for axes in (loss_axes, accuracy_axes):
        axes.grid(alpha=0.3)
        axes.legend()
        axes.xaxis.get_major_locator().set_params(integer=True)
    figure.tight_layout()
    return save_png(figure, path)
