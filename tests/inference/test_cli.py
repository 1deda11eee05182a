"""``cbam3d evaluate`` and ``cbam3d predict``'s command lines (cbam3d.inference.cli): a missing or foreign checkpoint,
a negative worker count and an --output that names a file, each refused in one line before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cbam3d.inference import cli
from cbam3d.inference.cli import evaluate_main, predict_main
from cbam3d.inference.windows import window_frame_ranges

_NO_MPS = pytest.mark.skipif(torch.backends.mps.is_available(), reason="an MPS device is present")
_NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")


def test_evaluate_and_predict_refuse_a_missing_checkpoint_in_one_line(tmp_path, usage_error):
    missing = str(tmp_path / "missing.ckpt")
    assert "no such file" in usage_error(evaluate_main, ["--checkpoint", missing])
    assert "no such file" in usage_error(predict_main, ["clip.mp4", "--checkpoint", missing])


def test_predict_refuses_a_checkpoint_that_is_not_ours(tmp_path, usage_error):
    torch.save({"weight": torch.ones(1)}, tmp_path / "weights.pth")
    line = usage_error(predict_main, ["clip.mp4", "--checkpoint", str(tmp_path / "weights.pth")])
    assert "not a cbam3d training checkpoint" in line


def test_evaluate_refuses_a_negative_worker_count_by_name(tiny_checkpoint, usage_error):
    argv = ["--checkpoint", str(tiny_checkpoint), "--num-workers", "-1"]
    assert "--num-workers must be 0 or more, got -1" in usage_error(evaluate_main, argv)


def test_evaluate_output_naming_a_file_is_refused_in_one_line(tiny_checkpoint, tmp_path, usage_error):
    (tmp_path / "taken").write_text("x")
    line = usage_error(evaluate_main, ["--checkpoint", str(tiny_checkpoint), "--output", str(tmp_path / "taken")])
    assert "--output" in line and "is a file, not a folder" in line


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--window", "inf"], "window must be a positive finite number of seconds, got inf"),
        (["--window", "nan"], "window must be a positive finite number of seconds, got nan"),
        (["--window", "1", "--stride", "inf"], "stride must be a positive finite number of seconds, got inf"),
        (["--window", "-1"], "window must be a positive finite number of seconds"),
    ],
)
def test_non_finite_windows_and_strides_are_refused_in_one_line(tiny_checkpoint, usage_error, flags, message):
    assert message in usage_error(predict_main, ["clip.mp4", "--checkpoint", str(tiny_checkpoint), *flags])


def test_a_window_longer_than_any_video_is_one_window_over_all_of_it():
    assert window_frame_ranges(100, 25.0, window=1e308, stride=1e308) == [(0, 100)]
    assert window_frame_ranges(100, 25.0, window=1.0, stride=1e308) == [(0, 25), (75, 100)]


def test_predict_output_that_cannot_be_written_is_refused_before_predicting(
    tiny_checkpoint, tmp_path, usage_error, monkeypatch
):
    monkeypatch.setattr(cli, "predict_files", lambda *a, **k: pytest.fail("predicted before checking --output"))
    (tmp_path / "taken").write_text("x")
    argv = ["clip.mp4", "--checkpoint", str(tiny_checkpoint), "--window", "1", "--output", str(tmp_path / "taken")]
    assert "is a file, not a folder" in usage_error(predict_main, argv)


@pytest.mark.parametrize(
    "device, message",
    [
        ("tpu", "device 'tpu' is not a device name"),
        ("cuda:x", "device 'cuda:x' is not a device name"),
        ("meta", "device 'meta': meta devices are not supported"),
        pytest.param("mps", "device 'mps': the Apple MPS backend is not available", marks=_NO_MPS),
        pytest.param("cuda", "device 'cuda': no CUDA device is available", marks=_NO_CUDA),
    ],
)
def test_unsupported_devices_are_blamed_on_the_device_not_the_checkpoint(tiny_checkpoint, usage_error, device, message):
    for main, argv in ((predict_main, ["clip.mp4"]), (evaluate_main, [])):
        line = usage_error(main, [*argv, "--checkpoint", str(tiny_checkpoint), "--device", device])
        assert message in line and "checkpoint" not in line


def test_predict_on_a_folder_predicts_every_video_in_it_and_its_sub_folders(
    tiny_checkpoint, tmp_path, make_noise_video, capsys
):
    for name in ("a.mp4", "sub/b.avi", "sub/deeper/c.mkv"):
        make_noise_video(tmp_path / "videos" / name, frames=12)
    (tmp_path / "videos" / "notes.txt").write_text("not a video")
    assert predict_main([str(tmp_path / "videos"), "--checkpoint", str(tiny_checkpoint), "--json", "--topk", "1"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [Path(r["path"]).name for r in results] == ["a.mp4", "b.avi", "c.mkv"]
    assert all(r["error"] is None for r in results)


def test_predict_on_a_folder_without_videos_is_refused_in_one_line(tiny_checkpoint, tmp_path, usage_error):
    (tmp_path / "empty").mkdir()
    line = usage_error(predict_main, [str(tmp_path / "empty"), "--checkpoint", str(tiny_checkpoint)])
    assert f"{tmp_path / 'empty'} is a folder without video files" in line


def test_a_predict_that_predicts_nothing_exits_non_zero(tiny_checkpoint, tmp_path, capsys):
    assert predict_main([str(tmp_path / "missing.mp4"), "--checkpoint", str(tiny_checkpoint)]) == 1
    assert "1 of 1 files could not be read" in capsys.readouterr().err


@pytest.mark.parametrize("clips", ["0", "1001", "100000000000"])
def test_a_clip_count_out_of_range_is_refused_in_one_line_not_run_out_of_memory(tiny_checkpoint, usage_error, clips):
    line = usage_error(predict_main, ["clip.mp4", "--checkpoint", str(tiny_checkpoint), "--clips", clips])
    assert f"clips must be an integer from 1 to 1000, got {clips}" in line
