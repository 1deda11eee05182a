"""The command line of ``cbam3d visualize`` (``main(argv)``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from cbam3d.data import VideoDecodeError
from cbam3d.inference.scoring import format_predictions

from .animation import ANIMATION_FORMATS
from .frames import CLIP_MODES
from .visualize import visualize_checkpoint

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:

    result = argparse.ArgumentParser(
        prog="cbam3d visualize",
        description="Draw where a trained video network's attention goes on one clip of VIDEO: an animation with "
        "each layer's spatial attention as a heat map on the frames, a PNG grid of frames x layers, "
        "the temporal attention per layer as a plot, and a JSON summary, all titled with the top "
        "predictions. Files are named after the video: DIR/<stem>_attention.gif, _grid.png, "
        "_temporal.png, _attention.json.",
    )
    result.add_argument(
        "video", type=Path, help="any video file PyAV can read, or a folder of frames (image_00001.jpg ...)"
    )
    result.add_argument(
        "--checkpoint", type=Path, required=True, metavar="CKPT", help="a checkpoint written by cbam3d train"
    )
    result.add_argument("--output", type=Path, required=True, metavar="DIR", help="folder for the files")
    result.add_argument(
        "--clip",
        choices=CLIP_MODES,
        default="spread",
        help="spread: the checkpoint's number of frames spread over the whole video; centre: "
        "evaluation's centre clip at the trained sampling rate; default: spread",
    )
    result.add_argument("--format", choices=ANIMATION_FORMATS, default="gif", help="animation file; default: gif")
    result.add_argument("--top-k", type=int, default=5, metavar="K", help="predictions in the titles; default: 5")
    result.add_argument("--fps", type=float, default=4.0, help="animation frames per second; default: 4")
    result.add_argument("--alpha", type=float, default=0.5, help="heat-map opacity in [0, 1]; default: 0.5")
    result.add_argument("--cmap", default="jet", help="matplotlib colour map; default: jet")
    result.add_argument(
        "--absolute",
        action="store_true",
        help="colour absolute attention values in [0, 1] instead of each layer's range over the clip",
    )
    result.add_argument(
        "--display-size",
        type=int,
        metavar="PX",
        help="height and width of the drawn frames; default: the larger of 224 and the clip size",
    )
    result.add_argument(
        "--device", default="auto", help="auto (a GPU if there is one), cpu, cuda, cuda:1...; default: auto"
    )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a usage error, as argparse does)."""
    arguments = parser().parse_args(argv)

    try:
        result = visualize_checkpoint(
            arguments.checkpoint,
            arguments.video,
            arguments.output,
            device=arguments.device,
            clip_mode=arguments.clip,
            top_k=arguments.top_k,
            animation_format=arguments.format,
            fps=arguments.fps,
            alpha=arguments.alpha,
            cmap=arguments.cmap,
            stretch=not arguments.absolute,
            display_size=arguments.display_size,
        )
    except (FileNotFoundError, ValueError, VideoDecodeError) as error:
        print(f"cbam3d visualize: error: {error}", file=sys.stderr)
        return 2
    print(f"{arguments.video}: {format_predictions(result.predictions)}")
    print(f"layers: {', '.join(result.layers)}")
    for path in (result.animation, result.grid, result.temporal, result.summary):
        print(f"wrote {path}")
    return 0
