"""Starting weights (cbam3d.training.pretrained): our own checkpoint with a new head, torchvision's video weights
with only the attention new, 2D weights inflated into a 3D network, and files whose weights fit nothing refused."""

from __future__ import annotations

import pytest
import torch

from cbam3d import models
from cbam3d.inference import ModelSpec, load_checkpoint
from cbam3d.inference.checkpoint import build_model
from cbam3d.training import load_pretrained


def test_our_checkpoint_as_starting_weights_reinitialises_a_head_of_another_class_count(tiny_checkpoint):
    _, info = load_checkpoint(tiny_checkpoint)
    saved = torch.load(tiny_checkpoint, weights_only=True)["state_dict"]
    target = build_model(ModelSpec(**info["model"]), num_classes=len(info["class_names"]) + 1)
    head_before = target.fc.weight.clone()
    report = load_pretrained(target, tiny_checkpoint)
    assert report.source == "cbam3d checkpoint" and report.head_reinitialised
    assert report.mismatched == ["fc.bias", "fc.weight"] and not report.missing and not report.unexpected
    assert torch.equal(target.fc.weight, head_before)
    torch.testing.assert_close(target.conv1.weight, saved["model.conv1.weight"])
    assert "fc re-initialised" in report.summary()


def test_torchvision_video_weights_load_with_only_attention_new(tmp_path):
    torchvision_video = pytest.importorskip("torchvision.models.video")
    reference = torchvision_video.r3d_18(num_classes=400)
    torch.save(reference.state_dict(), tmp_path / "r3d_18.pth")
    target = build_model(ModelSpec("r3d_18", "se"), num_classes=7)
    report = load_pretrained(target, tmp_path / "r3d_18.pth")
    assert report.source == "torchvision video ResNet" and report.head_reinitialised
    assert report.missing and all(".attention." in key for key in report.missing)
    assert not report.unexpected
    torch.testing.assert_close(
        target.conv1.weight if hasattr(target, "conv1") else target.stem[0].weight, reference.stem[0].weight
    )


def test_2d_weights_are_inflated_into_the_3d_network(tmp_path):
    source = models.resnet2d(18, num_classes=10)
    torch.save(source.state_dict(), tmp_path / "resnet18_2d.pth")
    target = build_model(ModelSpec("resnet3d-18"), num_classes=10)
    report = load_pretrained(target, tmp_path / "resnet18_2d.pth")
    assert report.source == "2D weights, inflated"
    assert not report.missing and not report.unexpected and not report.mismatched
    kernel = target.conv1.weight  # (C_out, C_in, T, k, k) with the 2D kernel at the temporal centre
    torch.testing.assert_close(kernel[:, :, kernel.shape[2] // 2], source.conv1.weight)
    assert kernel.sum(dim=2).sub(source.conv1.weight).abs().max() < 1e-6


def test_starting_weights_that_fit_nothing_are_refused(tmp_path):
    network = build_model(ModelSpec("resnet3d-10", options={"widen_factor": 0.125}), num_classes=2)
    torch.save({"encoder.weight": torch.ones(3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="none of its 1 weights fits"):
        load_pretrained(network, tmp_path / "other.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="no state dict found"):
        load_pretrained(network, tmp_path / "list.pth")


def three_d_resnets_checkpoint(state: dict[str, torch.Tensor], *, arch: str = "resnet-18") -> dict:
    """A checkpoint as 3D-ResNets-PyTorch's training saves it: saved from DataParallel (``module.`` keys)."""
    return {
        "epoch": 200,
        "arch": arch,
        "state_dict": {f"module.{key}": value for key, value in state.items()},
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
    }


def test_a_module_prefixed_3d_resnets_checkpoint_loads_into_resnet3d_18_missing_only_the_classifier(tmp_path):
    """Its names (conv1, bn1, layer1.0.conv1, ..., downsample.0, fc) are ours; a Kinetics head of 400 classes
    does not fit 7, so only fc is left as initialised."""
    kinetics = build_model(ModelSpec("resnet3d-18"), num_classes=400)
    torch.save(three_d_resnets_checkpoint(kinetics.state_dict()), tmp_path / "r3d18_K_200ep.pth")
    target = build_model(ModelSpec("resnet3d-18"), num_classes=7)
    report = load_pretrained(target, tmp_path / "r3d18_K_200ep.pth", model_name="resnet3d-18")
    assert "3D-ResNets-PyTorch checkpoint, arch resnet-18" in report.source and "DataParallel" in report.source
    assert report.mismatched == ["fc.bias", "fc.weight"] and report.head_reinitialised
    assert not report.missing and not report.unexpected
    torch.testing.assert_close(target.layer4[1].conv2.weight, kinetics.layer4[1].conv2.weight)


def test_with_attention_only_the_attention_weights_are_new(tmp_path):
    kinetics = build_model(ModelSpec("resnet3d-18"), num_classes=400)
    torch.save(three_d_resnets_checkpoint(kinetics.state_dict()), tmp_path / "r3d18.pth")
    report = load_pretrained(build_model(ModelSpec("resnet3d-18", "cbam"), num_classes=400), tmp_path / "r3d18.pth")
    assert report.missing and all(".attention." in key for key in report.missing)
    assert not report.mismatched and not report.unexpected


def test_a_3d_resnets_checkpoint_of_another_depth_is_refused_naming_the_network_it_was_trained_as(tmp_path):
    torch.save(three_d_resnets_checkpoint({"conv1.weight": torch.ones(1)}, arch="resnet-34"), tmp_path / "r34.pth")
    target = build_model(ModelSpec("resnet3d-18"), num_classes=7)
    with pytest.raises(
        ValueError, match="are a resnet-34 \\(our resnet3d-34\\), not a resnet3d-18: train with --model"
    ):
        load_pretrained(target, tmp_path / "r34.pth", model_name="resnet3d-18")


def test_medicalnet_weights_load_with_their_segmentation_head_reported_as_unexpected(tmp_path):
    """MedicalNet saves {"state_dict": {"module.conv1.weight", ...}} with a conv_seg head instead of fc."""
    encoder = build_model(ModelSpec("resnet3d-10"), num_classes=2).state_dict()
    state = {f"module.{k}": v for k, v in encoder.items() if not k.startswith("fc.")}
    state["module.conv_seg.0.weight"] = torch.ones(32, 512, 3, 3, 3)
    torch.save({"state_dict": state}, tmp_path / "resnet_10.pth")
    target = build_model(ModelSpec("resnet3d-10"), num_classes=2)
    report = load_pretrained(target, tmp_path / "resnet_10.pth", model_name="resnet3d-10")
    assert report.unexpected == ["conv_seg.0.weight"] and report.missing == ["fc.bias", "fc.weight"]
    assert report.loaded == len(encoder) - 2
