"""``cbam3d evaluate`` and ``cbam3d predict``'s command lines (cbam3d.inference.cli): a missing or foreign checkpoint,
a negative worker count and an --output that names a file, each refused in one line before any work."""

from __future__ import annotations

import torch

from cbam3d.inference.cli import evaluate_main, predict_main


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
