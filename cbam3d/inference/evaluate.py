"""``evaluate_checkpoint``: video-level accuracy of a trained checkpoint on a data set split (``cbam3d evaluate``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from cbam3d.data import VideoRecord, ensure_demo_dataset
from cbam3d.utils.atomic import atomic_write_json, check_output_folder
from cbam3d.utils.errors import UsageError

from .checkpoint import is_multi_label, load_checkpoint
from .datasets import checkpoint_eval_dataset, discover_split
from .devices import inference_autocast_dtype, inference_device, prepare_for_clips
from .plots import plot_confusion_matrix
from .scoring import VideoScores, classification_report, multilabel_report, video_scores

__all__ = ["evaluate_checkpoint", "format_report", "score_records"]


def score_records(
    model: torch.nn.Module,
    info: dict[str, Any],
    records: list[VideoRecord],
    *,
    clips: int,
    crops: int,
    batch_size: int,
    num_workers: int,
    autocast_dtype: torch.dtype | None,
    channels_last: bool,
) -> tuple[VideoScores, dict[str, Any]]:
    """Score every video of ``records`` with a checkpoint's ``model`` and ``info`` (``clips`` evenly spaced clips
    x ``crops`` crops each, averaged) and report them: top-1/top-5 and the confusion matrix, or for a
    multi-label checkpoint mAP and per-class AP. The scores say which videos could be read."""
    multi_label = is_multi_label(info)
    dataset = checkpoint_eval_dataset(
        records,
        info["clip"],
        clips_per_video=clips,
        crops_per_clip=crops,
        num_classes=len(info["class_names"]) if multi_label else None,
    )
    scores = video_scores(
        model,
        dataset,
        num_videos=len(records),
        batch_size=batch_size,
        num_workers=num_workers,
        autocast_dtype=autocast_dtype,
        channels_last=channels_last,
        multi_label=multi_label,
    )
    if multi_label:
        return scores, multilabel_report(scores.probabilities, scores.targets, info["class_names"])
    return scores, classification_report(scores.probabilities, scores.labels, info["class_names"])


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    *,
    data: str | os.PathLike | None = None,
    split: str = "val",
    fold: int | None = None,
    annotations: str | os.PathLike | None = None,
    clips: int | None = None,
    crops: int | None = None,
    batch_size: int | None = None,
    num_workers: int = 0,
    device: str = "auto",
    output: str | os.PathLike | None = None,
    compile: bool = False,
) -> dict[str, Any]:
    """Multi-clip, multi-crop, video-level evaluation of a checkpoint written by ``cbam3d train``.

    Every video contributes ``clips`` evenly spaced clips x ``crops`` spatial crops; their softmax scores are
    averaged into the video's prediction. A multi-label checkpoint's sigmoid scores are averaged likewise and
    scored by mean average precision (:func:`~cbam3d.inference.scoring.multilabel_report`).

    Args:
        checkpoint: the ``.ckpt`` file.
        data: the data set folder; default: the one the checkpoint was trained on (the demo set if it was).
        split: "val" or "test" (see ``cbam3d.data.discover_videos``).
        fold, annotations: as for training; default: the checkpoint's.
        clips, crops, batch_size: views per video and clips per batch; default: the run's own (``--eval-clips``,
            ``--eval-crops``, ``--batch-size`` of training).
        output: folder for ``confusion_matrix.png`` and ``evaluation.json``; None writes nothing.
        compile: ``torch.compile`` the network (in place: ``nn.Module.compile``).

    Returns:
        ``classification_report``'s dict (``top1``, ``top5``, ``videos``, ``per_class``, ``confusion``), or for a
        multi-label checkpoint ``multilabel_report``'s (``map``, ``per_class_ap``, ``classes_without_positives``,
        ``top1``, ``videos``), plus ``multi_label``, ``class_names``, ``checkpoint``, ``data``, ``split``,
        ``clips``, ``crops``, ``skipped_clips``.

    Raises:
        UsageError: for a missing or unreadable checkpoint, a missing data set or a bad setting.
    """
    if output is not None:
        try:
            check_output_folder(output)
        except ValueError as error:
            raise UsageError(f"--output {error}") from error
    try:
        torch_device = inference_device(device)
        model, info = load_checkpoint(checkpoint, map_location=torch_device)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(str(error)) from error
    channels_last = prepare_for_clips(model, torch_device)
    if compile:
        model.compile()
    trained = info.get("config", {})
    clips = clips if clips is not None else trained.get("eval_clips") or 1
    crops = crops if crops is not None else trained.get("eval_crops") or 1
    batch_size = batch_size if batch_size is not None else trained.get("batch_size") or 8
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise UsageError(f"--num-workers must be 0 or more, got {num_workers!r}")
    for name, value in (("clips", clips), ("crops", crops), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
    if data is None:
        if trained.get("data"):
            root = Path(trained["data"])
        else:
            per_class = trained.get("demo_videos")
            if per_class is None:
                raise UsageError(f"{checkpoint} does not say which data set it was trained on: give --data DIR")
            variant = trained.get("demo") or "standard"
            root = Path(ensure_demo_dataset(variant=variant, train_per_class=per_class))
    else:
        root = Path(data).expanduser()
    if not root.is_dir():
        raise UsageError(f"--data {root}: no such directory")
    fold = fold if fold is not None else trained.get("fold") or 1
    annotations = annotations if annotations is not None else trained.get("annotations")
    records = discover_split(root, split, fold=fold, annotations=Path(annotations) if annotations else None)
    if list(records.class_names) != list(info["class_names"]):
        raise UsageError(
            f"data set {root} has classes {records.class_names[:5]}... but the checkpoint was trained "
            f"on {info['class_names'][:5]}..."
        )
    multi_label = is_multi_label(info)
    scores, report = score_records(
        model,
        info,
        records.records,
        clips=clips,
        crops=crops,
        batch_size=batch_size,
        num_workers=num_workers,
        autocast_dtype=inference_autocast_dtype(torch_device),
        channels_last=channels_last,
    )
    report.update(
        multi_label=multi_label,
        class_names=info["class_names"],
        checkpoint=str(Path(checkpoint).resolve()),
        data=str(root),
        split=split,
        clips=clips,
        crops=crops,
        skipped_clips=scores.skipped_clips,
    )
    if output is not None:
        output = Path(output)
        if not multi_label:  # no confusion matrix for multi-label: a video may belong to several classes
            title = (
                f"{info['model']['name']} + {info['model']['attention'] or 'no attention'}, {split} split: "
                f"top-1 {100 * report['top1']:.1f}%"
            )
            report["confusion_png"] = str(
                plot_confusion_matrix(
                    report["confusion"], info["class_names"], output / "confusion_matrix.png", title=title
                )
            )
        report["json"] = str(output / "evaluation.json")
        atomic_write_json(report, output / "evaluation.json")
    return report


def _format_multilabel(report: dict[str, Any], width: int) -> list[str]:
    lines = [f"video mAP: {100 * report['map']:.2f}%   top-1 among the labels: {100 * report['top1']:.2f}%", ""]
    lines.append("per-class average precision:")
    for name, ap in report["per_class_ap"].items():
        lines.append(
            f"  {name:<{width}}  "
            + ("   n/a (no positive video, left out of the mAP)" if ap is None else f"{100 * ap:6.2f}%")
        )
    return lines


def format_report(report: dict[str, Any]) -> str:
    """The report as text: overall accuracy, per-class accuracy and the confusion matrix (multi-label: mAP and
    per-class average precision)."""
    names = report["class_names"]
    width = max(len(name) for name in names)
    lines = [
        f"{report['videos']} videos of the {report['split']} split of {report['data']}, "
        f"{report['clips']} clips x {report['crops']} crops per video",
    ]
    if report.get("multi_label"):
        lines += _format_multilabel(report, width)
        if report.get("skipped_clips"):
            lines.append(f"\n{report['skipped_clips']} clips could not be decoded and were skipped")
        return "\n".join(lines)
    lines += [
        f"video top-1: {100 * report['top1']:.2f}%   top-5: {100 * report['top5']:.2f}%",
        "",
        "per-class accuracy:",
    ]
    for name in names:
        accuracy = report["per_class"][name]
        lines.append(f"  {name:<{width}}  " + ("   n/a" if accuracy is None else f"{100 * accuracy:6.2f}%"))
    if len(names) <= 30:
        lines += ["", "confusion matrix (rows: true class, columns: predicted, in class order):"]
        cell = max(3, max(len(str(v)) for row in report["confusion"] for v in row) + 1)
        header = " " * (width + 2) + "".join(f"{i:>{cell}}" for i in range(len(names)))
        lines.append(header)
        for i, (name, row) in enumerate(zip(names, report["confusion"])):
            lines.append(f"  {name:<{width}}" + "".join(f"{v:>{cell}}" for v in row) + f"   ({i})")
    if report.get("skipped_clips"):
        lines.append(f"\n{report['skipped_clips']} clips could not be decoded and were skipped")
    return "\n".join(lines)
