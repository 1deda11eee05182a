"""Fixtures of the training tests: the tiny data set (two classes told apart by the direction of motion only),
train configs from command-line flags, and one finished tiny run."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from cbam3d.training.cli import train_main, train_parser
from cbam3d.training.settings import TrainConfig

TINY_CLASSES = ("move_left", "move_right")
TINY_VIDEOS_PER_CLASS = 6


def moving_square(direction: int, rng: np.random.Generator, frames: int = 8, size: int = 32) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of a 6-pixel square moving 2 px per frame left (-1) or right (+1)."""
    video = rng.integers(0, 40, size=(frames, size, size, 3), dtype=np.uint8)
    x, y = rng.integers(0, size), rng.integers(4, size - 10)
    for t in range(frames):
        left = (x + 2 * direction * t) % (size - 6)
        video[t, y : y + 6, left : left + 6] = 230
    return video


def _make_tiny_dataset(root: Path) -> Path:
    """A folder per class, no split lists (so a seeded held-out validation part), not flip-safe."""
    # PyAV is needed only by the tests that train; the others run without it.
    write_video = pytest.importorskip("cbam3d.data.encoding").write_video
    rng = np.random.default_rng(0)
    for label, name in enumerate(TINY_CLASSES):
        (root / name).mkdir(parents=True)
        for index in range(TINY_VIDEOS_PER_CLASS):
            write_video(root / name / f"{name}_{index}.mp4", moving_square(2 * label - 1, rng), fps=8)
    (root / "cbam3d_dataset.json").write_text(json.dumps({"flip_safe": False}))
    return root


@pytest.fixture(scope="session")
def make_tiny_dataset() -> Callable[[Path], Path]:
    """``make_tiny_dataset(root) -> root``: 6 videos per class of :data:`TINY_CLASSES`, 32x32, 8 frames."""
    return _make_tiny_dataset


@pytest.fixture(scope="session")
def make_moving_square() -> Callable[..., np.ndarray]:
    """``make_moving_square(direction, rng) -> (T, H, W, 3) uint8``: the frames of one tiny video (see
    :func:`moving_square`), for tests that store them in other layouts."""
    return moving_square


@pytest.fixture(scope="session")
def tiny_classes() -> tuple[str, ...]:
    """The class names of :func:`make_tiny_dataset`'s videos."""
    return TINY_CLASSES


def _config_from_flags(*argv: str) -> TrainConfig:
    return TrainConfig.from_arguments(train_parser().parse_args(list(argv)))


@pytest.fixture(scope="session")
def config_from_flags() -> Callable[..., TrainConfig]:
    """``config_from_flags(*argv) -> TrainConfig``: the train command's flags parsed into a config (to add
    callbacks, which no flag gives, before calling ``cbam3d.training.train``)."""
    return _config_from_flags


@pytest.fixture(scope="session")
def tiny_trained_run(tmp_path_factory, make_tiny_dataset, tiny_run) -> dict[str, Any]:
    """The tiny run (``tiny_run``'s flags on ``make_tiny_dataset``'s videos) trained 1 epoch, then continued to 2
    with ``--resume``, under umask 022. Keys: ``data``, ``output``, ``first`` (metrics.json after epoch 1),
    ``first_last`` (last.ckpt after epoch 1), ``second`` (metrics.json after the resume). Tests copy what they
    change."""
    pytest.importorskip("lightning")
    pytest.importorskip("av")
    base = tmp_path_factory.mktemp("trained")
    data = make_tiny_dataset(base / "data")
    output = base / "run"
    previous = os.umask(0o022)
    try:
        assert train_main(["--data", str(data), "--output", str(output), "--epochs", "1", *tiny_run]) == 0
        first = json.loads((output / "metrics.json").read_text())
        first_last = torch.load(output / "checkpoints" / "last.ckpt", weights_only=True)
        # --resume takes the data set, network, clips and optimisation from the checkpoint
        resume = ["--resume", "--num-workers", "0", "--threads", "1", "--epochs", "2"]
        assert train_main(["--output", str(output), *resume]) == 0
    finally:
        os.umask(previous)
    return {
        "data": data,
        "output": output,
        "first": first,
        "first_last": first_last,
        "second": json.loads((output / "metrics.json").read_text()),
    }
