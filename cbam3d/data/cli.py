"""The command line of ``cbam3d prepare`` (``prepare_main(argv)``): see :mod:`cbam3d.data.prepare`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .prepare import EncodeSettings, PrepareReport, prepare_dataset

__all__ = ["prepare_main", "prepare_parser"]


def prepare_parser() -> argparse.ArgumentParser:
    defaults = EncodeSettings()
    parser = argparse.ArgumentParser(
        prog="cbam3d prepare",
        description="Write a training-friendly copy of a data set (any layout --data reads): the same layout, "
        "classes, splits and annotations, its videos re-encoded to H.264 with a small short side and frequent "
        "key frames, which a training loader decodes several times faster. Every other file is copied as is. "
        "Rerunning resumes a run that stopped.",
        epilog="example: cbam3d prepare ~/data/UCF101 ~/data/UCF101-160 --workers 8",
    )
    parser.add_argument("source", type=Path, metavar="SRC", help="the data set's folder")
    parser.add_argument("target", type=Path, metavar="DST", help="the copy's folder (created; not inside SRC)")
    parser.add_argument(
        "--short-side",
        type=int,
        default=defaults.short_side,
        metavar="PX",
        help="short side of the re-encoded videos in pixels (never enlarged); the default serves --size 112 with "
        f"the default --train-scale (up to 160); default: {defaults.short_side}",
    )
    parser.add_argument(
        "--keyframe-interval",
        type=int,
        default=defaults.keyframe_interval,
        metavar="N",
        help=f"at most N frames from one key frame to the next; default: {defaults.keyframe_interval}",
    )
    parser.add_argument(
        "--crf",
        type=int,
        default=defaults.crf,
        metavar="Q",
        help=f"x264 quality (0 lossless, 18 visually lossless); default: {defaults.crf}",
    )
    parser.add_argument("--preset", default=defaults.preset, help=f"x264 preset; default: {defaults.preset}")
    parser.add_argument(
        "--tune", default=defaults.tune, help=f"x264 tuning (fastdecode: cheaper decoding); default: {defaults.tune}"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=max(1, min(8, os.cpu_count() or 1)),
        metavar="N",
        help="videos encoded in parallel; default: the CPU cores, at most 8",
    )
    parser.add_argument(
        "--annotations", type=Path, metavar="PATH", help="a CSV or a folder of split lists, as for cbam3d train"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _summary(report: PrepareReport, target: Path) -> str:
    lines = [
        f"{target}: {len(report.encoded)} videos encoded, {len(report.already_done)} already done, "
        f"{len(report.copied)} other files copied"
    ]
    if report.unreadable:
        lines.append(f"{len(report.unreadable)} unreadable source videos, copied as is:")
        lines += [f"  {path}: {why}" for path, why in sorted(report.unreadable.items())]
    if report.failed:
        lines.append(f"{len(report.failed)} videos failed the frame-count check (not written; rerun to retry):")
        lines += [f"  {path}: {why}" for path, why in sorted(report.failed.items())]
    return "\n".join(lines)


def prepare_main(argv: Sequence[str] | None = None) -> int:
    """Run ``cbam3d prepare``; exit status 1 when some video failed the frame-count check."""
    parser = prepare_parser()
    args = parser.parse_args(argv)
    try:
        settings = EncodeSettings(
            short_side=args.short_side,
            keyframe_interval=args.keyframe_interval,
            crf=args.crf,
            preset=args.preset,
            tune=args.tune,
        )
        report = prepare_dataset(
            args.source,
            args.target,
            settings=settings,
            workers=args.workers,
            annotations=args.annotations,
            progress=not args.no_progress,
        )
    except ValueError as error:
        parser.error(str(error))
    print(_summary(report, args.target), file=sys.stderr if report.failed else sys.stdout)
    return 1 if report.failed else 0
