"""Training on a copy written by ``cbam3d prepare`` works as on the original, with several clips per decode."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("lightning")
pytest.importorskip("av")

from cbam3d.data import discover_videos
from cbam3d.data.prepare import EncodeSettings, prepare_dataset
from cbam3d.training.cli import train_main


def test_one_epoch_trains_on_a_prepared_copy_with_two_clips_per_decode(tmp_path, make_tiny_dataset, tiny_run):
    original = make_tiny_dataset(tmp_path / "data")
    prepared = tmp_path / "prepared"
    report = prepare_dataset(original, prepared, settings=EncodeSettings(short_side=32, keyframe_interval=4))
    assert report.encoded and not report.failed and not report.unreadable
    assert discover_videos(prepared, "val").class_names == discover_videos(original, "val").class_names
    assert not discover_videos(prepared, "train").flip_safe  # cbam3d_dataset.json came along
    output = tmp_path / "run"
    argv = ["--data", str(prepared), "--output", str(output), "--epochs", "1", *tiny_run, "--clips-per-decode", "2"]
    assert train_main(argv) == 0
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics and (output / "checkpoints" / "last.ckpt").is_file()


def test_a_batch_size_that_is_not_a_multiple_of_the_clips_per_decode_is_one_line(
    tmp_path, make_tiny_dataset, tiny_run, usage_error
):
    data = make_tiny_dataset(tmp_path / "data")
    argv = ["--data", str(data), "--output", str(tmp_path / "run"), *tiny_run, "--clips-per-decode", "3"]
    assert "--batch-size 4 must be a multiple of --clips-per-decode 3" in usage_error(train_main, argv)
