"""The command line of ``cbam3d train``: its flags come from the settings (:mod:`cbam3d.training.settings`)."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cbam3d.utils.atomic import no_space_message
from cbam3d.utils.console import command, quiet_dependencies
from cbam3d.utils.errors import UsageError

from .run_checks import output_dir
from .run_folder import RunTerminated
from .settings import TrainConfig

__all__ = ["closing_summary", "train_main", "train_parser"]


def train_parser() -> argparse.ArgumentParser:
    """The parser of ``cbam3d train``: a flag per setting of :class:`TrainConfig`, in argument groups."""
    parser = argparse.ArgumentParser(
        prog="cbam3d train",
        description="Train a video classifier with attention (CBAM, BAM, SE) on real video files or, with no "
        "--data, on the built-in demo set (generated on first use, no download; demo defaults "
        "give a small network that trains on a CPU in a few minutes). Writes checkpoints (every "
        "epoch, atomically), TensorBoard and CSV logs, curves.png and metrics.json under --output.",
        epilog="Several GPUs: --devices N (Lightning launches the processes), or torchrun --nproc_per_node N "
        "cbam3d train ... (devices and nodes are then read from torchrun). Several nodes: add "
        "--num-nodes M (or torchrun --nnodes M). Every setting left out of a --resume is taken from the "
        "run being resumed.",
    )
    TrainConfig.add_arguments(parser)
    return parser


def train_main(argv: Sequence[str] | None = None) -> int:
    """``cbam3d train``: returns the exit status: 0 when the run finished (also a ``--resume`` with no epoch left
    to train, which says so and evaluates), 2 with a one-line message on bad input, 1 with one line when a disk
    or the file-size limit is full, 130 when interrupted (Ctrl-C), 143 when terminated (SIGTERM) while training."""
    parser = train_parser()
    config = TrainConfig.from_arguments(parser.parse_args(argv))
    # Deferred: Lightning takes seconds to import, and --help or a usage error should not wait for it.
    from .lightning import train

    try:
        with quiet_dependencies():
            metrics = train(config)
    except UsageError as error:
        parser.error(str(error))
    except OSError as error:
        message = no_space_message(error)
        if message is None:
            raise
        print(f"{parser.prog}: error: {message}; the checkpoints written before are intact", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, RunTerminated) as stop:
        resume = command("train", "--output", output_dir(config), "--resume")
        how = "terminated (SIGTERM)" if isinstance(stop, RunTerminated) else "interrupted"
        print(f"{parser.prog}: {how}; continue with: {resume}", file=sys.stderr)
        return 143 if isinstance(stop, RunTerminated) else 130
    if metrics:  # the global-zero process
        print(closing_summary(metrics))
    return 0


def closing_summary(metrics: Mapping[str, Any]) -> str:
    """The lines printed at the end of a training run: its result, where its files are and what to run next.

    Args:
        metrics: what :func:`cbam3d.training.lightning.train` returns (``val_top1``, ``val_top5`` or
            ``val_map``, ``epochs``, ``seconds``, ``output``, ``best_checkpoint``).
    """
    output = Path(metrics["output"])
    best = _shown(metrics["best_checkpoint"])
    shown = {name: _shown(output / name) for name in ("metrics.json", "curves.png", "checkpoints", "tensorboard")}
    epochs = metrics["epochs"]
    scores = (
        f"mAP {100 * metrics['val_map']:.1f}%"
        if "val_map" in metrics
        else f"top-1 {100 * metrics['val_top1']:.1f}%, top-5 {100 * metrics['val_top5']:.1f}%"
    )
    lines = [
        f"Trained {epochs} epoch{'s' * (epochs != 1)} in {_duration(metrics['seconds'])}: video-level validation "
        f"{scores} (best checkpoint).",
        f"  metrics:      {shown['metrics.json']}",
    ]
    if (output / "curves.png").is_file():  # not written by a resumed run that had no epoch left
        lines.append(f"  curves:       {shown['curves.png']}")
    lines += [
        f"  checkpoints:  {shown['checkpoints']}/ (best: {best})",
        f"  TensorBoard:  tensorboard --logdir {shlex.quote(shown['tensorboard'])}",
        "Next:",
        f"  {command('evaluate', '--checkpoint', best)}",
        f"  {command('predict', 'VIDEO.mp4', '--checkpoint', best)}",
        f"  {command('visualize', 'VIDEO.mp4', '--checkpoint', best, '--output', 'viz/')}",
    ]
    return "\n".join(lines)


def _shown(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it (shorter to read and to copy)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
