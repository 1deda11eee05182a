"""``cbam3d predict --window``: sliding windows over a whole video in one streaming pass, their top-k, a CSV and
a timeline; without ``--window`` nothing changes."""

from __future__ import annotations

import csv
import json

import pytest
import torch

pytest.importorskip("av")
pytest.importorskip("matplotlib")

from cbam3d.data import VideoReader
from cbam3d.inference.cli import predict_main
from cbam3d.inference.predict import predict_files
from cbam3d.inference.windows import window_frame_ranges, write_windows_csv

FPS = 8


@pytest.fixture(scope="module")
def five_second_video(tmp_path_factory, make_noise_video):
    """40 frames at 8 fps, 48x64."""
    return make_noise_video(tmp_path_factory.mktemp("videos") / "walk.mp4", frames=5 * FPS, fps=FPS)


@pytest.mark.parametrize(
    "num_frames, window, stride, expected",
    [
        (40, 2.0, 1.0, [(0, 16), (8, 24), (16, 32), (24, 40)]),
        (40, 2.0, 1.5, [(0, 16), (12, 28), (24, 40)]),
        (40, 10.0, 1.0, [(0, 40)]),
        (41, 2.0, 2.0, [(0, 16), (16, 32), (25, 41)]),
    ],
)
def test_windows_start_every_stride_and_the_last_one_ends_at_the_video_end(num_frames, window, stride, expected):
    assert window_frame_ranges(num_frames, FPS, window=window, stride=stride) == expected


@pytest.mark.parametrize("fps", [25.0, 30000 / 1001])
def test_window_starts_stay_within_half_a_frame_of_multiples_of_the_stride_over_an_hour(fps):
    """A stride of no whole number of frames (1.5 s is 37.5 frames at 25 fps) rounded once made the k-th window
    start k times the rounding error late: 48 s late after an hour at 25 fps."""
    num_frames = round(3600 * fps)
    ranges = window_frame_ranges(num_frames, fps, window=2.0, stride=1.5)
    for k, (first, _) in enumerate(ranges[:-1]):
        assert abs(first / fps - 1.5 * k) <= 0.5 / fps + 1e-9
    assert len(ranges) == 2400 and ranges[-1] == (num_frames - round(2 * fps), num_frames)


def test_streamed_frames_are_the_frames_random_access_decoding_reads(five_second_video):
    with VideoReader(five_second_video) as reader:
        streamed = dict(reader.frames(keep=lambda index: index % 7 == 3))
        assert sorted(streamed) == [3, 10, 17, 24, 31, 38]
        expected = reader.read(sorted(streamed))
    assert torch.equal(torch.stack([streamed[i] for i in sorted(streamed)]), expected)


def test_one_window_over_the_whole_video_gives_the_whole_file_prediction(tiny_checkpoint, five_second_video):
    (whole,) = predict_files([five_second_video], tiny_checkpoint, topk=4, clips=2, device="cpu")
    (windowed,) = predict_files([five_second_video], tiny_checkpoint, topk=4, clips=2, device="cpu", window=60.0)
    assert whole.windows == [] and len(windowed.windows) == 1
    assert (windowed.windows[0].start, windowed.windows[0].end) == (0.0, 5.0)
    assert [name for name, _ in windowed.top] == [name for name, _ in whole.top]
    assert [p for _, p in windowed.top] == pytest.approx([p for _, p in whole.top], abs=1e-6)


def test_json_gives_each_window_and_the_video_level_mean(tiny_checkpoint, five_second_video, capsys):
    argv = [str(five_second_video), "--checkpoint", str(tiny_checkpoint), "--window", "2", "--stride", "1"]
    assert predict_main([*argv, "--topk", "4", "--json", "--device", "cpu"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert [(w["start"], w["end"]) for w in result["windows"]] == [(0, 2), (1, 3), (2, 4), (3, 5)]
    assert all(len(w["top"]) == 4 for w in result["windows"])
    for entry in result["top"]:
        per_window = [
            next(t["probability"] for t in w["top"] if t["label"] == entry["label"]) for w in result["windows"]
        ]
        assert entry["probability"] == pytest.approx(sum(per_window) / len(per_window), abs=1e-6)


def test_output_writes_a_csv_of_the_windows_and_a_timeline_png(tiny_checkpoint, five_second_video, tmp_path, capsys):
    argv = [str(five_second_video), "--checkpoint", str(tiny_checkpoint), "--window", "2", "--stride", "1.5"]
    assert predict_main([*argv, "--topk", "2", "--output", str(tmp_path), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert printed.count(" s: ") == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walk_timeline.png", "walk_windows.csv"]
    rows = list(csv.DictReader((tmp_path / "walk_windows.csv").open()))
    assert [(row["start_seconds"], row["end_seconds"]) for row in rows] == [
        ("0.000", "2.000"),
        ("1.500", "3.500"),
        ("3.000", "5.000"),
    ]
    assert set(rows[0]) == {"start_seconds", "end_seconds", "label_1", "probability_1", "label_2", "probability_2"}
    assert (tmp_path / "walk_timeline.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_an_unreadable_file_is_reported_and_the_others_still_scored(tiny_checkpoint, five_second_video, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    results = predict_files([broken, five_second_video], tiny_checkpoint, device="cpu", window=2.0)
    assert results[0].error is not None and "broken.mp4" in results[0].error
    assert results[1].error is None and len(results[1].windows) == 3


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--stride", "1"], "--stride and --output need --window"),
        (["--window", "0"], "window must be a positive finite number of seconds"),
        (["--window", "2", "--stride", "-1"], "stride must be a positive finite number of seconds"),
    ],
)
def test_bad_window_flags_are_one_line_usage_errors(flags, message, tiny_checkpoint, five_second_video, usage_error):
    assert message in usage_error(predict_main, [str(five_second_video), "--checkpoint", str(tiny_checkpoint), *flags])


def test_the_windows_csv_writes_a_class_name_a_spreadsheet_would_run_as_text(tmp_path):
    path = write_windows_csv([(0.0, 1.0, [('=HYPERLINK("x")', 0.75), ("walk", 0.25)])], tmp_path / "w.csv")
    rows = list(csv.reader(path.open()))
    assert rows[1] == ["0.000", "1.000", '\'=HYPERLINK("x")', "0.750000", "walk", "0.250000"]
