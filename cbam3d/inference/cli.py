"""The command lines of ``cbam3d evaluate`` and ``cbam3d predict`` (``main(argv)`` functions)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cbam3d.utils.atomic import check_output_folder
from cbam3d.utils.errors import UsageError

from .evaluate import evaluate_checkpoint, format_report
from .predict import Prediction, predict_files, write_window_files

__all__ = ["evaluate_main", "evaluate_parser", "predict_main", "predict_parser"]


def evaluate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cbam3d evaluate",
        description="Video-level evaluation of a checkpoint: the scores of several clips and crops per video are "
        "averaged; prints top-1 / top-5, per-class accuracy and the confusion matrix, and saves the "
        "matrix as a PNG and everything as JSON.",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        metavar="CKPT",
        help="a checkpoint written by cbam3d train (e.g. OUTPUT/checkpoints/last.ckpt)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="data set folder; default: the one the checkpoint was trained on (or the demo set)",
    )
    parser.add_argument(
        "--split", choices=("val", "test"), default="val", help="which part of the data set; default: val"
    )
    parser.add_argument("--fold", type=int, metavar="N", help="official split number; default: the training run's")
    parser.add_argument(
        "--annotations",
        type=Path,
        metavar="FILE",
        help="annotation CSV or 3D-ResNets-PyTorch JSON; default: the training run's",
    )
    parser.add_argument(
        "--clips", type=int, metavar="N", help="evenly spaced clips per video; default: the training run's --eval-clips"
    )
    parser.add_argument(
        "--crops",
        type=int,
        metavar="N",
        help="spatial crops per clip (1: centre, 3: both ends and centre); default: the run's",
    )
    parser.add_argument("--batch-size", type=int, metavar="N", help="clips per batch; default: the run's")
    parser.add_argument("--num-workers", type=int, default=0, metavar="N", help="data-loading processes; default: 0")
    parser.add_argument(
        "--device", default="auto", help="auto (a GPU if there is one), cpu, cuda, cuda:1 ...; default: auto"
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="folder for confusion_matrix.png and evaluation.json; default: the checkpoint's folder",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    return parser


def evaluate_main(argv: Sequence[str] | None = None) -> int:
    """``cbam3d evaluate``: returns the exit status (2 with a one-line message on bad input)."""
    parser = evaluate_parser()
    args = parser.parse_args(argv)

    try:
        report = evaluate_checkpoint(
            args.checkpoint,
            data=args.data,
            split=args.split,
            fold=args.fold,
            annotations=args.annotations,
            clips=args.clips,
            crops=args.crops,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            device=args.device,
            output=args.output if args.output is not None else args.checkpoint.parent,
            compile=args.compile,
        )
    except (UsageError, ValueError) as error:
        parser.error(str(error))
    print(format_report(report))
    if "confusion_png" in report:
        print(f"\nconfusion matrix: {report['confusion_png']}")
    print(f"report: {report['json']}")
    return 0


def predict_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cbam3d predict",
        description="Classify video files with a trained checkpoint or an export: prints the top-k classes with "
        "their probabilities for each file (a few centre-cropped clips per file, averaged); with --window, "
        "for each window over the whole video too.",
    )
    parser.add_argument(
        "videos",
        nargs="+",
        type=Path,
        metavar="VIDEO",
        help="video files or frame folders (image_00001.jpg ...) to classify, or folders of them (searched"
        " recursively)",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        metavar="CKPT",
        help="a checkpoint written by cbam3d train, or a .onnx / .pt2 written by cbam3d export (runs on the CPU)",
    )
    parser.add_argument("--topk", type=int, default=5, metavar="K", help="classes to show per file; default: 5")
    parser.add_argument(
        "--clips",
        type=int,
        default=3,
        metavar="N",
        help="evenly spaced clips per file (per window with --window), scores averaged; default: 3",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        metavar="P",
        help="multi-label networks: also list every class whose probability is at least P; default: 0.5",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda ...; default: auto")
    parser.add_argument(
        "--json", action="store_true", help="print the results as JSON (with --window: a windows list per file)"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the network (checkpoints only)")
    windows = parser.add_argument_group("long videos: sliding windows")
    windows.add_argument(
        "--window",
        type=float,
        metavar="SECONDS",
        help="score windows of this length over the whole video (one streaming pass, memory flat in the "
        "video's length; --clips clips per window) and give each window's top-k and their mean",
    )
    windows.add_argument(
        "--stride", type=float, metavar="SECONDS", help="step between window starts; default: the window length"
    )
    windows.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="with --window: also write DIR/<video>_windows.csv and DIR/<video>_timeline.png (the top "
        "classes' probabilities over time)",
    )
    return parser


def _prediction_json(prediction: Prediction) -> dict[str, Any]:
    def top(pairs: list[tuple[str, float]]) -> list[dict[str, Any]]:
        return [{"label": name, "probability": value} for name, value in pairs]

    result = {"path": str(prediction.path), "top": top(prediction.top), "error": prediction.error}
    if prediction.labels is not None:
        result["labels"] = top(prediction.labels)
    if prediction.windows:
        result["windows"] = [{"start": w.start, "end": w.end, "top": top(w.top)} for w in prediction.windows]
    return result


def predict_main(argv: Sequence[str] | None = None) -> int:
    """``cbam3d predict``: exit status 1 when some file could not be read."""
    parser = predict_parser()
    args = parser.parse_args(argv)

    if args.window is None and (args.stride is not None or args.output is not None):
        parser.error("--stride and --output need --window SECONDS (sliding-window prediction)")
    try:
        if args.output is not None:
            check_output_folder(args.output)
        predictions = predict_files(
            args.videos,
            args.checkpoint,
            topk=args.topk,
            clips=args.clips,
            device=args.device,
            window=args.window,
            stride=args.stride,
            compile=args.compile,
            threshold=args.threshold,
        )
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    if args.json:
        print(json.dumps([_prediction_json(p) for p in predictions], indent=2))
    else:
        for prediction in predictions:
            print(prediction.format())
    if args.output is not None:
        for prediction in predictions:
            if prediction.error is None:
                paths = write_window_files(prediction, args.output)
                print(f"wrote {', '.join(map(str, paths))}", file=sys.stderr)
    failed = [p for p in predictions if p.error is not None]
    if failed:
        print(f"{len(failed)} of {len(predictions)} files could not be read", file=sys.stderr)
    return 1 if failed else 0
