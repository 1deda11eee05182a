"""Training checkpoints read for inference (cbam3d.inference.checkpoint): the saved network rebuilt in eval mode,
files that are not checkpoints explained, and a checkpoint whose stored settings do not fit its weights refused in
one line by every command that reads one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from cbam3d.inference import ClipSpec, ModelSpec, load_checkpoint
from cbam3d.inference.checkpoint import build_model, make_info
from cbam3d.inference.cli import evaluate_main, predict_main
from cbam3d.viz.cli import main as visualize_main

TINY = ModelSpec("resnet3d-10", "cbam", {}, {"widen_factor": 0.125, "no_max_pool": True})
CLIP = ClipSpec(4, 2, 32, (0.43, 0.39, 0.38), (0.23, 0.22, 0.22), eval_resize=36)


def _save_training_checkpoint(path: Path, model: nn.Module, class_names: list[str]) -> None:
    info = make_info(class_names, TINY, CLIP, {"data": None}, [])
    torch.save({"cbam3d": info, "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, path)


def test_load_checkpoint_rebuilds_the_same_network_in_eval_mode(tmp_path):
    model = build_model(TINY, num_classes=3)
    _save_training_checkpoint(tmp_path / "run.ckpt", model, ["a", "b", "c"])
    loaded, info = load_checkpoint(tmp_path / "run.ckpt")
    assert not loaded.training and info["class_names"] == ["a", "b", "c"] and info["clip"]["size"] == 32
    clip = torch.randn(1, 3, 4, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(clip), model.eval()(clip))


def test_load_checkpoint_explains_what_is_wrong_with_a_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_checkpoint(tmp_path / "missing.ckpt")
    torch.save({"weight": torch.ones(1)}, tmp_path / "plain.pth")
    with pytest.raises(ValueError, match="not a cbam3d training checkpoint"):
        load_checkpoint(tmp_path / "plain.pth")
    (tmp_path / "garbage.ckpt").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="could not be read"):
        load_checkpoint(tmp_path / "garbage.ckpt")


def _set_attention(info):
    info["model"]["attention"] = "se"


def _more_classes(info):
    info["class_names"] = [*info["class_names"], "third"]


def _drop_clip(info):
    del info["clip"]


def _unknown_clip_field(info):
    info["clip"]["fps"] = 8


@pytest.mark.parametrize(
    "edit, message",
    [
        (_set_attention, "its weights do not fit its stored settings"),
        (_more_classes, "its weights do not fit its stored settings"),
        (_drop_clip, "its clip settings None are not the expected fields"),
        (_unknown_clip_field, "its clip settings"),
    ],
)
def test_a_checkpoint_whose_settings_do_not_fit_is_one_line_in_every_command(
    tiny_checkpoint, make_noise_video, tmp_path, usage_error, capsys, edit, message
):
    checkpoint = torch.load(tiny_checkpoint, weights_only=True)
    edit(checkpoint["cbam3d"])
    path = tmp_path / "edited.ckpt"
    torch.save(checkpoint, path)
    video = str(make_noise_video(tmp_path / "clip.mp4", frames=12))
    assert message in usage_error(evaluate_main, ["--checkpoint", str(path), "--output", str(tmp_path / "eval")])
    assert message in usage_error(predict_main, [video, "--checkpoint", str(path)])
    assert visualize_main([video, "--checkpoint", str(path), "--output", str(tmp_path / "viz")]) == 2
    error = capsys.readouterr().err.strip()
    assert "Traceback" not in error and message in error and len(error.splitlines()) == 1
