"""A multi-label checkpoint (``info["multi_label"]``): prediction scores each class with a sigmoid and lists the
classes above ``--threshold``; its export says so and predicts the same."""

from __future__ import annotations

import json

import pytest
import torch

from cbam3d.data import VideoRecord
from cbam3d.inference.checkpoint import load_checkpoint
from cbam3d.inference.datasets import checkpoint_eval_dataset
from cbam3d.inference.predict import predict_files


@pytest.fixture(scope="module")
def multi_label_checkpoint(tiny_checkpoint, tmp_path_factory):
    """The tiny checkpoint, marked as trained multi-label."""
    checkpoint = torch.load(tiny_checkpoint, weights_only=True)
    checkpoint["cbam3d"]["multi_label"] = True
    path = tmp_path_factory.mktemp("multi_label") / "last.ckpt"
    torch.save(checkpoint, path)
    return path


def test_prediction_gives_each_class_its_sigmoid_and_the_labels_above_the_threshold(
    multi_label_checkpoint, make_noise_video, tmp_path
):
    video = make_noise_video(tmp_path / "clip.mp4", frames=12)
    (everything,) = predict_files([video], multi_label_checkpoint, topk=4, clips=1, device="cpu", threshold=0.0)
    model, info = load_checkpoint(multi_label_checkpoint)
    clip = checkpoint_eval_dataset([VideoRecord(video, 0)], info["clip"])[0]["video"]
    with torch.inference_mode():
        sigmoids = model(clip[None])[0].sigmoid()
    expected = {name: float(p) for name, p in zip(info["class_names"], sigmoids)}
    assert dict(everything.top) == pytest.approx(expected, abs=1e-5)
    assert [name for name, _ in everything.labels] == [name for name, _ in everything.top]  # all 4, same order
    probabilities = [p for _, p in everything.top]
    middle = sorted(probabilities)[1]
    (some,) = predict_files([video], multi_label_checkpoint, topk=1, clips=1, device="cpu", threshold=middle)
    assert len(some.top) == 1 and [p for _, p in some.labels] == sorted(probabilities, reverse=True)[:3]
    assert "labels: " in some.format()


def test_a_threshold_outside_zero_to_one_is_refused(multi_label_checkpoint):
    with pytest.raises(ValueError, match=r"threshold must be a probability in \[0, 1\], got 1.5"):
        predict_files([], multi_label_checkpoint, threshold=1.5)


def test_the_export_of_a_multi_label_checkpoint_says_so_and_predicts_the_same_labels(
    multi_label_checkpoint, make_noise_video, tmp_path
):
    pytest.importorskip("onnxscript")
    from cbam3d.inference.export import export_main, info_path

    output = tmp_path / "model.pt2"
    assert export_main(["--checkpoint", str(multi_label_checkpoint), "--format", "pt2", "--output", str(output)]) == 0
    assert json.loads(info_path(output).read_text())["multi_label"] is True
    video = make_noise_video(tmp_path / "clip.mp4", frames=12)
    (expected,) = predict_files([video], multi_label_checkpoint, topk=4, clips=1, device="cpu", threshold=0.3)
    (exported,) = predict_files([video], output, topk=4, clips=1, threshold=0.3)
    assert [name for name, _ in exported.labels] == [name for name, _ in expected.labels]
    assert [p for _, p in exported.top] == pytest.approx([p for _, p in expected.top], abs=1e-5)
